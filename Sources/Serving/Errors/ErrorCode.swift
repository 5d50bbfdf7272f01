import Access
import ArtifactStore
import DVCKit
import GitStore
public import HTTPTypes
import Inference
import Ledger
import Lineage
import Trust

/// The `extensions.code` values clients can rely on (see CONTRACT.md). Each knows the HTTP status
/// that fits it when an error is the whole answer, so GraphQL over HTTP, the OpenAI routes and
/// the CLI's exit codes all come from one table.
public enum ErrorCode: String, Sendable, CaseIterable {
    case notFound = "NOT_FOUND"
    case ambiguousRevision = "AMBIGUOUS_REVISION"
    case invalidRevision = "INVALID_REVISION"
    case metadataError = "METADATA_ERROR"
    case artifactUnavailable = "ARTIFACT_UNAVAILABLE"
    case integrityError = "INTEGRITY_ERROR"
    case overloaded = "OVERLOADED"
    case shuttingDown = "SHUTTING_DOWN"
    case modelLoadFailed = "MODEL_LOAD_FAILED"
    case badUserInput = "BAD_USER_INPUT"
    case unauthenticated = "UNAUTHENTICATED"
    case forbidden = "FORBIDDEN"
    case rateLimited = "RATE_LIMITED"
    case queryTooComplex = "QUERY_TOO_COMPLEX"
    case deadlineExceeded = "DEADLINE_EXCEEDED"
    /// The request is sound but the state does not allow it now: an evaluation running already,
    /// a promotion whose evaluation did not pass its gate.
    case failedPrecondition = "FAILED_PRECONDITION"
    /// The revision's weights may not load: their signature does not hold, or they are unsigned
    /// and the policy (`unsigned-weights`) wants a signature.
    case untrustedWeights = "UNTRUSTED_WEIGHTS"
    /// The revision's artifact is not something this engine runs (a pickle, an ONNX file: not
    /// GGUF); its lineage and bytes are still there to read and pull.
    case notServable = "NOT_SERVABLE"
    /// An inference worker failed or left during a generation that had already streamed.
    case workerUnavailable = "WORKER_UNAVAILABLE"
    case internalError = "INTERNAL"

    /// The HTTP status of an answer that is only this error.
    public var status: HTTPResponse.Status {
        switch self {
        case .badUserInput, .invalidRevision, .ambiguousRevision, .queryTooComplex: .badRequest
        case .unauthenticated: .unauthorized
        case .forbidden: .forbidden
        case .failedPrecondition, .untrustedWeights: .conflict
        case .notServable: .unprocessableContent
        case .rateLimited: .tooManyRequests
        case .notFound: .notFound
        case .internalError, .modelLoadFailed, .metadataError: .internalServerError
        case .artifactUnavailable, .integrityError, .workerUnavailable: .badGateway
        case .overloaded, .shuttingDown: .serviceUnavailable
        case .deadlineExceeded: .gatewayTimeout
        }
    }

    /// The code an answer of `status` means, for errors that carry only a status (routing's own
    /// 404 and 405, a body too large).
    public init(status: HTTPResponse.Status) {
        switch status {
        case .unauthorized: self = .unauthenticated
        case .forbidden: self = .forbidden
        case .notFound: self = .notFound
        case .tooManyRequests: self = .rateLimited
        case .serviceUnavailable: self = .overloaded
        case .gatewayTimeout: self = .deadlineExceeded
        case .badGateway: self = .workerUnavailable
        default: self = status.kind == .clientError ? .badUserInput : .internalError
        }
    }

    /// The code and the message to show for an error thrown by a service. Internal failures get a
    /// generic message (details go to the log only), so no filesystem path or secret leaks; every
    /// message is redacted (credentials in URLs) before it is shown or recorded.
    public static func classify(_ error: any Error) -> (code: ErrorCode, message: String) {
        let (code, message) = unredacted(error)
        return (code, Redaction.urlCredentials(in: message))
    }

    private static func unredacted(_ error: any Error) -> (code: ErrorCode, message: String) {
        switch error {
        case let error as LineageError:
            switch error {
            case .notFound: return (.notFound, error.description)
            case .ambiguous: return (.ambiguousRevision, error.description)
            case .invalidRevision: return (.invalidRevision, error.description)
            case .metadata: return (.metadataError, error.description)
            case .git(let git): return unredacted(git)
            }
        case let error as GitError:
            switch error.kind {
            case .notFound: return (.notFound, "not found in the repository")
            case .push: return (.failedPrecondition, "the Git remote did not take the tag: \(error.message)")
            default: return (.internalError, "internal error reading the repository")
            }
        case let error as DVCError:
            return (.metadataError, "invalid DVC metadata in \(error.description)")
        case let error as TrustError:
            return (.badUserInput, error.description)
        case let error as ArtifactError:
            switch error {
            case .integrity, .oversized: return (.integrityError, error.description)
            case .unavailable, .unsafeManifest, .configuration: return (.artifactUnavailable, error.description)
            }
        case let error as InferenceError:
            switch error {
            case .badInput: return (.badUserInput, error.description)
            case .overloaded: return (.overloaded, error.description)
            case .loadFailed: return (.modelLoadFailed, error.description)
            }
        case let error as LedgerError:
            switch error {
            case .configuration: return (.badUserInput, error.description)
            }
        case let error as AccessError:
            switch error {
            case .unauthenticated(let message): return (.unauthenticated, message)
            case .forbidden(let message): return (.forbidden, message)
            case .rateLimited(let message, _): return (.rateLimited, message)
            }
        case let error as AccessFileError:
            return (.badUserInput, error.description)
        case let error as ServingError:
            return (error.code, error.message)
        case let error as ConfigurationError:
            return (.badUserInput, error.message)
        default:
            return (.internalError, "internal error")
        }
    }
}

/// An error raised by the serving core or an edge itself (bad request shape, limits, shutdown).
public struct ServingError: Error, Sendable, CustomStringConvertible {
    public let code: ErrorCode
    public let message: String
    public init(_ code: ErrorCode, _ message: String) {
        self.code = code
        self.message = message
    }
    public var description: String { message }
}
