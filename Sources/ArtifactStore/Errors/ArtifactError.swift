/// Why an artifact could not be made available locally.
public enum ArtifactError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The remote is missing the object, refused the request or could not be reached. The reason
    /// names the remote and what it said; it never holds credentials.
    case unavailable(remote: String, reason: String)
    /// The bytes received do not hash to the digest recorded (DVC's md5, a Git LFS pointer's
    /// SHA-256: `expected` and `actual` say which); nothing was cached.
    case integrity(object: String, expected: String, actual: String)
    /// The remote sent more bytes than the size recorded for the object (or the bound of its
    /// kind): the transfer was stopped there and nothing was cached.
    case oversized(object: String, limit: Int64)
    /// A `.dir` manifest that is not valid JSON or names a path outside its folder.
    case unsafeManifest(object: String, reason: String)
    /// The repository's DVC configuration does not say where to fetch from.
    case configuration(String)

    public var description: String {
        switch self {
        case .unavailable(let remote, let reason): "remote '\(remote)': \(reason)"
        case .integrity(let object, let expected, let actual):
            "object \(object) failed verification: expected \(expected), received \(actual); nothing was cached"
        case .oversized(let object, let limit):
            "object \(object) is larger than the \(limit) bytes recorded for it: the transfer was stopped; nothing was cached"
        case .unsafeManifest(let object, let reason): "directory manifest \(object) rejected: \(reason)"
        case .configuration(let message): message
        }
    }
}

/// A failed request to a remote, classified for the retry policy.
struct RemoteFailure: Error, Sendable {
    enum Kind: Sendable {
        /// The object is not there (404, no such file).
        case notFound
        /// The remote refused (4xx other than 404: bad credentials, forbidden): retrying will not help.
        case refused
        /// 5xx, a dropped connection, a timeout: worth retrying.
        case transient
    }
    let kind: Kind
    let reason: String
    init(_ kind: Kind, _ reason: String) {
        self.kind = kind
        self.reason = reason
    }
}
