import Hummingbird
import NIOCore
import Serving

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

    static func collect(_ request: Request, timeout: Duration) async throws(Failure) -> ByteBuffer {
        let body = request.body
        do {
            return try await withDeadline(timeout, "request body not received in time") { try await body.collect(upTo: maxSize) }
        } catch let error as ServingError where error.code == .deadlineExceeded {
            throw .tooSlow
        } catch is NIOTooManyBytesError {
            throw .tooLarge
        } catch {
            throw .incomplete
        }
    }

    /// The status and message of a failure.
    static func answer(_ failure: Failure) -> (status: Int, message: String) {
        switch failure {
        case .tooLarge: (413, "request body over 1 MiB")
        case .tooSlow: (408, "request body not received in time")
        case .incomplete: (400, "request body incomplete")
        }
    }
}
