import Foundation

/// A problem with DVC metadata: which file, and what is wrong with it.
public struct DVCError: Error, CustomStringConvertible, Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        /// The file is not valid YAML/JSON/TOML or not the shape DVC writes.
        case malformed
        /// A path leaves the repository (`..` past the root, or absolute).
        case unsafePath
        /// The file exceeds the size or node budget (for example a YAML alias bomb).
        case tooLarge
        /// A required file or key is missing.
        case missing
    }

    public let kind: Kind
    /// The repository path of the file at fault.
    public let file: String
    public let reason: String

    public init(_ kind: Kind, file: String, _ reason: String) {
        self.kind = kind
        self.file = file
        self.reason = reason
    }

    public var description: String { "\(file): \(reason)" }
}
