import Synchronization

/// Counters served at `/metrics` in the Prometheus text format.
final class Metrics: Sendable {
    private let requests = Mutex<[String: Int]>([:])
    private let errors = Mutex<[String: Int]>([:])

    func countRequest(_ route: String) { requests.withLock { $0[route, default: 0] += 1 } }
    func countError(_ code: String) { errors.withLock { $0[code, default: 0] += 1 } }

    /// The exposition text; `gauges` are added as they are (name → value). Names ending in
    /// `_total` are counters, the rest gauges.
    func render(gauges: [(name: String, help: String, value: Int64)]) -> String {
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
        return lines.joined(separator: "\n") + "\n"
    }
}
