import ArtifactStore
import DVCKit
import GitStore
import Inference
import Lineage

/// The `extensions.code` values clients can rely on (see CONTRACT.md), and the HTTP status that
/// fits each when an error is the whole answer.
public enum ErrorCode: String, Sendable {
    case notFound = "NOT_FOUND"
    case ambiguousRevision = "AMBIGUOUS_REVISION"
    case invalidRevision = "INVALID_REVISION"
    case metadataError = "METADATA_ERROR"
    case artifactUnavailable = "ARTIFACT_UNAVAILABLE"
    case integrityError = "INTEGRITY_ERROR"
    case overloaded = "OVERLOADED"
    case modelLoadFailed = "MODEL_LOAD_FAILED"
    case badUserInput = "BAD_USER_INPUT"
    case queryTooComplex = "QUERY_TOO_COMPLEX"
    case internalError = "INTERNAL"

    /// The code and the message to show for an error thrown by a service. Internal failures get a
    /// generic message (details go to the log only), so no filesystem path or secret leaks.
    public static func classify(_ error: any Error) -> (code: ErrorCode, message: String) {
        switch error {
        case let error as LineageError:
            switch error {
            case .notFound: return (.notFound, error.description)
            case .ambiguous: return (.ambiguousRevision, error.description)
            case .invalidRevision: return (.invalidRevision, error.description)
            case .metadata: return (.metadataError, error.description)
            case .git(let git) where git.kind == .notFound: return (.notFound, "not found in the repository")
            case .git: return (.internalError, "internal error reading the repository")
            }
        case let error as DVCError:
            return (.metadataError, "invalid DVC metadata in \(error.description)")
        case let error as ArtifactError:
            switch error {
            case .integrity: return (.integrityError, error.description)
            case .unavailable, .unsafeManifest, .configuration: return (.artifactUnavailable, error.description)
            }
        case let error as InferenceError:
            switch error {
            case .badInput: return (.badUserInput, error.description)
            case .overloaded: return (.overloaded, error.description)
            case .loadFailed: return (.modelLoadFailed, error.description)
            }
        case let error as APIError:
            return (error.code, error.message)
        default:
            return (.internalError, "internal error")
        }
    }
}

/// An error raised by the API layer itself (bad request shape, limits).
public struct APIError: Error, Sendable, CustomStringConvertible {
    public let code: ErrorCode
    public let message: String
    public init(_ code: ErrorCode, _ message: String) {
        self.code = code
        self.message = message
    }
    public var description: String { message }
}
