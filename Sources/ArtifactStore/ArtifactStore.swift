/// ArtifactStore: DVC-tracked artifacts fetched natively into one verified, content-addressed cache.
///
/// This module owns the bytes DVC keeps outside Git: it talks to DVC remotes (local folders,
/// S3 with Signature V4, HTTP), streams objects into `ObjectCache` while checking their md5,
/// and turns an artifact's object into a read-only local file. It never runs the `dvc` CLI, never
/// leaves a partial object at a final path, and never writes credentials into logs or errors.
///
/// It is handed what to fetch (`ArtifactLocation`: object ids and the out's remote) and the DVC
/// configuration to find the remote in; it knows nothing of Git, revisions, inference or HTTP.

public import DVCKit
import Foundation
public import Logging
import Metrics
import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// What to fetch for one artifact: the DVC out's object (a file, or a directory's `.dir`
/// manifest), where the artifact lies inside it, and the remote the out names.
public struct ArtifactLocation: Sendable, Hashable {
    public let object: ObjectID
    /// The out's size in bytes when DVC recorded it: a file's download stops there, a directory's
    /// files together may not exceed it.
    public let size: Int64?
    /// The artifact's path relative to a directory out; nil when the out is the artifact.
    public let pathInOut: String?
    /// The DVC remote the out names (`remote:`); nil for `core.remote`.
    public let remote: String?

    public init(object: ObjectID, size: Int64?, pathInOut: String? = nil, remote: String? = nil) {
        self.object = object
        self.size = size
        self.pathInOut = pathInOut
        self.remote = remote
    }
}

/// Makes artifacts available as local files: picks the DVC remote from the configuration it is
/// handed, and fetches the artifact's objects into the shared `ObjectCache` (a directory out as a
/// tree of hard links).
public final class ArtifactStore: Sendable {
    public let cache: ObjectCache
    let remotes: RemoteFactory
    /// A remote to use instead of the one the repository names (`pedigree pull --remote`).
    let remoteOverride: String?
    /// The operator's Git LFS credentials, each for the endpoints it names.
    let lfsCredentials: LFSCredentials
    private let logger: Logger
    private let active = Mutex<[ObjectIdentifier: TransferProgress]>([:])
    private let lookupCounts = Mutex<(hits: Int64, misses: Int64)>((0, 0))

    /// Fetches answered from the cache and fetches that had to download, since start.
    public var lookups: (hits: Int64, misses: Int64) { lookupCounts.withLock { $0 } }

    /// - Parameter dvcFolder: the source working tree's `.dvc` folder, against which a relative
    ///   local remote URL is resolved (as DVC does); nil when the source is not a local folder.
    /// - Parameter trustedEndpoints: remote endpoints the repository's committed config may name
    ///   and still get the operator's credentials (`remote-endpoints`).
    public init(
        cache: ObjectCache, dvcFolder: String?, remoteOverride: String? = nil, trustedEndpoints: [String] = [],
        lfsCredentials: LFSCredentials = .none,
        logger: Logger = Logger(label: "pedigree.artifacts")
    ) {
        self.cache = cache
        self.remoteOverride = remoteOverride
        self.lfsCredentials = lfsCredentials
        self.logger = logger
        remotes = RemoteFactory(dvcFolder: dvcFolder, trustedEndpoints: trustedEndpoints)
    }

    /// Fetches that are running now, for progress reports.
    public var transfers: [TransferProgress] { active.withLock { Array($0.values) } }

    /// The local path of an artifact, fetching what is missing from the DVC remote it names.
    /// `config` is read only when something must be downloaded (a cached artifact needs no DVC
    /// config and no credentials).
    public func fetch(_ location: ArtifactLocation, config: @Sendable () throws -> DVCConfig, progress: TransferProgress) async throws -> String {
        try await fetch(location, from: { try remotes.remote(named: remoteOverride ?? location.remote, config: try config()) }, progress: progress)
    }

    /// The local path of an artifact, fetching what is missing from the remote `remote` makes
    /// (asked only when something must be downloaded): how bytes kept elsewhere than a DVC remote
    /// (a Git blob) join the same verified cache.
    public func fetch(_ location: ArtifactLocation, from remote: () throws -> any ObjectRemote, progress: TransferProgress) async throws -> String {
        let id = location.object
        let root: String
        if let cached = await cachedRoot(id) {
            root = cached
            countLookup(hit: true)
        } else {
            countLookup(hit: false)
            root = try await transferring(progress) {
                let remote = try remote()
                if id.isDirectory { return try await fetchDirectory(id, size: location.size, from: remote, progress: progress) }
                return try await cache.fetch(id, size: location.size, from: remote, progress: progress)
            }
            logger.info(
                "artifact ready",
                metadata: [
                    "object": "\(id)", "label": "\(progress.label)", "objects": "\(progress.downloadedObjects)", "bytes": "\(progress.receivedBytes)",
                ])
        }
        guard let inside = location.pathInOut else { return root }
        return root + "/" + inside
    }

