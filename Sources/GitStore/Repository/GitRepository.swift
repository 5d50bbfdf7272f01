import Clibgit2
import Dispatch
public import Foundation
import Synchronization

/// A bare Git repository read in-process by many tasks at once.
///
/// There is no global lock: each read borrows one of a pool of libgit2 handles (a handle serves
/// one thread at a time), so reads of different revisions run in parallel. Commits, trees and
/// blobs are immutable, which is what lets callers cache anything keyed by their ids.
public final class GitRepository: Sendable {
    /// The bare repository on disk.
    public let path: String
    /// Where the mirror fetches from (a local path or URL); nil when opened in place.
    public let source: String?

    private let idle = Mutex<[RepositoryHandle]>([])
    /// Idle handles kept open; more are opened under load and closed when returned past this.
    private let maxIdle = 16

    /// Opens an existing repository (bare or not) in place, without mirroring it.
    public init(openAt path: String) throws {
        let handle = try RepositoryHandle(path: path)
        self.path = path
        self.source = nil
        idle.withLock { $0.append(handle) }
    }

    private init(mirrorPath: String, source: String) throws {
        let handle = try RepositoryHandle(path: mirrorPath)
        self.path = mirrorPath
        self.source = source
        idle.withLock { $0.append(handle) }
    }

    /// Opens the bare mirror of `source` under `directory`, cloning it first when absent.
    ///
    /// The mirror fetches every ref (`+refs/*:refs/*`), so branches and tags read here are the
    /// source's own. Cloning blocks the calling thread; call it off the request path.
    public static func mirror(source: String, into directory: URL) throws -> GitRepository {
        _ = libgit2Initialized
        let target = directory.appendingPathComponent(mirrorName(for: source)).path
        if FileManager.default.fileExists(atPath: target + "/HEAD") {
            return try GitRepository(mirrorPath: target, source: source)
        }
        try? FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        // Clone into a temporary folder and rename it into place, so an interrupted clone never
        // leaves a half-written mirror that a later start would trust.
        let staging = target + ".partial-\(ProcessInfo.processInfo.processIdentifier)"
        try? FileManager.default.removeItem(atPath: staging)
        var options = git_clone_options()
        try check(git_clone_options_init(&options, UInt32(GIT_CLONE_OPTIONS_VERSION)), "clone options")
        options.bare = 1
        options.remote_cb = { remote, repo, name, url, _ in
            git_remote_create_with_fetchspec(remote, repo, name, url, "+refs/*:refs/*")
        }
        var cloned: OpaquePointer?
        let code = git_clone(&cloned, source, staging, &options)
        guard code == 0 else {
            let error = GitError.fromLibgit2(code, "cannot mirror repository")
            try? FileManager.default.removeItem(atPath: staging)
            throw GitError(.repository, error.message)
        }
        git_repository_free(cloned)
        do {
            try FileManager.default.moveItem(atPath: staging, toPath: target)
        } catch {
            try? FileManager.default.removeItem(atPath: staging)
            // Another process may have won the race; its mirror is as good as ours.
            guard FileManager.default.fileExists(atPath: target + "/HEAD") else {
                throw GitError(.repository, "cannot place mirror: \(error.localizedDescription)")
            }
        }
        return try GitRepository(mirrorPath: target, source: source)
    }

    /// A stable, readable folder name for a mirror of `source`.
    static func mirrorName(for source: String) -> String {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325  // FNV-1a: stable across runs, unlike Hasher
        for byte in source.utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x100_0000_01b3
        }
        let base = source.split(separator: "/").last.map(String.init) ?? "repo"
        let safe = base.replacingOccurrences(of: ".git", with: "").filter { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" }
        return "\(safe.isEmpty ? "repo" : safe)-\(String(hash, radix: 16)).git"
    }

