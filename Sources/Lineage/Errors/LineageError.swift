public import DVCKit
import Foundation
public import GitStore

/// Why a lineage question has no answer. Each case maps to one GraphQL `extensions.code`.
public enum LineageError: Error, CustomStringConvertible, Sendable {
    /// No such model, revision, version or stage (`NOT_FOUND`).
    case notFound(String)
    /// A bare SHA names a commit with several models (`AMBIGUOUS_REVISION`), or a short SHA
    /// matches several objects.
    case ambiguous(String, choices: [String])
    /// The spec is not well-formed (`INVALID_REVISION`).
    case invalidRevision(String)
    /// The model's DVC metadata at that commit is broken (`METADATA_ERROR`).
    case metadata(DVCError)
    /// The Git layer failed (`INTERNAL`, or `NOT_FOUND` for missing objects).
    case git(GitError)

    /// Any error from the layers below, as a `LineageError`.
    public static func wrap(_ error: any Error) -> LineageError {
        switch error {
        case let error as LineageError: return error
        case let error as DVCError: return .metadata(error)
        case let error as GitError: return .git(error)
        default: return .git(GitError(.other, "\(error)"))
        }
    }

    public var description: String {
        switch self {
        case .notFound(let message), .invalidRevision(let message): return message
        case .ambiguous(let message, let choices):
            return choices.isEmpty ? message : "\(message); choose one of: \(choices.joined(separator: ", "))"
        case .metadata(let error): return "invalid DVC metadata in \(error.description)"
        case .git(let error): return error.description
        }
    }
}
