import Clibgit2

/// An error from the Git layer, with libgit2's message where there is one.
public struct GitError: Error, CustomStringConvertible, Sendable {
    /// What went wrong, in terms a caller can act on.
    public enum Kind: Sendable, Equatable {
        /// The object, reference or path does not exist.
        case notFound
        /// A short object id matches more than one object.
        case ambiguous
        /// The repository could not be opened, cloned or fetched.
        case repository
        /// An object is larger than the caller accepts (checked from its header, unread).
        case tooLarge
        /// The source did not take a pushed ref (refused, unreachable, or a non-bare local repository).
        case push
        /// Any other libgit2 failure.
        case other
    }

    public let kind: Kind
    public let message: String

    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    public var description: String { message }

    /// Builds an error from a libgit2 return code, reading `git_error_last()` on this thread
    /// (libgit2 keeps the last error per thread, so this must run right after the failing call).
    static func fromLibgit2(_ code: Int32, _ context: String) -> GitError {
        let detail = git_error_last().flatMap { $0.pointee.message.map { String(cString: $0) } } ?? "error \(code)"
        let kind: Kind
        switch code {
        case GIT_ENOTFOUND.rawValue: kind = .notFound
        case GIT_EAMBIGUOUS.rawValue: kind = .ambiguous
        default: kind = .other
        }
        return GitError(kind, "\(context): \(detail)")
    }
}

/// Runs a libgit2 call and throws a `GitError` when it returns a negative code.
@inline(__always)
func check(_ code: Int32, _ context: @autoclosure () -> String) throws {
    if code < 0 { throw GitError.fromLibgit2(code, context()) }
}