    /// Fetches every ref from the source now (pruning deleted ones). Blocks the calling thread.
    public func fetch(timeout: Duration? = nil) throws {
        guard source != nil else { return }
        removeStaleLocks(olderThan: timeout ?? .seconds(600))
        // libgit2 calls the transfer callback as objects arrive; past the deadline it answers
        // "stop", and the fetch fails instead of running on.
        let deadline = timeout.map { DispatchTime.now().uptimeNanoseconds &+ UInt64($0.components.seconds) &* 1_000_000_000 }
        var payload = deadline ?? UInt64.max
        try withHandle { handle throws in
            var remote: OpaquePointer?
            try check(git_remote_lookup(&remote, handle.pointer, "origin"), "remote origin")
            defer { git_remote_free(remote) }
            var options = git_fetch_options()
            try check(git_fetch_options_init(&options, UInt32(GIT_FETCH_OPTIONS_VERSION)), "fetch options")
            options.prune = GIT_FETCH_PRUNE
            options.download_tags = GIT_REMOTE_DOWNLOAD_TAGS_ALL
            options.callbacks.transfer_progress = { _, payload in
                guard let deadline = payload?.load(as: UInt64.self) else { return 0 }
                return DispatchTime.now().uptimeNanoseconds > deadline ? -1 : 0
            }
            let code = withUnsafeMutablePointer(to: &payload) { pointer in
                options.callbacks.payload = UnsafeMutableRawPointer(pointer)
                return git_remote_fetch(remote, nil, &options, "pedigree refresh")
            }
            if code < 0 {
                if let deadline, DispatchTime.now().uptimeNanoseconds > deadline {
                    throw GitError(.repository, "fetch timed out after \(timeout.map { "\($0)" } ?? "")")
                }
                throw GitError(.repository, GitError.fromLibgit2(code, "fetch failed").message)
            }
        }
    }

    /// Removes lock files that a killed fetch left behind (`refs/…/x.lock`, `packed-refs.lock`,
    /// `FETCH_HEAD.lock`), so they never block the next fetch. Only locks older than the longest
    /// a fetch may run are taken for stale: a live fetch of another process keeps its own.
    func removeStaleLocks(olderThan age: Duration) {
        let cutoff = Date().addingTimeInterval(-Double(age.components.seconds))
        let root = URL(fileURLWithPath: path)
        var candidates = ["packed-refs.lock", "FETCH_HEAD.lock", "config.lock", "shallow.lock", "index.lock"].map { root.appendingPathComponent($0) }
        if let walker = FileManager.default.enumerator(at: root.appendingPathComponent("refs"), includingPropertiesForKeys: nil) {
            for case let url as URL in walker where url.pathExtension == "lock" { candidates.append(url) }
        }
        for url in candidates {
            guard let modified = (try? FileManager.default.attributesOfItem(atPath: url.path))?[.modificationDate] as? Date, modified < cutoff else {
                continue
            }
            try? FileManager.default.removeItem(at: url)
        }
    }

    /// Lends a handle to `body`, opening a new one when all are busy.
    /// The body's errors come back as `GitError` (the only kind a handle throws).
    func withHandle<T>(_ body: (RepositoryHandle) throws -> T) throws -> T {
        let borrowed = idle.withLock { $0.popLast() }
        let handle: RepositoryHandle
        if let borrowed { handle = borrowed } else { handle = try RepositoryHandle(path: path) }
        defer {
            idle.withLock { handles in
                if handles.count < maxIdle { handles.append(handle) }
            }
        }
        do {
            return try body(handle)
        } catch let error as GitError {
            throw error
        } catch {
            throw GitError(.other, "\(error)")
        }
    }

    // MARK: Reads

    /// The default branch's name (what HEAD names), falling back to `main` or `master`.
    public func defaultBranch() throws -> String {
        try withHandle { handle throws in
            if let head = handle.headBranch, try handle.peelReference("refs/heads/" + head) != nil { return head }
            for candidate in ["main", "master"] where try handle.peelReference("refs/heads/" + candidate) != nil {
                return candidate
            }
            if let first = try handle.references(prefix: "refs/heads/").first { return first }
            throw GitError(.notFound, "repository has no branches")
        }
    }