    /// The object with SHA-256 `oid` (a Git LFS object of `size` bytes) in the cache, fetched
    /// from `endpoint` when missing (see `RemoteFactory.lfsRemote`); its md5 name and path.
    public func fetchLFS(oid: String, size: Int64, endpoint: @Sendable () throws -> (url: String, fromRepository: Bool)?, progress: TransferProgress)
        async throws -> (id: ObjectID, path: String)
    {
        if let id = await cache.object(sha256: oid) {
            countLookup(hit: true)
            return (id, cache.path(of: id))
        }
        countLookup(hit: false)
        if let budget = cache.budget, size > budget {
            throw ArtifactError.oversized(object: "sha256:" + oid, limit: budget)
        }
        guard let chosen = try endpoint() else {
            throw ArtifactError.configuration("no Git LFS endpoint: the commit has no .lfsconfig and the repository's source is not a URL")
        }
        let (remote, key) = try remotes.lfsRemote(
            endpoint: chosen.url, fromRepository: chosen.fromRepository, oid: oid, size: size, credentials: lfsCredentials)
        let fetched = try await transferring(progress) { try await cache.fetch(sha256: oid, key: key, size: size, from: remote, progress: progress) }
        logger.info(
            "artifact ready",
            metadata: ["object": "sha256:\(oid)", "md5": "\(fetched.id.md5)", "label": "\(progress.label)", "bytes": "\(progress.receivedBytes)"])
        return fetched
    }

    /// Counts a cache lookup (`lookups`, and `pedigree_artifact_cache_lookups_total` by result).
    private func countLookup(hit: Bool) {
        lookupCounts.withLock { hit ? ($0.hits += 1) : ($0.misses += 1) }
        Counter(label: "pedigree_artifact_cache_lookups_total", dimensions: [("result", hit ? "hit" : "miss")]).increment()
    }

    /// Runs a download: listed in `transfers` while it runs, timed in `pedigree.artifact.fetch.duration`.
    private func transferring<T>(_ progress: TransferProgress, _ body: () async throws -> T) async throws -> T {
        let started = ContinuousClock.now
        defer { Timer(label: "pedigree.artifact.fetch.duration").record(duration: ContinuousClock.now - started) }
        active.withLock { $0[ObjectIdentifier(progress)] = progress }
        defer { _ = active.withLock { $0.removeValue(forKey: ObjectIdentifier(progress)) } }
        return try await body()
    }

    /// Whether an artifact is in the cache (a directory: its manifest and every file).
    public func isCached(_ location: ArtifactLocation) async -> Bool {
        let id = location.object
        guard await cache.contains(id) else { return false }
        return !id.isDirectory || FileManager.default.fileExists(atPath: cache.treePath(of: id))
    }

    /// The local root of a cached object (a directory: its assembled tree), nil when anything is missing.
    private func cachedRoot(_ id: ObjectID) async -> String? {
        guard let path = await cache.cachedPath(of: id) else { return nil }
        guard id.isDirectory else { return path }
        let tree = cache.treePath(of: id)
        return FileManager.default.fileExists(atPath: tree) ? tree : nil
    }

    /// A directory out: the manifest, then its files in parallel, then a tree of hard links
    /// assembled in a temporary folder and renamed into place.
    /// `size` is the directory's recorded size: its files together may not be larger (with none
    /// recorded, the cache's budget bounds them).
    private func fetchDirectory(_ id: ObjectID, size: Int64?, from remote: any ObjectRemote, progress: TransferProgress?) async throws -> String {
        let tree = cache.treePath(of: id)
        await cache.pin([id])
        let manifestPath: String
        do {
            manifestPath = try await cache.fetch(id, size: DirectoryManifest.maxBytes, exact: false, from: remote, progress: progress)
        } catch {
            await cache.unpin([id])
            throw error
        }
        let manifest: DirectoryManifest
        do {
            manifest = try DirectoryManifest(data: try Data(contentsOf: URL(fileURLWithPath: manifestPath)), object: id.md5)
        } catch let error as DVCError {
            await cache.unpin([id])
            throw ArtifactError.unsafeManifest(object: id.md5, reason: error.reason)
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
            paths = try await fetchAll(members, within: (size ?? cache.budget).map(ByteBudget.init(limit:)), from: remote, progress: progress)
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
    private func fetchAll(_ ids: [ObjectID], within shared: ByteBudget?, from remote: any ObjectRemote, progress: TransferProgress?) async throws
        -> [String]
    {
        let cache = self.cache
        return try await withThrowingTaskGroup(of: (Int, String).self) { group in
            for (offset, member) in ids.enumerated() {
                group.addTask { (offset, try await cache.fetch(member, size: nil, exact: false, shared: shared, from: remote, progress: progress)) }
            }
            var paths: [Int: String] = [:]
            for try await (offset, path) in group { paths[offset] = path }
            return paths.sorted { $0.key < $1.key }.map(\.value)
        }
    }
}
