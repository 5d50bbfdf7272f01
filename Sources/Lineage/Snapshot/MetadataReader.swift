public import Foundation
public import GitStore
import Synchronization

/// Reads files from the repository through a cache keyed by blob id, so one blob is read from
/// Git once however many commits, models and requests ask for it.
public final class MetadataReader: Sendable {
    public let repository: GitRepository
    private let blobs = BoundedCache<String, Data>(capacity: 4096)
    private let readCount = Atomic<Int>(0)

    public init(repository: GitRepository) { self.repository = repository }

    /// Number of blobs read from Git so far (the rest came from the cache).
    public var blobReads: Int { readCount.load(ordering: .relaxed) }

    /// The bytes of `path` at `commit`, nil when absent.
    public func read(_ path: String, at commit: String) throws -> Data? {
        guard let id = try repository.blobID(path: path, at: commit) else { return nil }
        return try blob(id)
    }

    /// A blob's bytes, from the cache when possible.
    public func blob(_ id: String) throws -> Data {
        try blobs.value(for: id) { () throws -> Data in
            readCount.add(1, ordering: .relaxed)
            return try repository.blob(id)
        }
    }
}
