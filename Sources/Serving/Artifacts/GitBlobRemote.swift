public import ArtifactStore
import Foundation
public import Lineage

/// The Git object database as the remote of an artifact committed to Git: the blob's bytes go
/// through the cache's verifying sink like any download (checked against the md5 lineage
/// computed from the same blob, written to a temporary file, renamed into place), so a model kept
/// in Git is one cache entry with the same bytes kept by DVC.
public struct GitBlobRemote: ObjectRemote {
    let lineage: LineageService
    let blob: String
    let path: String

    public init(lineage: LineageService, blob: String, path: String) {
        self.lineage = lineage
        self.blob = blob
        self.path = path
    }

    public var name: String { "git" }

    /// The blob's bytes where libgit2 holds them, bounded and one blob at a time
    /// (`LineageService.readBlob`), written in slices so progress moves as for a download.
    public func read(_ key: String, into sink: ObjectSink) async throws {
        try lineage.readBlob(blob, path: path) { bytes in
            let slice = 1 << 20
            var offset = 0
            while offset < bytes.count {
                let end = min(offset + slice, bytes.count)
                try sink.write(UnsafeRawBufferPointer(rebasing: bytes[offset..<end]))
                offset = end
            }
        }
    }
}
