public import Foundation
public import Logging

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The content-addressed object cache shared by every revision and model.
///
/// Layout under `root`: `objects/<scheme>/<ab>/<cdef…>` (read-only files named by md5),
/// `objects/tmp/` (downloads in progress, removed on start), `trees/<md5>.dir/` (directory outs
/// as hard links to their objects). An object is downloaded once however many tasks ask for it
/// (single flight), different objects download in parallel up to a bound, and with a size budget
/// the least recently used objects are evicted — never a pinned one (a loaded model's file, or
/// an artifact being assembled).
public actor ObjectCache {
    public nonisolated let root: URL
    nonisolated let objectsPath: String
    nonisolated let temporaryPath: String
    nonisolated let treesPath: String
    /// Bytes the cache may hold; nil for no limit.
    public let budget: Int64?
    let retry: RetryPolicy
    let logger: Logger

    private struct Entry {
        let id: ObjectID
        let size: Int64
        var lastUse: UInt64
    }
    private var index: [String: Entry] = [:]
    private var totalBytes: Int64 = 0
    private var clock: UInt64 = 0
    private var pins: [String: Int] = [:]
    private var flights: [String: Task<String, any Error>] = [:]
    private var permits: Int
    private var waiters: [CheckedContinuation<Void, Never>] = []
    /// Objects downloaded and bytes received since start (the metrics and the tests count them).
    public private(set) var downloads = 0
    public private(set) var downloadedBytes: Int64 = 0

    /// Opens (or creates) the cache at `root`: leftovers of interrupted downloads are removed, and
    /// every object is checked to have a valid name (and, with `verify`, its md5).
    public init(
        root: URL, budget: Int64? = nil, maxConcurrentDownloads: Int = 8, retry: RetryPolicy = RetryPolicy(), verify: Bool = false,
        logger: Logger = Logger(label: "pedigree.cache")
    ) throws {
        self.root = root
        objectsPath = root.appendingPathComponent("objects").path
        temporaryPath = objectsPath + "/tmp"
        treesPath = root.appendingPathComponent("trees").path
        self.budget = budget
        self.retry = retry
        self.logger = logger
        permits = max(1, maxConcurrentDownloads)
        let files = FileManager.default
        try? files.removeItem(atPath: temporaryPath)
        for path in [objectsPath, temporaryPath, treesPath] { try files.createDirectory(atPath: path, withIntermediateDirectories: true) }
        for leftover in (try? files.contentsOfDirectory(atPath: treesPath)) ?? [] where leftover.hasPrefix("tmp-") {
            try? files.removeItem(atPath: treesPath + "/" + leftover)
        }
        var found: [(String, Entry, Double)] = []
        for scheme in [ObjectID.Scheme.md5, .legacy] {
            let schemePath = objectsPath + "/" + scheme.rawValue
            for fan in (try? files.contentsOfDirectory(atPath: schemePath)) ?? [] {
                for name in (try? files.contentsOfDirectory(atPath: schemePath + "/" + fan)) ?? [] {
                    let path = "\(schemePath)/\(fan)/\(name)"
                    guard let id = try? ObjectID(md5: fan + name, scheme: scheme), fan.count == 2,
                        let attributes = try? files.attributesOfItem(atPath: path),
                        let size = (attributes[.size] as? NSNumber)?.int64Value,
                        !verify || Self.digest(of: path, id: id) == id.digest
                    else {
                        logger.warning("removing an invalid cache entry", metadata: ["entry": "\(scheme.rawValue)/\(fan)/\(name)"])
                        try? files.removeItem(atPath: path)
                        continue
                    }
                    let modified = (attributes[.modificationDate] as? Date)?.timeIntervalSince1970 ?? 0
                    found.append((id.cacheKey, Entry(id: id, size: size, lastUse: 0), modified))
                }
            }
        }
        // Restore recency from modification times (touched on every use).
        for (rank, item) in found.sorted(by: { $0.2 < $1.2 }).enumerated() {
            var entry = item.1
            entry.lastUse = UInt64(rank + 1)
            index[item.0] = entry
            totalBytes += entry.size
        }
        clock = UInt64(found.count)
    }

    // MARK: Reads

    /// Where an object lives (or would live) in the cache.
    public nonisolated func path(of id: ObjectID) -> String { objectsPath + "/" + id.cacheKey }

    /// Where a directory out is assembled.
    nonisolated func treePath(of id: ObjectID) -> String { treesPath + "/" + id.scheme.rawValue + "-" + id.md5 }

    /// Whether the object is cached.
    public func contains(_ id: ObjectID) -> Bool { index[id.cacheKey] != nil }

    /// Objects and bytes held.
    public var usage: (objects: Int, bytes: Int64) { (index.count, totalBytes) }

    // MARK: Pins

    /// Keeps objects from eviction until `unpin`; pins are counted.
    public func pin(_ ids: [ObjectID]) { for id in ids { pins[id.cacheKey, default: 0] += 1 } }

    public func unpin(_ ids: [ObjectID]) {
        for id in ids {
            let key = id.cacheKey
            if let count = pins[key], count > 1 { pins[key] = count - 1 } else { pins[key] = nil }
        }
        evictIfNeeded()
    }

    // MARK: Fetch

    /// The path of `id` when it is cached, marked as just used; nil when it is not.
    public func cachedPath(of id: ObjectID) -> String? {
        guard index[id.cacheKey] != nil else { return nil }
        touch(id.cacheKey)
        return path(of: id)
    }

    /// The path of `id` in the cache, downloading it from `remote` first when missing. Concurrent
    /// calls for one object share one download. `size` is the size recorded for the object (or,
    /// with `exact` false, the most it may have): a remote that sends more is cut off there; with
    /// no size, the cache's budget bounds it. `shared` bounds a group of downloads together.
    public func fetch(
        _ id: ObjectID, size: Int64?, exact: Bool = true, shared: ByteBudget? = nil, from remote: any ObjectRemote,
        progress: TransferProgress? = nil
    ) async throws -> String {
        if let cached = cachedPath(of: id) { return cached }
        let key = id.cacheKey
        if let flight = flights[key] { return try await flight.value }
        if exact { progress?.expect(size ?? 0) }
        let flight = Task { try await self.download(id, limit: size ?? budget, shared: shared, from: remote, progress: progress) }
        flights[key] = flight
        defer { flights[key] = nil }
        return try await flight.value
    }

    private func download(_ id: ObjectID, limit: Int64?, shared: ByteBudget?, from remote: any ObjectRemote, progress: TransferProgress?)
        async throws -> String
    {
        await acquirePermit()
        defer { releasePermit() }
        let destination = path(of: id)
        let size = try await Self.transfer(
            id, limit: limit, shared: shared, from: remote, to: destination, temporaryFolder: temporaryPath, retry: retry, progress: progress,
            logger: logger)
        downloads += 1
        downloadedBytes += size
        progress?.objectDone()
        clock += 1
        index[id.cacheKey] = Entry(id: id, size: size, lastUse: clock)
        totalBytes += size
        evictIfNeeded(keeping: id.cacheKey)
        return destination
    }

    /// Streams one object into a temporary file, verifies it and renames it into place; off the
    /// actor, so downloads of different objects run in parallel.
    private nonisolated static func transfer(
        _ id: ObjectID, limit: Int64?, shared: ByteBudget?, from remote: any ObjectRemote, to destination: String, temporaryFolder: String,
        retry: RetryPolicy, progress: TransferProgress?, logger: Logger
    ) async throws -> Int64 {
        do {
            return try await attempt(
                id, limit: limit, shared: shared, from: remote, to: destination, temporaryFolder: temporaryFolder, retry: retry, progress: progress,
                logger: logger)
        } catch let failure as RemoteFailure {
            let what = failure.kind == .notFound ? "object \(id.md5) is missing (\(failure.reason))" : failure.reason
            throw ArtifactError.unavailable(remote: remote.name, reason: what)
        }
    }

    private nonisolated static func attempt(
        _ id: ObjectID, limit: Int64?, shared: ByteBudget?, from remote: any ObjectRemote, to destination: String, temporaryFolder: String,
        retry: RetryPolicy, progress: TransferProgress?, logger: Logger
    ) async throws -> Int64 {
        try await retry.run { () async throws -> Int64 in
            let sink = try ObjectSink(path: "\(temporaryFolder)/\(UUID().uuidString).part", object: id, limit: limit, shared: shared) {
                progress?.receive($0)
            }
            do {
                try await remote.read(id.remoteKey, into: sink)
                let actual = try sink.finish()
                guard actual == id.digest else {
                    throw ArtifactError.integrity(object: id.md5, expected: id.digest, actual: actual)
                }
                try FileManager.default.createDirectory(
                    atPath: (destination as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
                try sink.commit(to: destination)
                return sink.bytesWritten
            } catch let failure as RemoteFailure {
                sink.discard()
                progress?.receive(-sink.bytesWritten)
                if failure.kind == .transient {
                    logger.warning("remote failed, retrying", metadata: ["remote": "\(remote.name)", "reason": "\(failure.reason)"])
                }
                throw failure
            } catch {
                sink.discard()
                progress?.receive(-sink.bytesWritten)
                throw error
            }
        }
    }

    // MARK: Budget

    private func touch(_ key: String) {
        clock += 1
        index[key]?.lastUse = clock
        // Persist recency for the next start; the file is read-only but its owner may set times.
        utimes(objectsPath + "/" + key, nil)
    }

    /// Evicts least recently used, unpinned objects until the budget holds.
    private func evictIfNeeded(keeping kept: String? = nil) {
        guard let budget, totalBytes > budget else { return }
        for (key, entry) in index.sorted(by: { $0.value.lastUse < $1.value.lastUse }) {
            guard totalBytes > budget else { break }
            if key == kept || pins[key] != nil || flights[key] != nil { continue }
            unlink(objectsPath + "/" + key)
            if entry.id.isDirectory { try? FileManager.default.removeItem(atPath: treePath(of: entry.id)) }
            index[key] = nil
            totalBytes -= entry.size
            logger.info("evicted from the cache", metadata: ["object": "\(entry.id)", "bytes": "\(entry.size)"])
        }
    }

    // MARK: Concurrency bound

    private func acquirePermit() async {
        if permits > 0 {
            permits -= 1
            return
        }
        await withCheckedContinuation { waiters.append($0) }
    }

    private func releasePermit() {
        if waiters.isEmpty { permits += 1 } else { waiters.removeFirst().resume() }
    }

    /// The digest of a cached file under its scheme (used by `verify`).
    static func digest(of path: String, id: ObjectID) -> String? {
        guard let handle = FileHandle(forReadingAtPath: path) else { return nil }
        defer { try? handle.close() }
        var hasher = ObjectHasher(id)
        while let chunk = try? handle.read(upToCount: 1 << 20), !chunk.isEmpty { chunk.withUnsafeBytes { hasher.update($0) } }
        return hasher.finalize()
    }
}
