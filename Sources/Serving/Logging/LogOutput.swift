public import Foundation
public import Logging
import Synchronization

/// How log lines are written.
public enum LogFormat: String, Sendable, CaseIterable {
    /// swift-log's stream handler.
    case text
    /// One JSON object per line.
    case json
}

/// The process's log output, chosen once at start: `text` (swift-log's stream handler) or `json`
/// (one JSON object per line: time, level, label, message and every metadata value, so a
/// request's lines can be found by `request_id`).
public enum LogOutput {
    private static let bootstrapped = Mutex(false)

    /// Bootstraps `LoggingSystem` (once per process; later calls do nothing).
    public static func bootstrap(format: LogFormat, level: Logger.Level) {
        let first = bootstrapped.withLock { done in
            defer { done = true }
            return !done
        }
        guard first else { return }
        // Lines written inside a span carry its trace_id and span_id.
        LoggingSystem.bootstrap(
            { label, provider in
                var handler: any LogHandler =
                    format == .json
                    ? JSONLogHandler(label: label, metadataProvider: provider)
                    : StreamLogHandler.standardError(label: label, metadataProvider: provider)
                handler.logLevel = level
                return RedactingLogHandler(handler)
            }, metadataProvider: Traces.loggingMetadata)
    }
}

/// Writes each entry as one line of JSON on standard error.
public struct JSONLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level = .info
    public var metadataProvider: Logger.MetadataProvider?
    let label: String
    private static let output = Mutex(FileHandle.standardError)

    public init(label: String, metadataProvider: Logger.MetadataProvider? = nil) {
        self.label = label
        self.metadataProvider = metadataProvider
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var object: [String: Any] = [:]
        let provided = metadataProvider?.get() ?? [:]
        for (key, value) in provided.merging(metadata, uniquingKeysWith: { $1 }).merging(event.metadata ?? [:], uniquingKeysWith: { $1 }) {
            object[key] = Self.plain(value)
        }
        object["time"] = Date().formatted(.iso8601.year().month().day().time(includingFractionalSeconds: true))
        object["level"] = event.level.rawValue
        object["label"] = label
        object["message"] = "\(event.message)"
        guard var line = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes]) else { return }
        line.append(10)
        Self.output.withLock { $0.write(line) }
    }

    private static func plain(_ value: Logger.Metadata.Value) -> Any {
        switch value {
        case .string(let text): text
        case .stringConvertible(let convertible): convertible.description
        case .array(let values): values.map(plain)
        case .dictionary(let values): values.mapValues(plain)
        }
    }
}

/// Passes every entry on with credentials inside URLs redacted (`Redaction`), in the message and
/// in every metadata value: an error that quotes a repository or database URL cannot put its
/// password in the log.
public struct RedactingLogHandler: LogHandler {
    private var inner: any LogHandler

    public init(_ inner: any LogHandler) { self.inner = inner }

    public var metadata: Logger.Metadata {
        get { inner.metadata }
        set { inner.metadata = newValue }
    }

    public var logLevel: Logger.Level {
        get { inner.logLevel }
        set { inner.logLevel = newValue }
    }

    public var metadataProvider: Logger.MetadataProvider? {
        get { inner.metadataProvider }
        set { inner.metadataProvider = newValue }
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { inner[metadataKey: key] }
        set { inner[metadataKey: key] = newValue }
    }

    public func log(event: LogEvent) {
        var event = event
        event.message = "\(Redaction.urlCredentials(in: "\(event.message)"))"
        event.metadata = event.metadata?.mapValues(Self.redacted)
        inner.log(event: event)
    }

    static func redacted(_ value: Logger.Metadata.Value) -> Logger.Metadata.Value {
        switch value {
        case .string(let text): .string(Redaction.urlCredentials(in: text))
        case .stringConvertible(let convertible): .string(Redaction.urlCredentials(in: convertible.description))
        case .array(let values): .array(values.map(redacted))
        case .dictionary(let values): .dictionary(values.mapValues(redacted))
        }
    }
}
