public import DVCKit
public import Foundation
public import GitStore
import Synchronization

/// Reads files from the repository through a cache keyed by blob id, so one blob is read from
/// Git once however many commits, models and requests ask for it.
public final class MetadataReader: Sendable {
    public let repository: GitRepository
    /// Largest metadata file read: a larger blob is refused from its header, unread.
    public let maxBlobBytes: Int
    private let blobs = BoundedCache<String, Data>(capacity: 4096)
    private let readCount = Atomic<Int>(0)

    public init(repository: GitRepository, maxBlobBytes: Int = ParseLimits.default.maxBytes) {
        self.repository = repository
        self.maxBlobBytes = maxBlobBytes
    }

    /// Number of blobs read from Git so far (the rest came from the cache).
    public var blobReads: Int { readCount.load(ordering: .relaxed) }

    /// The bytes of `path` at `commit`, nil when absent.
    public func read(_ path: String, at commit: String) throws -> Data? {
        guard let id = try repository.blobID(path: path, at: commit) else { return nil }
        return try blob(id, path: path)
    }

    /// A blob's bytes, from the cache when possible. A blob over `maxBlobBytes` is a
    /// `DVCError(.tooLarge)` of the file at `path` (so it breaks only what depends on that file).
    public func blob(_ id: String, path: String) throws -> Data {
        try blobs.value(for: id) { () throws -> Data in
            readCount.add(1, ordering: .relaxed)
            do {
                return try repository.blob(id, maxSize: maxBlobBytes)
            } catch let error as GitError where error.kind == .tooLarge {
                throw DVCError(.tooLarge, file: path, "file is over the \(maxBlobBytes)-byte limit for metadata")
            }
        }
    }
}
