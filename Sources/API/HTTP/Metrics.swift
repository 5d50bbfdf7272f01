import Synchronization

/// Counters served at `/metrics` in the Prometheus text format.
final class Metrics: Sendable {
    private let requests = Mutex<[String: Int]>([:])
    private let errors = Mutex<[String: Int]>([:])

    func countRequest(_ route: String) { requests.withLock { $0[route, default: 0] += 1 } }
    func countError(_ code: String) { errors.withLock { $0[code, default: 0] += 1 } }

    /// The exposition text; `gauges` are added as they are (name → value). Names ending in
    /// `_total` are counters, the rest gauges. `summaries` give quantiles (a summary without
    /// samples yet is left out).
    func render(
        gauges: [(name: String, help: String, value: Int64)], summaries: [(name: String, help: String, quantiles: [(Double, Double)])] = []
    ) -> String {
        var lines: [String] = []
        lines.append("# HELP pedigree_http_requests_total HTTP requests by route.")
        lines.append("# TYPE pedigree_http_requests_total counter")
        for (route, count) in requests.withLock({ $0 }).sorted(by: { $0.key < $1.key }) {
            lines.append("pedigree_http_requests_total{route=\"\(route)\"} \(count)")
        }
        lines.append("# HELP pedigree_graphql_errors_total GraphQL errors by extensions.code.")
        lines.append("# TYPE pedigree_graphql_errors_total counter")
        for (code, count) in errors.withLock({ $0 }).sorted(by: { $0.key < $1.key }) {
            lines.append("pedigree_graphql_errors_total{code=\"\(code)\"} \(count)")
        }
        for gauge in gauges {
            lines.append("# HELP \(gauge.name) \(gauge.help)")
            lines.append("# TYPE \(gauge.name) \(gauge.name.hasSuffix("_total") ? "counter" : "gauge")")
            lines.append("\(gauge.name) \(gauge.value)")
        }
        for summary in summaries where !summary.quantiles.isEmpty {
            lines.append("# HELP \(summary.name) \(summary.help)")
            lines.append("# TYPE \(summary.name) summary")
            for (quantile, value) in summary.quantiles { lines.append("\(summary.name){quantile=\"\(quantile)\"} \(value)") }
        }
        return lines.joined(separator: "\n") + "\n"
    }
}
