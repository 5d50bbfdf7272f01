/// ArtifactStore: DVC-tracked artifacts fetched natively into one verified, content-addressed cache.
///
/// This module owns the bytes DVC keeps outside Git: it talks to DVC remotes (local folders,
/// S3 with Signature V4, HTTP), streams objects into `ObjectCache` while checking their md5,
/// and turns a model revision into a read-only local file. It never runs the `dvc` CLI, never
/// leaves a partial object at a final path, and never writes credentials into logs or errors.
///
/// It reads metadata through `Lineage` (which revision, which out, which remote) and knows
/// nothing of inference or HTTP serving.

import DVCKit
import Foundation
import GitStore
public import Lineage
public import Logging
import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Makes model revisions available as local files: resolves the spec through `Lineage`, picks
/// the DVC remote from the repository's config at that commit, and fetches the artifact's
/// objects into the shared `ObjectCache` (a directory out as a tree of hard links).
public final class ArtifactStore: Sendable {
    public let lineage: LineageService
    public let cache: ObjectCache
    let remotes: RemoteFactory
    /// A remote to use instead of the one the repository names (`pedigree pull --remote`).
    let remoteOverride: String?
    private let logger: Logger
    private let active = Mutex<[ObjectIdentifier: TransferProgress]>([:])

    public init(lineage: LineageService, cache: ObjectCache, remoteOverride: String? = nil, logger: Logger = Logger(label: "pedigree.artifacts")) {
        self.lineage = lineage
        self.cache = cache
        self.remoteOverride = remoteOverride
        self.logger = logger
        remotes = RemoteFactory(dvcFolder: lineage.dvcFolder)
    }

    /// What a pull produced.
    public struct Pulled: Sendable {
        public let revision: ModelLineage
        /// The model's read-only file (or folder, for a directory artifact) in the cache.
        public let path: String
        /// Objects downloaded and bytes received by this pull (0 when everything was cached).
        public let downloadedObjects: Int
        public let downloadedBytes: Int64
    }

    /// Pulls that are running now, for progress reports.
    public var transfers: [TransferProgress] { active.withLock { Array($0.values) } }

    /// Fetches the artifact of a revision spec (when not cached) and returns its local path.
    public func pull(_ spec: String, progress: TransferProgress? = nil) async throws -> Pulled {
        let revision = try lineage.lineage(spec)
        let progress = progress ?? TransferProgress(label: revision.id)
        active.withLock { $0[ObjectIdentifier(progress)] = progress }
        defer { _ = active.withLock { $0.removeValue(forKey: ObjectIdentifier(progress)) } }
        let path = try await fetch(revision, progress: progress)
        logger.info(
            "artifact ready",
            metadata: ["revision": "\(revision.id)", "objects": "\(progress.downloadedObjects)", "bytes": "\(progress.receivedBytes)"])
        return Pulled(revision: revision, path: path, downloadedObjects: progress.downloadedObjects, downloadedBytes: progress.receivedBytes)
    }

    /// The local path of a revision's artifact, fetching what is missing.
    public func fetch(_ revision: ModelLineage, progress: TransferProgress? = nil) async throws -> String {
        let artifact = revision.artifact
        let id = try ObjectID(artifact: artifact)
        let root: String
        if let cached = await cachedRoot(id) {
            // The warm path: no DVC config read, no credentials looked up.
            root = cached
        } else if id.isDirectory {
            root = try await fetchDirectory(id, from: try remote(for: revision), progress: progress)
        } else {
            root = try await cache.fetch(id, size: artifact.size, from: try remote(for: revision), progress: progress)
        }
        guard artifact.path != artifact.outPath else { return root }
        // The model is one file of a tracked directory.
        let inside = String(artifact.path.dropFirst(artifact.outPath.count + 1))
        return root + "/" + inside
    }

    /// Whether a revision's artifact is in the cache (a directory: its manifest and every file).
    public func isCached(_ artifact: ArtifactInfo) async -> Bool {
        guard let id = try? ObjectID(artifact: artifact), await cache.contains(id) else { return false }
        return !id.isDirectory || FileManager.default.fileExists(atPath: cache.treePath(of: id))
    }

    /// The local root of a cached object (a directory: its assembled tree), nil when anything is missing.
    private func cachedRoot(_ id: ObjectID) async -> String? {
        guard let path = await cache.cachedPath(of: id) else { return nil }
        guard id.isDirectory else { return path }
        let tree = cache.treePath(of: id)
        return FileManager.default.fileExists(atPath: tree) ? tree : nil
    }

    private func remote(for revision: ModelLineage) throws -> any ObjectRemote {
        let config = try lineage.dvcConfig(at: revision.commit.sha)
        return try remotes.remote(named: remoteOverride ?? revision.artifact.remote, config: config)
    }

    /// A directory out: the manifest, then its files in parallel, then a tree of hard links
    /// assembled in a temporary folder and renamed into place.
    private func fetchDirectory(_ id: ObjectID, from remote: any ObjectRemote, progress: TransferProgress?) async throws -> String {
        let tree = cache.treePath(of: id)
        await cache.pin([id])
        let manifestPath = try await cache.fetch(id, size: nil, from: remote, progress: progress)
        let manifest: DirectoryManifest
        do {
            manifest = try DirectoryManifest(data: try Data(contentsOf: URL(fileURLWithPath: manifestPath)), object: id.md5)
        } catch {
            await cache.unpin([id])
            throw error
        }
        let members: [ObjectID]
        let paths: [String]
        do {
            members = try manifest.entries.map { try id.member($0.md5) }
        } catch {
            await cache.unpin([id])
            throw ArtifactError.unsafeManifest(object: id.md5, reason: "an entry's md5 is not a digest")
        }
        await cache.pin(members)
        do {
            paths = try await fetchAll(members, from: remote, progress: progress)
        } catch {
            await cache.unpin(members + [id])
            throw error
        }
        let assembled = Result { try Self.assembleTree(manifest, from: paths, at: tree, staging: cache.treesPath + "/tmp-" + UUID().uuidString) }
        await cache.unpin(members + [id])
        try assembled.get()
        return tree
    }

    /// Hard-links the files of a directory into `staging`, then renames it to `tree` in one step,
    /// so a reader sees the whole folder or none of it.
    private static func assembleTree(_ manifest: DirectoryManifest, from paths: [String], at tree: String, staging: String) throws {
        do {
            for (entry, source) in zip(manifest.entries, paths) {
                let target = staging + "/" + entry.relpath
                try FileManager.default.createDirectory(atPath: (target as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
                guard link(source, target) == 0 else {
                    throw ArtifactError.configuration("cannot link \(entry.relpath) into the cache: \(String(cString: strerror(errno)))")
                }
            }
            if rename(staging, tree) != 0 {
                // Another pull assembled the same tree first: keep that one.
                try? FileManager.default.removeItem(atPath: staging)
            }
        } catch {
            try? FileManager.default.removeItem(atPath: staging)
            throw error
        }
    }

    /// Fetches objects in parallel (the cache bounds how many download at once), in order.
    private func fetchAll(_ ids: [ObjectID], from remote: any ObjectRemote, progress: TransferProgress?) async throws -> [String] {
        let cache = self.cache
        return try await withThrowingTaskGroup(of: (Int, String).self) { group in
            for (offset, member) in ids.enumerated() {
                group.addTask { (offset, try await cache.fetch(member, size: nil, from: remote, progress: progress)) }
            }
            var paths: [Int: String] = [:]
            for try await (offset, path) in group { paths[offset] = path }
            return paths.sorted { $0.key < $1.key }.map(\.value)
        }
    }
}
