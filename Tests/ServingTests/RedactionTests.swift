import Logging
import Serving
import Synchronization
import Testing

struct RedactionTests {
    @Test func urlCredentialsAreRedactedAnywhereInText() {
        #expect(Redaction.urlCredentials(in: "https://bot:tok3n@git.example/m.git") == "https://bot:<redacted>@git.example/m.git")
        #expect(Redaction.urlCredentials(in: "https://tok3n@git.example") == "https://<redacted>@git.example")
        #expect(
            Redaction.urlCredentials(in: "fetch of 'postgres://u:p%40ss@db:5432/x?sslmode=require' failed; retry https://a:b@h/")
                == "fetch of 'postgres://u:<redacted>@db:5432/x?sslmode=require' failed; retry https://a:<redacted>@h/")
        let plain = "mail me@example.com, see https://example.com/a@b"
        #expect(Redaction.urlCredentials(in: plain) == plain)
        #expect(Redaction.urlCredentials(in: "no urls here") == "no urls here")
        #expect(Redaction.urlCredentials(in: "://@") == "://<redacted>@")
        // Passwords with characters RFC 3986 would have encoded, as DVC and Git take them.
        for password in ["pa,ss)w0rd", "s3cr,et)tok'en", "a\"b<c>d\\e", "p@ss"] {
            let text = "the scheme of 'sftp://deploy:\(password)@files.example.com/store' is not supported"
            let redacted = Redaction.urlCredentials(in: text)
            #expect(!redacted.contains(password) && redacted.contains("sftp://deploy:<redacted>@files.example.com/store"), "\(redacted)")
        }
    }

    /// Collects what reaches the handler behind the redaction.
    final class Capture: Sendable {
        let lines = Mutex<[String]>([])
    }

    struct CapturingHandler: LogHandler {
        let capture: Capture
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .trace
        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }
        func log(event: LogEvent) {
            let values = (event.metadata ?? [:]).sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
            capture.lines.withLock { $0.append(([event.message.description] + values).joined(separator: " ")) }
        }
    }

    @Test func theLogHandlerRedactsMessagesAndMetadata() {
        let capture = Capture()
        let logger = Logger(label: "test") { _ in RedactingLogHandler(CapturingHandler(capture: capture)) }
        logger.warning(
            "refresh of https://bot:hunter2@git.example/m.git failed",
            metadata: ["error": "\(URLError("http://x:y@h"))", "nested": .array([.string("s3://k:secret@bucket")])])
        let line = capture.lines.withLock { $0.joined() }
        #expect(!line.contains("hunter2") && !line.contains("x:y@") && !line.contains("secret"))
        #expect(line.contains("https://bot:<redacted>@git.example/m.git") && line.contains("s3://k:<redacted>@bucket"))
    }

    struct URLError: CustomStringConvertible {
        let url: String
        init(_ url: String) { self.url = url }
        var description: String { "cannot reach \(url)" }
    }
}
