import DVCKit
import Foundation
import Synchronization
import Testing

@testable import ArtifactStore

/// The cache against a real local remote folder laid out as DVC 3 pushes it.
struct ObjectCacheTests {
    /// A temporary remote and cache; removed at the end of each test.
    final class Fixture {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("pedigree-cache-test-\(UUID().uuidString)")
        var remoteRoot: String { folder.appendingPathComponent("remote").path }
        var cacheRoot: URL { folder.appendingPathComponent("cache") }

        init() throws { try FileManager.default.createDirectory(atPath: remoteRoot, withIntermediateDirectories: true) }
        deinit { try? FileManager.default.removeItem(at: folder) }

        /// Pushes `bytes` as DVC 3 would, returning the object's id.
        @discardableResult
        func push(_ bytes: Data, scheme: ObjectID.Scheme = .md5) throws -> ObjectID {
            let md5 = scheme == .md5 ? DVCHash.md5(bytes) : DVCHash.legacyMD5(bytes)
            let id = try ObjectID(md5: md5, scheme: scheme)
            let path = remoteRoot + "/" + id.remoteKey
            try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            try bytes.write(to: URL(fileURLWithPath: path))
            return id
        }
    }

    /// Counts reads on the way to a real remote: how many downloads reached it.
    final class CountingRemote: ObjectRemote {
        let base: LocalRemote
        let reads = Mutex<[String: Int]>([:])
        init(base: LocalRemote) { self.base = base }
        var name: String { base.name }
        func read(_ key: String, into sink: ObjectSink) async throws {
            reads.withLock { $0[key, default: 0] += 1 }
            try await Task.sleep(for: .milliseconds(20))  // keep the download open while others ask
            try await base.read(key, into: sink)
        }
    }

    @Test func fetchesVerifiesAndStoresReadOnly() async throws {
        let fixture = try Fixture()
        let id = try fixture.push(Data("hello weights".utf8))
        let cache = try ObjectCache(root: fixture.cacheRoot)
        let path = try await cache.fetch(id, size: 13, from: LocalRemote(name: "local", root: fixture.remoteRoot))
        #expect(FileManager.default.contents(atPath: path) == Data("hello weights".utf8))
        let permissions = try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? NSNumber
        #expect(permissions?.intValue == 0o400)
        #expect(await cache.contains(id))
    }

