import Foundation
import GitStore
import TestSupport
import Testing

struct GitRepositoryTests {
    @Test func mirrorReadsFilesHistoryAndTagsAndSeesNewCommitsAfterFetch() throws {
        let source = try GitFixture()
        try source.write("a.txt", "one\n")
        let first = try source.commit("first")
        try source.write("b/c.txt", "two\n")
        let second = try source.commit("second")
        try source.git("tag", "-a", "m@v1.0.0", "-m", "v1", first)
        try source.git("branch", "feature", first)

        let cache = FileManager.default.temporaryDirectory.appendingPathComponent("pedigree-mirror-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: cache) }
        let repository = try GitRepository.mirror(source: source.path, into: cache)
        #expect(try repository.defaultBranch() == "main")
        #expect(try repository.branch("main") == second)
        #expect(try repository.branch("feature") == first)
        #expect(try repository.tag("m@v1.0.0") == first)
        #expect(try repository.readFile("b/c.txt", at: second) == Data("two\n".utf8))
        #expect(try repository.readFile("b/c.txt", at: first) == nil)
        #expect(try repository.firstParentHistory(from: second) == [second, first])
        #expect(try repository.lastChange(of: "a.txt", from: second) == first)
        #expect(try repository.commit(matching: String(second.prefix(8))) == second)
        #expect(try repository.files(at: second) { _ in true }.map(\.path) == ["a.txt", "b/c.txt"])
        let info = try repository.commit(second)
        #expect(info.message == "second" && info.author.email == "author@example.com" && info.parents == [first])
        #expect(try repository.tags().first?.isAnnotated == true)

        try source.write("a.txt", "three\n")
        let third = try source.commit("third")
        #expect(try repository.branch("main") == second)
        try repository.fetch()
        #expect(try repository.branch("main") == third)
    }

    @Test func concurrentReadsOfManyRevisions() async throws {
        let source = try GitFixture()
        var built: [String] = []
        for index in 0..<8 {
            try source.write("n.txt", "\(index)\n")
            built.append(try source.commit("c\(index)"))
        }
        let commits = built
        let repository = try GitRepository(openAt: source.path + "/.git")
        try await withThrowingTaskGroup(of: Bool.self) { group in
            for round in 0..<64 {
                let index = round % commits.count
                group.addTask { try repository.readFile("n.txt", at: commits[index]) == Data("\(index)\n".utf8) }
            }
            for try await ok in group { #expect(ok) }
        }
    }
}

struct GitBlobLimitTests {
    @Test func aBlobOverTheLimitIsRefusedFromItsHeader() throws {
        let source = try GitFixture()
        try source.write("big.yaml", String(repeating: "x", count: 100_000))
        let commit = try source.commit("big")
        let cache = FileManager.default.temporaryDirectory.appendingPathComponent("pedigree-mirror-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: cache) }
        let repository = try GitRepository.mirror(source: source.path, into: cache)
        let id = try #require(try repository.blobID(path: "big.yaml", at: commit))
        #expect(try repository.blob(id, maxSize: 100_000).count == 100_000)
        #expect {
            try repository.blob(id, maxSize: 99_999)
        } throws: { error in
            (error as? GitError)?.kind == .tooLarge
        }
    }
}
