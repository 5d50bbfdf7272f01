import HTTPTypes
import Hummingbird
import NIOCore

/// Reads a request body whole, bounded in size and in time: a client that trickles its body
/// (or stops sending it) is answered 408 after `timeout` instead of holding a task forever.
enum RequestBody {
    enum Failure: Error {
        case tooLarge
        case tooSlow
        /// The connection ended mid-body (the client left, or stalled past the idle timeout).
        case incomplete
    }

    static let maxSize = 1 << 20

    /// The body, read chunk by chunk on the request's own task (no timer task: a body that stops
    /// arriving is closed by the connection's idle timeout; one that trickles in is refused once
    /// a chunk arrives past the deadline).
    static func collect(_ request: Request, timeout: Duration) async throws(Failure) -> ByteBuffer {
        let deadline = ContinuousClock.now + timeout
        var collected = ByteBuffer()
        do {
            for try await chunk in request.body {
                guard collected.readableBytes + chunk.readableBytes <= maxSize else { throw Failure.tooLarge }
                var chunk = chunk
                collected.writeBuffer(&chunk)
                if ContinuousClock.now > deadline { throw Failure.tooSlow }
            }
        } catch let failure as Failure {
            throw failure
        } catch {
            throw .incomplete
        }
        return collected
    }

    /// The status and message of a failure.
    static func answer(_ failure: Failure) -> (status: HTTPResponse.Status, message: String) {
        switch failure {
        case .tooLarge: (.contentTooLarge, "request body over 1 MiB")
        case .tooSlow: (.requestTimeout, "request body not received in time")
        case .incomplete: (.badRequest, "request body incomplete")
        }
    }
}
