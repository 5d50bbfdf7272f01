import Access
import ArtifactStore
import Foundation
import Lineage
import Serving
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

    /// Per-key counters, by the key's name (never the key).
    func renderKeys(_ meters: [KeyMeter]) -> String {
        guard !meters.isEmpty else { return "" }
        let families: [(String, String, String, (KeyMeter.Counts) -> Int64)] = [
            ("pedigree_key_requests_total", "counter", "Requests made with each API key.", { $0.requests }),
            ("pedigree_key_rate_limited_total", "counter", "Requests and generations refused by each key's quotas.", { $0.rateLimited }),
            ("pedigree_key_generated_tokens_total", "counter", "Tokens generated for each API key.", { $0.generatedTokens }),
            ("pedigree_key_running_generations", "gauge", "Generations running now for each API key.", { $0.runningGenerations }),
        ]
        let counts = meters.map { ($0.name, $0.counts) }
        var lines: [String] = []
        for (name, type, help, value) in families {
            lines.append("# HELP \(name) \(help)")
            lines.append("# TYPE \(name) \(type)")
            for (key, count) in counts { lines.append("\(name){key=\"\(key)\"} \(value(count))") }
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// The exposition text with the services' figures.
    func render(_ services: Services) async -> String {
        await renderServices(services) + renderKeys(services.access.meterList)
    }

    private func renderServices(_ services: Services) async -> String {
        let cache = services.artifacts.store.cache
        let usage = await cache.usage
        let recorder = services.recorder
        let counts = recorder.counts
        let refreshAge = services.refresher.lastSuccess.map { Int64(Date().timeIntervalSince($0)) } ?? -1
        return render(
            gauges: [
                ("pedigree_git_blob_reads_total", "Blobs read from Git (the rest came from the cache).", Int64(services.lineage.reader.blobReads)),
                ("pedigree_cache_objects", "Objects in the artifact cache.", Int64(usage.objects)),
                ("pedigree_cache_bytes", "Bytes in the artifact cache.", usage.bytes),
                ("pedigree_artifact_downloads_total", "Objects downloaded from DVC remotes since start.", Int64(await cache.downloads)),
                ("pedigree_artifact_download_bytes_total", "Bytes downloaded from DVC remotes since start.", await cache.downloadedBytes),
                ("pedigree_ledger_records_total", "Inferences recorded in the ledger since start.", counts.records),
                (
                    "pedigree_ledger_write_failures_total", "Ledger writes that failed since start (answers went out, with a warning).",
                    counts.failures
                ),
                ("pedigree_inferences_running", "Generations running now.", Int64(services.inference.runningCount)),
                (
                    "pedigree_inferences_rejected_total",
                    "Inference requests refused before they ran (bad input, full queue, shutdown); not recorded.",
                    counts.rejected
                ),
                ("pedigree_refresh_failures_total", "Fetches of the Git remote that failed since start.", services.refresher.failures),
                ("pedigree_refresh_age_seconds", "Seconds since the last successful periodic or requested fetch (-1: none yet).", refreshAge),
            ],
            summaries: [
                (
                    "pedigree_ledger_write_seconds", "Time an answer waits for its ledger record (latest 1024 writes).",
                    [0.5, 0.99].compactMap { quantile in recorder.writeQuantile(quantile).map { (quantile, $0) } }
                )
            ])
    }
}