    /// The commit a branch points to, or nil when there is no such branch.
    public func branch(_ name: String) throws -> String? {
        try withHandle { try $0.peelReference("refs/heads/" + name) }
    }

    /// The commit a tag points to (peeled through annotated tags), or nil.
    public func tag(_ name: String) throws -> String? {
        try withHandle { try $0.peelReference("refs/tags/" + name) }
    }

    /// The commit named by a full or short hex id, nil when none; throws `.ambiguous` when a short
    /// id matches several objects.
    public func commit(matching prefix: String) throws -> String? {
        try withHandle { try $0.commit(prefix: prefix) }
    }

    /// Branch names, sorted.
    public func branches() throws -> [String] {
        try withHandle { try $0.references(prefix: "refs/heads/") }
    }

    /// Every tag with its peeled commit and, for annotated tags, tagger and message.
    public func tags() throws -> [TagInfo] {
        try withHandle { try $0.tags() }
    }

    /// A commit's metadata.
    public func commit(_ sha: String) throws -> CommitInfo {
        try withHandle { try $0.commitInfo(sha) }
    }

    /// The paths a commit changed against its first parent (every file of a root commit), at most
    /// `limit` of them.
    public func changedPaths(in sha: String, limit: Int = 1000) throws -> [String] {
        try withHandle { try $0.changedPaths(sha, limit: limit) }
    }

    /// The first parent of a commit, nil for a root commit.
    public func firstParent(of sha: String) throws -> String? {
        try withHandle { try $0.firstParent(of: sha) }
    }

    /// The blob id at `path` in commit `sha`, nil when there is no file there.
    public func blobID(path: String, at sha: String) throws -> String? {
        try withHandle { try $0.blobID(path: path, commit: sha) }
    }

    /// A blob's bytes.
    public func blob(_ id: String, maxSize: Int? = nil) throws -> Data {
        try withHandle { Data(try $0.blob(id, maxSize: maxSize)) }
    }

    /// Runs `body` over a blob's bytes where libgit2 holds them (one copy in memory, not two); a
    /// blob over `maxSize` is refused (`tooLarge`) from its header, before it is inflated.
    public func withBlob<T>(_ id: String, maxSize: Int, _ body: (UnsafeRawBufferPointer) throws -> T) throws -> T {
        try withHandle { try $0.withBlob(id, maxSize: maxSize, body) }
    }

    /// The bytes of `path` at commit `sha`, nil when there is no file there.
    public func readFile(_ path: String, at sha: String) throws -> Data? {
        try withHandle { handle throws in
            guard let id = try handle.blobID(path: path, commit: sha) else { return nil }
            return Data(try handle.blob(id))
        }
    }

    /// Every file in commit `sha` whose path `include` accepts, with its blob id.
    public func files(at sha: String, where include: (String) -> Bool) throws -> [TreeFile] {
        try withHandle { handle throws in
            try handle.withTree(sha) { tree throws in
                var result: [TreeFile] = []
                try handle.files(tree: tree, prefix: "", include: include, into: &result)
                return result
            }
        }
    }

    /// The first-parent chain from `sha` back to the root (or `limit` commits), newest first.
    public func firstParentHistory(from sha: String, limit: Int = .max) throws -> [String] {
        try withHandle { handle throws in
            var chain: [String] = []
            var current: String? = sha
            while let commit = current, chain.count < limit {
                chain.append(commit)
                current = try handle.firstParent(of: commit)
            }
            return chain
        }
    }

    /// The newest commit at or before `sha` (following first parents) that changed `path`:
    /// where the path's blob differs from the first parent's. Nil when the path is absent at `sha`.
    public func lastChange(of path: String, from sha: String) throws -> String? {
        try withHandle { handle throws in
            guard var blob = try handle.blobID(path: path, commit: sha) else { return nil }
            var current = sha
            while let parent = try handle.firstParent(of: current) {
                guard let parentBlob = try handle.blobID(path: path, commit: parent), parentBlob == blob else { return current }
                blob = parentBlob
                current = parent
            }
            return current
        }
    }
}
