public import ArtifactStore
import Foundation
public import GitStore

/// The Git object database as the remote of an artifact committed to Git: the blob's bytes go
/// through the cache's verifying sink like any download (checked against the md5 lineage
/// computed from the same blob, written to a temporary file, renamed into place), so a model kept
/// in Git is one cache entry with the same bytes kept by DVC.
public struct GitBlobRemote: ObjectRemote {
    let repository: GitRepository
    let blob: String

    public init(repository: GitRepository, blob: String) {
        self.repository = repository
        self.blob = blob
    }

    public var name: String { "git" }

    public func read(_ key: String, into sink: ObjectSink) async throws {
        let data: Data
        do {
            data = try repository.blob(blob)
        } catch let error as GitError {
            throw ArtifactError.unavailable(remote: name, reason: "blob \(blob.prefix(12)): \(error.message)")
        }
        // In slices, so progress moves as it does for a download.
        let slice = 1 << 20
        try data.withUnsafeBytes { bytes in
            var offset = 0
            while offset < bytes.count {
                let end = min(offset + slice, bytes.count)
                try sink.write(UnsafeRawBufferPointer(rebasing: bytes[offset..<end]))
                offset = end
            }
        }
    }
}
