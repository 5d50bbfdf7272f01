import Access
import ArtifactStore
import Foundation
import Inference
import Lineage
import Metrics
import Prometheus
import Serving
import Synchronization

/// `/metrics`: the telemetry registry in the Prometheus text format. Counters and histograms are
/// recorded through swift-metrics where things happen; the figures that are states (queue depth,
/// loaded models, cache bytes, refresh age, per-key counts) are read from the services when
/// scraped and set here.
final class ServerMetrics: Sendable {
    let telemetry: Telemetry
    /// Scrape-time families whose label sets change (per model, per key): the ones set last
    /// time, so those that disappeared are removed.
    private let labelled = Mutex<[String: Prometheus.Gauge]>([:])
    /// Scrape-time totals: the value each counter was brought to last time.
    private let totals = Mutex<[String: (counter: Prometheus.Counter, value: Int64)]>([:])

    /// swift-metrics handlers by their labels, made once: making one looks it up in the registry
    /// under a lock, which would cost every request more than recording does.
    private let counters = Mutex<[String: Metrics.Counter]>([:])

    init(telemetry: Telemetry) { self.telemetry = telemetry }

    /// An error in a GraphQL answer (a field's, or the whole request's).
    func countError(_ code: String) { counter("pedigree_graphql_errors_total", [("code", code)]).increment() }

    /// An answer that is only an error, by the format its route group writes and its code.
    func countErrorAnswer(format: ErrorFormat, code: ErrorCode) {
        counter("pedigree_http_error_answers_total", [("format", format.rawValue), ("code", code.rawValue)]).increment()
    }

    /// One HTTP request: counted, and its duration recorded, by route template (never by path),
    /// method and status.
    func recordRequest(route: String, method: String, status: Int, duration: Duration) {
        counter("pedigree_http_requests_total", [("route", route)]).increment()
        let key = route + " " + method + " " + String(status)
        let timer =
            requestTimers.withLock { $0[key] }
            ?? {
                let made = Metrics.Timer(
                    label: MetricName.httpDuration,
                    dimensions: [
                        ("http.route", route == "unmatched" ? route : "/" + route), ("http.request.method", method),
                        ("http.response.status_code", String(status)),
                    ])
                requestTimers.withLock { $0[key] = made }
                return made
            }()
        timer.record(duration: duration)
    }
    private let requestTimers = Mutex<[String: Metrics.Timer]>([:])

    private func counter(_ label: String, _ dimensions: [(String, String)]) -> Metrics.Counter {
        let key = label + " " + dimensions.map { $0.0 + "=" + $0.1 }.joined(separator: ",")
        if let existing = counters.withLock({ $0[key] }) { return existing }
        let made = Metrics.Counter(label: label, dimensions: dimensions)
        counters.withLock { $0[key] = made }
        return made
    }

