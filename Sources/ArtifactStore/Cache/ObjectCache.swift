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
    /// SHA-256 digests written down since start (`remember`), so a hot path writes none twice.
    private var remembered: [String: String] = [:]
    /// Downloads of objects named by SHA-256, by `sha256/<oid>`.
    private var digestFlights: [String: Task<ObjectID, any Error>] = [:]
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
        let (_, size) = try await Self.transfer(
            .object(id), key: id.remoteKey, limit: limit, shared: shared, from: remote, objects: objectsPath, temporaryFolder: temporaryPath,
            retry: retry, progress: progress, logger: logger)
        return added(id, size: size)
    }

    /// Counts a downloaded object in and evicts what the budget no longer holds; its path.
    private func added(_ id: ObjectID, size: Int64) -> String {
        downloads += 1
        downloadedBytes += size
        clock += 1
        if let previous = index[id.cacheKey] { totalBytes -= previous.size }
        index[id.cacheKey] = Entry(id: id, size: size, lastUse: clock)
        totalBytes += size
        evictIfNeeded(keeping: id.cacheKey)
        return path(of: id)
    }

    // MARK: Objects named by SHA-256 (Git LFS)

    /// Where the md5 of an object named by its SHA-256 is written down: `digests/sha256/ab/cdef…`.
    nonisolated func digestPath(sha256 oid: String) -> String {
        root.appendingPathComponent("digests/sha256").path + "/\(oid.prefix(2))/\(oid.dropFirst(2))"
    }

    /// The cached object with SHA-256 `oid` (fetched through Git LFS, or hashed when it loaded),
    /// marked as just used; nil when it is not cached.
    public func object(sha256 oid: String) -> ObjectID? {
        guard Self.isSHA256(oid), let text = try? String(contentsOfFile: digestPath(sha256: oid), encoding: .utf8),
            let id = try? ObjectID(md5: text.trimmingCharacters(in: .whitespacesAndNewlines), scheme: .md5), cachedPath(of: id) != nil
        else { return nil }
        return id
    }

    /// Writes down that the cached object `id` has SHA-256 `oid` (a plain-md5 file object only):
    /// the same bytes asked for by SHA-256 later (Git LFS) are found, not downloaded.
    public func remember(sha256 oid: String, of id: ObjectID) {
        guard Self.isSHA256(oid), id.scheme == .md5, !id.isDirectory, index[id.cacheKey] != nil, remembered[oid] != id.md5 else { return }
        if (try? Self.writeDigest(id.md5, to: digestPath(sha256: oid))) != nil { remembered[oid] = id.md5 }
    }

    /// The object with SHA-256 `oid` in the cache (its md5 name and path), downloading it from
    /// `remote` (read under `key`) when missing: verified by SHA-256 while it streams, stored under
    /// its md5 as any object (the same bytes kept by DVC are the same file), at most `size` bytes.
    /// Concurrent calls for one oid share one download.
    public func fetch(sha256 oid: String, key: String, size: Int64, from remote: any ObjectRemote, progress: TransferProgress? = nil) async throws
        -> (
            id: ObjectID, path: String
        )
    {
        guard Self.isSHA256(oid) else { throw ArtifactError.configuration("'\(oid.prefix(70))' is not a SHA-256 digest") }
        if let id = object(sha256: oid) { return (id, path(of: id)) }
        // Keyed by the size too: a pointer naming the same oid with another size gets its own
        // download (and its own failure), not a share of a stranger's.
        let key = "sha256/\(oid)/\(size)"
        if let flight = digestFlights[key] {
            let id = try await flight.value
            return (id, path(of: id))
        }
        progress?.expect(size)
        let flight = Task { try await self.download(sha256: oid, key: key, size: size, from: remote, progress: progress) }
        digestFlights[key] = flight
        defer { digestFlights[key] = nil }
        let id = try await flight.value
        return (id, path(of: id))
    }

    private func download(sha256 oid: String, key: String, size: Int64, from remote: any ObjectRemote, progress: TransferProgress?) async throws
        -> ObjectID
    {
        await acquirePermit()
        defer { releasePermit() }
        let (md5, bytes) = try await Self.transfer(
            .sha256(oid), key: key, limit: size, shared: nil, from: remote, objects: objectsPath, temporaryFolder: temporaryPath, retry: retry,
            progress: progress, logger: logger)
        let id = try ObjectID(md5: md5, scheme: .md5)
        _ = added(id, size: bytes)
        do {
            try Self.writeDigest(md5, to: digestPath(sha256: oid))
        } catch {
            logger.warning("cannot index an LFS object by SHA-256", metadata: ["object": "sha256:\(oid)", "error": "\(error)"])
        }
        return id
    }

    static func isSHA256(_ text: String) -> Bool {
        text.utf8.count == 64 && text.utf8.allSatisfy { (48...57).contains($0) || (97...102).contains($0) }
    }

    /// Writes a digest file through a temporary name, so a reader sees all of it or none.
    private static func writeDigest(_ md5: String, to path: String) throws {
        let folder = (path as NSString).deletingLastPathComponent
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let temporary = folder + "/.tmp-" + UUID().uuidString
        try Data((md5 + "\n").utf8).write(to: URL(fileURLWithPath: temporary))
        guard rename(temporary, path) == 0 else {
            unlink(temporary)
            throw ArtifactError.configuration("cannot write a digest into the cache: \(String(cString: strerror(errno)))")
        }
    }

    // MARK: Transfers

    /// Streams one object into a temporary file, verifies it and renames it into place (under its
    /// md5, the digest it was expected to have or the one its bytes gave); off the actor, so
    /// downloads of different objects run in parallel. Returns the md5 and the size.
    private nonisolated static func transfer(
        _ expected: ExpectedDigest, key: String, limit: Int64?, shared: ByteBudget?, from remote: any ObjectRemote, objects: String,
        temporaryFolder: String, retry: RetryPolicy, progress: TransferProgress?, logger: Logger
    ) async throws -> (md5: String, size: Int64) {
        do {
            let result = try await attempt(
                expected, key: key, limit: limit, shared: shared, from: remote, objects: objects, temporaryFolder: temporaryFolder, retry: retry,
                progress: progress, logger: logger)
            progress?.objectDone()
            return result
        } catch let failure as RemoteFailure {
            let what = failure.kind == .notFound ? "object \(expected) is missing (\(failure.reason))" : failure.reason
            throw ArtifactError.unavailable(remote: remote.name, reason: what)
        }
    }

    private nonisolated static func attempt(
        _ expected: ExpectedDigest, key: String, limit: Int64?, shared: ByteBudget?, from remote: any ObjectRemote, objects: String,
        temporaryFolder: String, retry: RetryPolicy, progress: TransferProgress?, logger: Logger
    ) async throws -> (md5: String, size: Int64) {
        try await retry.run { () async throws -> (md5: String, size: Int64) in
            let sink = try ObjectSink(path: "\(temporaryFolder)/\(UUID().uuidString).part", expected: expected, limit: limit, shared: shared) {
                progress?.receive($0)
            }
            do {
                try await remote.read(key, into: sink)
                let actual = try sink.finish()
                let id: ObjectID
                switch expected {
                case .object(let wanted):
                    guard actual == wanted.digest else {
                        throw ArtifactError.integrity(object: wanted.md5, expected: "md5 " + wanted.digest, actual: "md5 " + actual)
                    }
                    id = wanted
                case .sha256(let oid):
                    let received = sink.sha256Digest ?? ""
                    guard received == oid else {
                        throw ArtifactError.integrity(object: expected.description, expected: "sha256 " + oid, actual: "sha256 " + received)
                    }
                    id = try ObjectID(md5: actual, scheme: .md5)
                }
                let destination = objects + "/" + id.cacheKey
                try FileManager.default.createDirectory(
                    atPath: (destination as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
                try sink.commit(to: destination)
                return (id.md5, sink.bytesWritten)
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
