public import CoreMetrics
import Foundation
import Metrics
public import Prometheus
import Synchronization

/// The process's metrics: swift-metrics (what every module records through) backed by one
/// swift-prometheus registry, which `/metrics` renders. Names follow the OpenTelemetry
/// conventions where one exists (`gen_ai.server.time_to_first_token`, `http.server.request.duration`)
/// and become Prometheus names here: dots to underscores, durations in seconds with `_seconds`.
public final class Telemetry: Sendable {
    public let registry: PrometheusCollectorRegistry

    public init(registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry()) {
        self.registry = registry
    }

    private static let bootstrapped = Mutex<Telemetry?>(nil)

    /// The telemetry that swift-metrics reports to, bootstrapped on first use (once per process:
    /// swift-metrics has one global factory).
    public static func bootstrap() -> Telemetry {
        bootstrapped.withLock { existing in
            if let existing { return existing }
            let telemetry = Telemetry()
            var factory = PrometheusMetricsFactory(registry: telemetry.registry)
            factory.nameAndLabelSanitizer = { name, labels in (prometheusName(name), labels.map { (prometheusName($0.0), $0.1) }) }
            factory.defaultDurationHistogramBuckets = durationBuckets
            factory.valueHistogramBuckets = [prometheusName(MetricName.tokenUsage): tokenBuckets]
            MetricsSystem.bootstrap(factory)
            existing = telemetry
            return telemetry
        }
    }

    /// Seconds from 0.5 ms to 60 s: requests here take from well under a millisecond (a cached
    /// lineage) to minutes (a long generation).
    static let durationBuckets: [Duration] = [
        .microseconds(500), .milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50),
        .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1), .milliseconds(2500), .seconds(5), .seconds(10),
        .seconds(30), .seconds(60),
    ]
    /// Token counts by powers of 4 (the OpenTelemetry GenAI advice).
    static let tokenBuckets: [Double] = [1, 4, 16, 64, 256, 1024, 4096, 16384, 65536]

    /// `gen_ai.server.time_to_first_token` → `gen_ai_server_time_to_first_token_seconds`.
    static func prometheusName(_ name: String) -> String {
        let underscored = name.replacingOccurrences(of: ".", with: "_")
        return MetricName.seconds.contains(name) ? underscored + "_seconds" : underscored
    }

    /// The exposition text: the registry's families as swift-prometheus writes them.
    public func render() -> String { registry.emitToString() }
}

/// Metric names used in more than one place (the OpenTelemetry names where one exists).
public enum MetricName {
    public static let timeToFirstToken = "gen_ai.server.time_to_first_token"
    public static let timePerOutputToken = "gen_ai.server.time_per_output_token"
    public static let requestDuration = "gen_ai.server.request.duration"
    public static let tokenUsage = "gen_ai.client.token.usage"
    public static let httpDuration = "http.server.request.duration"
    public static let modelLoadDuration = "pedigree.model.load.duration"
    public static let artifactFetchDuration = "pedigree.artifact.fetch.duration"
    public static let ledgerWriteDuration = "pedigree.ledger.write.duration"
    /// Timers, measured in seconds.
    static let seconds: Set<String> = [
        timeToFirstToken, timePerOutputToken, requestDuration, httpDuration, modelLoadDuration, artifactFetchDuration, ledgerWriteDuration,
    ]
}

extension Duration {
    /// Whole nanoseconds (for swift-metrics timers), saturating.
    public var nanoseconds: Int64 {
        let (seconds, attoseconds) = components
        guard seconds < Int64.max / 1_000_000_000 else { return .max }
        return seconds * 1_000_000_000 + attoseconds / 1_000_000_000
    }
}