    /// The exposition text with the services' states brought up to date; without `perKey`, the
    /// families labelled by API key (`pedigree_key_*`) are left out.
    func render(_ services: Services, perKey: Bool = true) async -> String {
        let registry = telemetry.registry
        let artifacts = await services.artifacts.figures()
        let counts = services.recorder.counts
        let refreshAge = services.refresher.lastSuccess.map { Date().timeIntervalSince($0) } ?? -1
        total("pedigree_git_blob_reads_total", "Blobs read from Git (the rest came from the cache).", Int64(services.lineage.blobReads))
        total("pedigree_artifact_downloads_total", "Objects downloaded from DVC remotes.", Int64(artifacts.downloads))
        total("pedigree_artifact_download_bytes_total", "Bytes downloaded from DVC remotes.", artifacts.downloadedBytes)
        total("pedigree_ledger_records_total", "Inferences recorded in the ledger.", counts.records)
        total("pedigree_ledger_write_failures_total", "Ledger writes that failed (answers went out, with a warning).", counts.failures)
        total("pedigree_refresh_failures_total", "Fetches of the Git remote that failed.", services.refresher.failures)
        let gauges: [(String, String, Double)] = [
            ("pedigree_cache_objects", "Objects in the artifact cache.", Double(artifacts.cachedObjects)),
            ("pedigree_cache_bytes", "Bytes in the artifact cache.", Double(artifacts.cachedBytes)),
            (
                "pedigree_artifact_cache_hit_ratio", "Artifact fetches answered from the cache, of all fetches since start (0 before the first).",
                artifacts.hitRatio
            ),
            ("pedigree_inferences_running", "Generations running now.", Double(services.inference.runningCount)),
            ("pedigree_refresh_age_seconds", "Seconds since the last successful fetch of the Git remote (-1: none yet).", refreshAge),
        ]
        for (name, help, value) in gauges { registry.makeGauge(name: name, help: help).set(value) }

        // Where generations run: this process's models, or a gateway's workers' (their own series below).
        let loaded = await services.inference.loadedModels()
        var current: [String: (String, [(String, String)], String, Double)] = [:]
        func set(_ name: String, _ labels: [(String, String)], _ help: String, _ value: Double) {
            current[name + "|" + labels.map { "\($0.0)=\($0.1)" }.joined(separator: ",")] = (name, labels, help, value)
        }
        registry.makeGauge(name: "pedigree_models_loaded", help: "Models loaded now (on a gateway: on its workers).").set(Double(loaded.count))
        registry.makeGauge(
            name: "pedigree_models_loaded_bytes", help: "Bytes the loaded models hold, every device together (on a gateway: on its workers)."
        ).set(
            Double(loaded.reduce(0) { $0 + $1.memoryBytes }))
        for model in loaded where model.worker == nil {
            let name = model.revisions.first.map { String($0.split(separator: "@").first ?? "") } ?? ""
            let labels = [("model", name), ("md5", model.md5)]
            set("pedigree_model_queue_depth", labels, "Requests waiting for a slot, by loaded model.", Double(model.queueDepth))
            set("pedigree_model_slots", labels, "Slots (sequences decoded together), by loaded model.", Double(model.slots))
            set("pedigree_model_slots_active", labels, "Slots generating now, by loaded model.", Double(model.activeSlots))
            for device in model.memory.devices {
                for (part, bytes) in [
                    ("weights", device.weights), ("context", device.context), ("compute", device.compute), ("prefix_cache", device.prefixCache),
                    ("metadata", device.metadata),
                ] {
                    set(
                        "pedigree_model_memory_bytes", labels + [("device", device.name), ("part", part)],
                        "Bytes a loaded model holds, by device and part (weights, context: the KV cache, compute, prefix_cache, metadata: vocabulary and metadata).",
                        Double(bytes))
                }
            }
        }
        // A gateway's workers, as it last saw them.
        for member in services.workers?.snapshot ?? [] {
            let worker = [("worker", member.url)]
            set("pedigree_worker_up", worker, "Whether each inference worker is taking work (1) or down or draining (0).", member.healthy ? 1 : 0)
            set("pedigree_worker_failures_total", worker, "Failed polls and requests, by inference worker.", Double(member.failures))
            for model in member.status?.models ?? [] {
                let labels = worker + [("md5", model.md5)]
                set("pedigree_worker_model_slots", labels, "Slots of each model on each inference worker (its last report).", Double(model.slots))
                set(
                    "pedigree_worker_model_slots_active", labels, "Slots generating now, by model and inference worker (its last report).",
                    Double(model.activeSlots))
                set(
                    "pedigree_worker_model_queue_depth", labels, "Requests waiting for a slot, by model and inference worker (its last report).",
                    Double(model.queueDepth))
            }
        }
        for quantile in [0.5, 0.99] {
            if let seconds = services.recorder.writeQuantile(quantile) {
                set(
                    "pedigree_ledger_write_seconds", [("quantile", String(quantile))],
                    "Time an answer waits for its ledger record, over the latest 1024 writes.", seconds)
            }
            if let seconds = services.recorder.receiptQuantile(quantile) {
                set(
                    "pedigree_receipt_seconds", [("quantile", String(quantile))],
                    "Time an answer's receipt takes (statement made, signed, hashed into its leaf), over the latest 1024.", seconds)
            }
        }
        for meter in services.access.meterList {
            let counts = meter.counts
            let labels = [("key", meter.name)]
            set("pedigree_key_requests_total", labels, "Requests made with each API key.", Double(counts.requests))
            set("pedigree_key_rate_limited_total", labels, "Requests and generations refused by each key's quotas.", Double(counts.rateLimited))
            set("pedigree_key_generated_tokens_total", labels, "Tokens generated for each API key.", Double(counts.generatedTokens))
            set("pedigree_key_running_generations", labels, "Generations running now for each API key.", Double(counts.runningGenerations))
        }
        labelled.withLock { previous in
            for (key, gauge) in previous where current[key] == nil { registry.unregisterGauge(gauge) }
            var next: [String: Prometheus.Gauge] = [:]
            for (key, (name, labels, help, value)) in current {
                let gauge = previous[key] ?? registry.makeGauge(name: name, labels: labels, help: help)
                gauge.set(value)
                next[key] = gauge
            }
            previous = next
        }
        let text = telemetry.render()
        guard !perKey else { return text }
        return text.split(separator: "\n", omittingEmptySubsequences: false)
            .filter { line in !Self.perKeyPrefixes.contains { line.hasPrefix($0) } }
            .joined(separator: "\n")
    }

    private static let perKeyPrefixes = ["pedigree_key_", "# HELP pedigree_key_", "# TYPE pedigree_key_"]

    /// Brings a counter kept elsewhere (a service's own count) to `value`.
    private func total(_ name: String, _ help: String, _ value: Int64) {
        let registry = telemetry.registry
        totals.withLock { totals in
            let entry = totals[name] ?? (registry.makeCounter(name: name, help: help), 0)
            if value > entry.value { entry.counter.increment(by: value - entry.value) }
            totals[name] = (entry.counter, max(value, entry.value))
        }
    }
}