    @Test func aRemoteThatSendsMoreThanTheRecordedSizeIsCutOff() async throws {
        let fixture = try Fixture()
        let id = try fixture.push(Data(repeating: 7, count: 3 << 20))
        let cache = try ObjectCache(root: fixture.cacheRoot)
        await #expect(throws: ArtifactError.oversized(object: id.md5, limit: 1024)) {
            try await cache.fetch(id, size: 1024, from: LocalRemote(name: "local", root: fixture.remoteRoot))
        }
        #expect(await !cache.contains(id))
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: fixture.cacheRoot.appendingPathComponent("objects/tmp").path)
        #expect(leftovers.isEmpty)
    }

    @Test func concurrentRequestsShareOneDownload() async throws {
        let fixture = try Fixture()
        let id = try fixture.push(Data(repeating: 7, count: 3 << 20))
        let cache = try ObjectCache(root: fixture.cacheRoot)
        let remote = CountingRemote(base: LocalRemote(name: "local", root: fixture.remoteRoot))
        let paths = try await withThrowingTaskGroup(of: String.self) { group in
            for _ in 0..<16 { group.addTask { try await cache.fetch(id, size: nil, from: remote) } }
            return try await group.reduce(into: Set<String>()) { $0.insert($1) }
        }
        #expect(paths.count == 1)
        #expect(remote.reads.withLock { $0 } == [id.remoteKey: 1])
        #expect(await cache.downloads == 1)
    }

    @Test func corruptedObjectIsAnIntegrityErrorAndNothingIsCached() async throws {
        let fixture = try Fixture()
        let id = try fixture.push(Data("original".utf8))
        try Data("tampered".utf8).write(to: URL(fileURLWithPath: fixture.remoteRoot + "/" + id.remoteKey))
        let cache = try ObjectCache(root: fixture.cacheRoot)
        await #expect(throws: ArtifactError.self) {
            try await cache.fetch(id, size: nil, from: LocalRemote(name: "local", root: fixture.remoteRoot))
        }
        #expect(!FileManager.default.fileExists(atPath: cache.path(of: id)))
        #expect(try FileManager.default.contentsOfDirectory(atPath: cache.temporaryPath).isEmpty)
        #expect(await !cache.contains(id))
    }

    @Test func missingObjectNamesTheRemote() async throws {
        let fixture = try Fixture()
        let id = try ObjectID(md5: DVCHash.md5(Data("never pushed".utf8)), scheme: .md5)
        let cache = try ObjectCache(root: fixture.cacheRoot)
        do {
            _ = try await cache.fetch(id, size: nil, from: LocalRemote(name: "storage", root: fixture.remoteRoot))
            Issue.record("a missing object was fetched")
        } catch let error as ArtifactError {
            guard case .unavailable(let remote, let reason) = error else { throw error }
            #expect(remote == "storage" && reason.contains("missing"))
        }
    }

    @Test func legacyObjectsUseTheRootLayoutAndDos2unixHash() async throws {
        let fixture = try Fixture()
        let text = Data("line one\r\nline two\r\n".utf8)
        let id = try fixture.push(text, scheme: .legacy)
        #expect(id.remoteKey.hasPrefix(String(id.md5.prefix(2)) + "/"))
        let cache = try ObjectCache(root: fixture.cacheRoot)
        let path = try await cache.fetch(id, size: nil, from: LocalRemote(name: "local", root: fixture.remoteRoot))
        #expect(FileManager.default.contents(atPath: path) == text)  // bytes kept as pushed
    }

    @Test func budgetEvictsLeastRecentlyUsedButNeverPinned() async throws {
        let fixture = try Fixture()
        let ids = try (0..<4).map { try fixture.push(Data(repeating: UInt8($0), count: 1000)) }
        let remote = LocalRemote(name: "local", root: fixture.remoteRoot)
        let cache = try ObjectCache(root: fixture.cacheRoot, budget: 2500)
        _ = try await cache.fetch(ids[0], size: nil, from: remote)
        await cache.pin([ids[0]])
        _ = try await cache.fetch(ids[1], size: nil, from: remote)
        _ = try await cache.fetch(ids[2], size: nil, from: remote)  // over budget: evicts ids[1], not the pinned ids[0]
        #expect(await cache.contains(ids[0]))
        #expect(await !cache.contains(ids[1]))
        #expect(await cache.contains(ids[2]))
        await cache.unpin([ids[0]])
        _ = try await cache.fetch(ids[2], size: nil, from: remote)  // ids[2] is now the most recent
        _ = try await cache.fetch(ids[3], size: nil, from: remote)  // evicts ids[0], the least recent
        #expect(await !cache.contains(ids[0]))
        #expect(await cache.usage.bytes <= 2500)
        #expect(!FileManager.default.fileExists(atPath: cache.path(of: ids[0])))
    }

    @Test func startRemovesPartialDownloadsAndForeignFilesButKeepsObjects() async throws {
        let fixture = try Fixture()
        let id = try fixture.push(Data("kept".utf8))
        do {
            let cache = try ObjectCache(root: fixture.cacheRoot)
            _ = try await cache.fetch(id, size: nil, from: LocalRemote(name: "local", root: fixture.remoteRoot))
        }
        let objects = fixture.cacheRoot.appendingPathComponent("objects")
        try Data("half".utf8).write(to: objects.appendingPathComponent("tmp/abc.part"))
        try Data("junk".utf8).write(to: objects.appendingPathComponent("md5/\(id.md5.prefix(2))/not-an-md5"))
        let reopened = try ObjectCache(root: fixture.cacheRoot)
        #expect(await reopened.contains(id))
        #expect(await reopened.usage.objects == 1)
        #expect(try FileManager.default.contentsOfDirectory(atPath: reopened.temporaryPath).isEmpty)
        #expect(!FileManager.default.fileExists(atPath: objects.appendingPathComponent("md5/\(id.md5.prefix(2))/not-an-md5").path))
    }

    @Test(arguments: ["../escape", "/etc/passwd", "a/../../b", "a//b", "./a", ""])
    func manifestsWithUnsafePathsAreRejected(relpath: String) {
        let json = Data("[{\"md5\": \"acbd18db4cc2f85cedef654fccc4a4d8\", \"relpath\": \"\(relpath)\"}]".utf8)
        #expect(throws: DVCError.self) { try DirectoryManifest(data: json, object: "x.dir") }
    }

    @Test func manifestsParseTheirEntries() throws {
        let entries = [DVCHash.DirectoryEntry(relpath: "nested/file", md5: "acbd18db4cc2f85cedef654fccc4a4d8")]
        let manifest = try DirectoryManifest(data: DVCHash.directoryManifest(entries), object: "x.dir")
        #expect(manifest.entries == [.init(relpath: "nested/file", md5: "acbd18db4cc2f85cedef654fccc4a4d8")])
    }
}
