public import Logging
import OTel
public import ServiceLifecycle
import Tracing

/// Traces over OpenTelemetry (swift-otel): off unless an OTLP endpoint is configured. When on,
/// every request is one trace (Hummingbird's tracing middleware starts it, continuing a W3C
/// `traceparent` when the client sent one) with spans for resolve → fetch → load → generate
/// (first token as an event) → record; log lines and ledger records carry its trace id.
public enum Traces {
    /// Bootstraps the tracer exporting OTLP/HTTP (protobuf) to `endpoint` (`http://host:4318`);
    /// answers the service that exports batches, to run in the server's group.
    public static func bootstrap(endpoint: String, logger: Logger) throws -> any Service {
        var configuration = OTel.Configuration.default
        configuration.serviceName = "pedigree"
        configuration.traces.exporter = .otlp
        configuration.traces.otlpExporter.endpoint = endpoint
        configuration.traces.otlpExporter.protocol = .httpProtobuf
        configuration.traces.batchSpanProcessor.scheduleDelay = .seconds(1)
        configuration.metrics.enabled = false
        configuration.logs.enabled = false
        configuration.diagnosticLogger = .custom(logger)
        let backend = try OTel.makeTracingBackend(configuration: configuration)
        InstrumentationSystem.bootstrap(backend.factory)
        return backend.service
    }

    /// The trace id of the current span (32 hex digits); nil when tracing is off.
    public static var currentTraceID: String? { ServiceContext.current?.otelTraceID }

    /// Logger metadata (`trace_id`, `span_id`) for every line written inside a span.
    public static var loggingMetadata: Logger.MetadataProvider { OTel.makeLoggingMetadataProvider() }
}
