import Crypto
public import DVCKit
public import Foundation
public import GitStore
public import Logging
import Synchronization

/// What names a Git blob's bytes.
struct BlobDigests: Sendable {
    let md5: String
    let sha256: String
    let size: Int64
}

/// Answers lineage questions about one repository. Safe to call from many tasks at once.
public final class LineageService: Sendable {
    public let repository: GitRepository
    let reader: MetadataReader
    /// Blobs read from Git since start (the rest came from the cache), for `/metrics`.
    public var blobReads: Int { reader.blobReads }
    private let logger: Logger
    private let snapshots = BoundedCache<String, RepositorySnapshot>(capacity: 512)
    private let lineages = BoundedCache<String, ModelLineage>(capacity: 2048)
    private let commits = BoundedCache<String, CommitInfo>(capacity: 4096)
    /// Files changed by a commit, by commit id.
    private let changes = BoundedCache<String, [String]>(capacity: 256)
    /// Digests of artifacts committed to Git, by blob id.
    private let digests = BoundedCache<String, BlobDigests>(capacity: 256)
    /// Canonical commits by `model@commit` (history never changes).
    private let canonicals = BoundedCache<String, String>(capacity: 4096)
    /// Spec resolutions, keyed by refs generation and spec: refs move only on `refresh`, which
    /// starts a new generation, so a resolution computed while a refresh ran is never served after
    /// it. Answers that a spec names nothing (or is malformed, or ambiguous) are kept too: a
    /// client asking for the same missing revision again costs a lookup, not a history walk.
    private let resolutions = BoundedCache<String, Result<Resolution, LineageError>>(capacity: 4096)
    private let resolutionCount = Atomic<Int>(0)
    private let refsGeneration = Atomic<Int>(0)
    /// The GTO registry, rebuilt after each refresh (tags move only then).
    private let registryCache = Mutex<GTORegistry?>(nil)
    /// Held while a promotion fetches, checks and writes tags.
    private let promotions = NSLock()

    public init(repository: GitRepository, logger: Logger = Logger(label: "pedigree.lineage")) {
        self.repository = repository
        self.reader = MetadataReader(repository: repository)
        self.logger = logger
    }

    // MARK: Refresh

    /// Fetches the source repository now; new commits and tags are visible afterwards.
    /// Cached answers stay valid (they are keyed by commit), only ref-derived state is dropped.
    /// A fetch running past `timeout` is stopped and reported as failed.
    public func refresh(timeout: Duration? = nil) async throws {
        let repository = self.repository
        let result: Result<Void, any Error> = await withCheckedContinuation { continuation in
            // libgit2's fetch blocks; run it on its own thread, not on the cooperative pool.
            let thread = Thread { continuation.resume(returning: Result { try repository.fetch(timeout: timeout) }) }
            thread.start()
        }
        if case .failure(let error) = result { throw LineageError.git(error as? GitError ?? GitError(.repository, "\(error)")) }
        refsChanged()
    }

    /// Drops what was derived from refs (the registry, spec resolutions).
    private func refsChanged() {
        registryCache.withLock { $0 = nil }
        refsGeneration.add(1, ordering: .sequentiallyConsistent)
        resolutions.removeAll()
    }

    // MARK: Promote

    /// Registers `version` of `model` at `commit` and/or assigns `stage` to it, writing the tags
    /// `gto register` and `gto assign` write, and pushes each to the source repository; the
    /// registry here changes at once. A tag the push fails for is deleted again, so the mirror
    /// never shows what the source does not. Returns the tags created, in order. Blocks the
    /// calling thread (run it off the cooperative pool).
    ///
    /// Refused as `gto` refuses: a version that is not `vX.Y.Z`, a version registered at another
    /// commit, a second version at one commit, a stage name GTO cannot write, a stage already on
    /// that version, a stage for a commit with no registered version and none given.
    public func promote(model: String, commit: String, version: String?, stage: String?, tagger: (name: String, email: String)? = nil) throws
        -> [String]
    {
        guard version != nil || stage != nil else { throw LineageError.invalidRevision("promote takes a version, a stage, or both") }
        // One promotion at a time, on refs fetched just now: two promotions never both see the
        // same free version or event number, and none works from a stale mirror.
        promotions.lock()
        defer { promotions.unlock() }
        do {
            try repository.fetch(timeout: .seconds(60))
        } catch {
            throw LineageError.wrap(error)
        }
        refsChanged()
        let registry = try registry()
        let versions = registry.versions(of: model)
        var registered = versions.first { $0.commit == commit }?.name
        var tags: [(name: String, message: String)] = []
        if let version {
            guard Self.isPlainSemver(version) else {
                throw LineageError.invalidRevision(
                    "\(version) is not a version GTO registers (vX.Y.Z, optionally -pre and +build of ASCII letters, digits, . and -)")
            }
            if let existing = versions.first(where: { $0.name == version }), existing.commit != commit {
                throw LineageError.invalidRevision("\(model)@\(version) is registered at \(existing.commit.prefix(12)) already")
            }
            if let registered, registered != version {
                throw LineageError.invalidRevision("\(model) has \(registered) registered at \(commit.prefix(12)) already")
            }
            if registered == nil { tags.append(GTORegistry.registrationTag(model: model, version: version)) }
            registered = version
        }
        if let stage {
            guard Self.isStageName(stage) else {
                throw LineageError.invalidRevision("\(stage) is not a stage name GTO writes (letters, digits, - / _ inside)")
            }
            guard let registered else {
                throw LineageError.invalidRevision("\(model) has no version registered at \(commit.prefix(12)): give one to register")
            }
            if registry.stage(stage, of: model) == commit {
                throw LineageError.invalidRevision("\(model) \(registered) is in stage \(stage) already")
            }
            guard let tag = registry.assignmentTag(model: model, stage: stage, version: registered) else {
                throw LineageError.invalidRevision("\(model)'s tags already count as many events as a number holds")
            }
            tags.append(tag)
        }
        var created: [String] = []
        defer { if !created.isEmpty { refsChanged() } }
        do {
            for tag in tags {
                try repository.createTag(tag.name, commit: commit, message: tag.message + "\n", tagger: tagger)
                do {
                    try repository.pushTag(tag.name)
                } catch {
                    // The source did not get it: neither does the mirror.
                    try? repository.deleteTag(tag.name)
                    throw error
                }
                created.append(tag.name)
            }
        } catch {
            logger.warning(
                "promote failed",
                metadata: [
                    "model": "\(model)", "tags": "\(tags.map(\.name))", "pushed": "\(created)", "error": "\(Self.withoutCredentials("\(error)"))",
                ])
            if !created.isEmpty, let git = error as? GitError {
                // Say what the remote has now: the tags pushed before the failure stay there.
                throw LineageError.git(GitError(git.kind, "\(git.message) (pushed before it: \(created.joined(separator: ", ")))"))
            }
            throw LineageError.wrap(error)
        }
        return created
    }

    /// `vX.Y.Z[-pre][+build]` in ASCII, nothing else: a version ends up in a tag name, where `!`
    /// or `#` would read as another GTO event.
    static func isPlainSemver(_ text: String) -> Bool {
        guard text.hasPrefix("v"), RevisionSpec.isSemver(text) else { return false }
        let core = text.dropFirst().prefix { $0 != "-" && $0 != "+" }
        let rest = text.dropFirst(1 + core.count)
        return core.allSatisfy { $0.isASCII && ($0.isNumber || $0 == ".") }
            && rest.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "." || $0 == "-" || $0 == "+") }
    }

    /// A message with the user and password of any URL in it blanked.
    static func withoutCredentials(_ text: String) -> String {
        guard let pattern = try? NSRegularExpression(pattern: "://[^/@\\s]+@") else { return text }
        return pattern.stringByReplacingMatches(in: text, range: NSRange(text.startIndex..., in: text), withTemplate: "://***@")
    }

    /// GTO's name pattern: letters and digits, with `-`, `/` and `_` inside.
    static func isStageName(_ text: String) -> Bool {
        func alphanumeric(_ c: Character) -> Bool { c.isASCII && (c.isLetter || c.isNumber) }
        guard let first = text.first, let last = text.last, alphanumeric(first), alphanumeric(last) else { return false }
        return text.allSatisfy { alphanumeric($0) || $0 == "-" || $0 == "/" || $0 == "_" }
    }

    // MARK: Reads

    /// The GTO registry from the current tags.
    public func registry() throws -> GTORegistry {
        if let cached = registryCache.withLock({ $0 }) { return cached }
        let registry = GTORegistry(tags: try git { try repository.tags() })
        registryCache.withLock { $0 = registry }
        return registry
    }

    /// The parsed metadata of a commit.
    func snapshot(_ commit: String) throws -> RepositorySnapshot {
        try git {
            try snapshots.value(for: commit) { () throws in
                let snapshot = try RepositorySnapshot(commit: commit, reader: reader)
                for problem in snapshot.problems {
                    logger.warning("invalid DVC metadata", metadata: ["commit": "\(commit.prefix(12))", "problem": "\(problem)"])
                }
                return snapshot
            }
        }
    }

    public func commit(_ sha: String) throws -> CommitInfo {
        try git { try commits.value(for: sha) { () throws in try repository.commit(sha) } }
    }

    /// The default branch's head commit.
    public func head() throws -> String {
        try git {
            let branch = try repository.defaultBranch()
            guard let sha = try repository.branch(branch) else { throw GitError(.notFound, "default branch \(branch) is gone") }
            return sha
        }
    }

    /// Models declared at the default branch's head, by name.
    public func models() throws -> [ModelDeclaration] {
        try snapshot(try head()).models.values.map(\.declaration).sorted { $0.name < $1.name }
    }

    /// A model as declared at the default branch's head; nil when it is not there.
    public func model(named name: String) throws -> ModelDeclaration? {
        try snapshot(try head()).models[name]?.declaration
    }

    /// The models at a commit.
    public func models(at commit: String) throws -> [String] {
        try snapshot(commit).models.keys.sorted()
    }

    // MARK: Resolution

    /// A spec resolved to a model and commit, before lineage is computed.
    public struct Resolution: Sendable, Hashable {
        public let model: String
        /// The commit the spec named.
        public let commit: String
    }

    /// Resolves a spec to (model, commit) per the contract's rules. Answers are kept until the
    /// next `refresh` (the only time refs move), so a hot spec costs one dictionary lookup.
    public func resolve(_ text: String) throws -> Resolution {
        let generation = refsGeneration.load(ordering: .sequentiallyConsistent)
        let answer = try resolutions.value(for: "\(generation)\u{0}\(text)") { () throws -> Result<Resolution, LineageError> in
            resolutionCount.add(1, ordering: .relaxed)
            do {
                return .success(try resolveFromRefs(text))
            } catch let error as LineageError {
                // Git failures may be passing; the others are facts about this generation's refs.
                if case .git = error { throw error }
                return .failure(error)
            }
        }
        return try answer.get()
    }

    /// Resolutions computed so far (the rest came from the cache).
    public var resolutionsComputed: Int { resolutionCount.load(ordering: .relaxed) }

    /// The lineage of `spec` when every step of it is cached (no Git or YAML work), else nil.
    /// Lets a caller answer hot specs at once and hand only the rest to a thread pool.
    public func cachedLineage(_ spec: String) -> ModelLineage? {
        let generation = refsGeneration.load(ordering: .sequentiallyConsistent)
        guard case .success(let resolution)? = resolutions.value(for: "\(generation)\u{0}\(spec)"),
            let canonical = canonicals.value(for: "\(resolution.model)@\(resolution.commit)")
        else { return nil }
        return lineages.value(for: "\(resolution.model)@\(canonical)")
    }

    private func resolveFromRefs(_ text: String) throws -> Resolution {
        let spec = try RevisionSpec(parsing: text)
        guard let model = spec.model else {
            // A bare SHA: accepted when exactly one model exists at that commit.
            guard case .revision(let sha) = spec.selector, let commit = try git({ try repository.commit(matching: sha) }) else {
                throw LineageError.notFound("no commit \(text)")
            }
            let names = try models(at: commit)
            guard names.count == 1 else {
                if names.isEmpty { throw LineageError.notFound("commit \(commit.prefix(12)) holds no model") }
                throw LineageError.ambiguous("commit \(commit.prefix(12)) holds \(names.count) models", choices: names.map { "\($0)@\(commit)" })
            }
            return Resolution(model: names[0], commit: commit)
        }
        let commit: String
        switch spec.selector {
        case .latest:
            commit = try newestCommit(containing: model)
        case .stage(let stage):
            guard let sha = try registry().stage(stage, of: model) else {
                throw LineageError.notFound("model \(model) has no active stage '\(stage)'")
            }
            commit = sha
        case .revision(let rev):
            commit = try resolveRevision(rev, model: model)
        }
        let snapshot = try snapshot(commit)
        guard snapshot.models[model] != nil else {
            throw LineageError.notFound("model \(model) does not exist at \(commit.prefix(12)) (\(spec))")
        }
        return Resolution(model: model, commit: commit)
    }

    /// `v1.2.0` (GTO, or a plain version tag), full or short SHA, branch, tag — in that order.
    private func resolveRevision(_ rev: String, model: String) throws -> String {
        if RevisionSpec.isSemver(rev) {
            if let version = try registry().version(rev, of: model) { return version.commit }
            if let tagged = try git({ try repository.tag("\(model.replacingOccurrences(of: ":", with: "="))@\(rev)") }) { return tagged }
            if let plain = try versions(of: model).first(where: { $0.name == rev }) { return plain.commit }
            throw LineageError.notFound("model \(model) has no version \(rev)")
        }
        let isHex = rev.count >= 4 && rev.count <= 40 && rev.allSatisfy(\.isHexDigit)
        if isHex && rev.count == 40, let sha = try git({ try repository.commit(matching: rev.lowercased()) }) { return sha }
        if let sha = try git({ try repository.branch(rev) }) { return sha }
        if let sha = try git({ try repository.tag(rev) }) { return sha }
        if isHex {
            do {
                if let sha = try repository.commit(matching: rev.lowercased()) { return sha }
            } catch let error as GitError where error.kind == .ambiguous {
                throw LineageError.ambiguous("short SHA \(rev) matches several objects; use more digits", choices: [])
            } catch {
                throw LineageError.git(error as? GitError ?? GitError(.other, "\(error)"))
            }
        }
        throw LineageError.notFound("no branch, tag, version or commit '\(rev)'")
    }

    /// The versions of `model`, newest first: GTO's (`model@vX.Y.Z` tags), else, when GTO registers
    /// none for it, the repository's plain version tags (`v1.2.0`, as Hugging Face-style
    /// repositories tag releases) on commits where the model exists.
    public func versions(of model: String) throws -> [GTORegistry.Version] {
        let registered = try registry().versions(of: model)
        guard registered.isEmpty else { return registered }
        var plain: [GTORegistry.Version] = []
        for tag in try git({ try repository.tags() }) where RevisionSpec.isSemver(tag.name) {
            guard try snapshot(tag.commit).models[model] != nil else { continue }
            plain.append(GTORegistry.Version(name: tag.name, commit: tag.commit, tag: tag.name))
        }
        return plain.sorted { GTORegistry.semverLess($1.name, $0.name) }
    }

    /// The newest first-parent commit on the default branch that contains `model`.
    private func newestCommit(containing model: String) throws -> String {
        for commit in try git({ try repository.firstParentHistory(from: try head()) }) where try snapshot(commit).models[model] != nil {
            return commit
        }
        throw LineageError.notFound("no model named \(model) on the default branch")
    }

    /// The commit that last changed the model's artifact (its md5, or its signature), at or before
    /// `commit` (first parents).
    public func canonicalCommit(model: String, at commit: String) throws -> String {
        try canonicals.value(for: "\(model)@\(commit)") { () throws in try walkToCanonical(model: model, at: commit) }
    }

    private func walkToCanonical(model: String, at commit: String) throws -> String {
        guard let identity = try snapshot(commit).artifactIdentity(of: model) else { return commit }
        var current = commit
        while let parent = try git({ try repository.firstParent(of: current) }) {
            guard try snapshot(parent).artifactIdentity(of: model) == identity else { break }
            current = parent
        }
        return current
    }

    // MARK: Compare

    /// What changed between two revision specs of one model (`b` is usually the newer).
    public func compare(_ a: String, _ b: String) throws -> LineageDiff {
        let old = try lineage(a)
        let new = try lineage(b)
        guard old.model.name == new.model.name else {
            throw LineageError.invalidRevision("compare takes two revisions of one model (got \(old.model.name) and \(new.model.name))")
        }
        let oldCommit = old.commit.sha
        let newCommit = new.commit.sha
        // The first-parent path from b back to a; bounded by the history's length.
        let chain = try repository.firstParentHistory(from: newCommit)
        guard let end = chain.firstIndex(of: oldCommit) else {
            return LineageDiff(a: old, b: new, commits: [], related: false)
        }
        let commits = try chain[..<end].map { try repository.commit($0) }
        return LineageDiff(a: old, b: new, commits: commits, related: true)
    }

    // MARK: Reverse lineage

    /// Every model revision on the default branch whose pipeline read `path` (at `md5` when
    /// given), with the stage that read it: "which models were trained on this data".
    public func datasetUses(path: String, md5: String?) throws -> [DatasetUse] {
        var uses: [DatasetUse] = []
        for model in try models() {
            for commit in try revisions(of: model.name) {
                guard let revision = try? lineage(model: model.name, at: commit) else { continue }
                for stage in revision.pipeline {
                    for dependency in stage.deps where dependency.path == path && (md5 == nil || dependency.md5 == md5) {
                        uses.append(DatasetUse(revision: revision, stage: stage.name, md5: dependency.md5))
                    }
                }
            }
        }
        return uses
    }

    // MARK: Lineage

    /// Full lineage for a revision spec.
    public func lineage(_ spec: String) throws -> ModelLineage {
        let resolution = try resolve(spec)
        return try lineage(model: resolution.model, at: resolution.commit)
    }

    /// Full lineage of `model` as of `commit`, identified by its canonical commit.
    public func lineage(model name: String, at commit: String) throws -> ModelLineage {
        let snapshotHere = try snapshot(commit)
        guard let slot = snapshotHere.models[name] else { throw LineageError.notFound("model \(name) does not exist at \(commit.prefix(12))") }
        if let error = slot.error { throw LineageError.metadata(error) }
        do { _ = try snapshotHere.artifact(of: slot.declaration) } catch { throw LineageError.wrap(error) }
        let canonical = try canonicalCommit(model: name, at: commit)
        return try lineages.value(for: "\(name)@\(canonical)") { () throws in
            try buildLineage(model: name, canonical: canonical)
        }
    }

    private func buildLineage(model name: String, canonical: String) throws -> ModelLineage {
        let snapshot = try snapshot(canonical)
        guard let slot = snapshot.models[name] else { throw LineageError.notFound("model \(name) does not exist at \(canonical.prefix(12))") }
        let artifact: RepositorySnapshot.ArtifactRecord
        do { artifact = try snapshot.artifact(of: slot.declaration) } catch { throw LineageError.wrap(error) }
        let stageIndices = artifact.stage.map { snapshot.pipeline(endingAt: $0) } ?? []
        var pipeline: [StageInfo] = []
        var datasets: [DatasetInfo] = []
        var parameters: [ParameterInfo] = []
        var code: [DependencyInfo] = []
        var seenDatasets = Set<String>()
        var seenCode = Set<String>()
        var seenParams = Set<String>()

        for index in stageIndices {
            let node = snapshot.stages[index]
            guard let locked = node.locked else { throw LineageError.metadata(node.missingLock) }
            let stageParams = try lockedParameters(node, at: canonical)
            for param in stageParams where seenParams.insert("\(param.file)\u{0}\(param.key)").inserted { parameters.append(param) }
            pipeline.append(
                StageInfo(
                    name: node.address, cmd: node.definition.cmd,
                    deps: locked.deps.map { DependencyInfo(path: $0.path, md5: $0.md5 ?? "") },
                    outs: locked.outs.map { DependencyInfo(path: $0.path, md5: $0.md5 ?? "") },
                    parameters: stageParams
                ))
            for dep in node.definition.deps {
                if snapshot.producer(of: dep) != nil { continue }  // an upstream stage's output
                if let tracked = snapshot.tracking(dep) {
                    guard seenDatasets.insert(tracked.out.path).inserted else { continue }
                    datasets.append(try dataset(tracked.file, tracked.out, at: canonical))
                } else if seenCode.insert(dep).inserted {
                    let md5 = locked.deps.first { $0.path == dep }?.md5 ?? ""
                    code.append(DependencyInfo(path: dep, md5: md5))
                }
            }
        }
        let path = slot.declaration.path
        let info: ArtifactInfo
        switch artifact {
        case .dvc(let entry, let stage):
            info = ArtifactInfo(
                path: path, md5: entry.md5 ?? "", size: entry.size ?? 0, nfiles: entry.nfiles,
                // dvc.lock does not record `remote:`; the stage's out in dvc.yaml does.
                remote: entry.remote ?? stage.flatMap { snapshot.stages[$0].definition.outs.first { $0.path == entry.path }?.remote },
                hashName: entry.hashName, outPath: entry.path, signature: snapshot.signature(of: path))
        case .git(let blob, _):
            let digests = try blobDigests(blob, path: path)
            info = ArtifactInfo(
                path: path, md5: digests.md5, size: digests.size, nfiles: nil, remote: nil, hashName: "md5", outPath: path,
                signature: snapshot.signature(of: path), origin: .git(blob: blob), sha256: digests.sha256)
        case .lfs(let pointer, _, _):
            // Git LFS names the object by SHA-256; its md5 is learnt when it is fetched.
            info = ArtifactInfo(
                path: path, md5: "", size: pointer.size, nfiles: nil, remote: nil, hashName: "md5", outPath: path,
                signature: snapshot.signature(of: path), origin: .lfs, sha256: pointer.oid)
        }
        return ModelLineage(
            id: "\(name)@\(canonical)",
            model: slot.declaration,
            commit: try commit(canonical),
            artifact: info,
            stage: pipeline.last.flatMap { artifact.stage != nil ? $0 : nil },
            pipeline: pipeline,
            datasets: datasets,
            parameters: parameters,
            code: code
        )
    }

    /// The md5, SHA-256 and size of a Git blob: computed once per blob (a blob never changes), so
    /// an artifact committed to Git joins the cache, the ledger and replay under its md5 as a DVC
    /// out does (hashed as DVC 3 hashes: plain bytes).
    private func blobDigests(_ blob: String, path: String) throws -> BlobDigests {
        try digests.value(for: blob) { () throws in
            try readBlob(blob, path: path) { bytes in
                var md5 = Insecure.MD5()
                var sha256 = SHA256()
                md5.update(bufferPointer: bytes)
                sha256.update(bufferPointer: bytes)
                return BlobDigests(
                    md5: DVCHash.hexString(md5.finalize()), sha256: DVCHash.hexString(sha256.finalize()), size: Int64(bytes.count))
            }
        }
    }

    /// The most bytes an artifact committed to Git may have: its blob is inflated whole in memory
    /// to be hashed or copied into the cache (libgit2 streams no packed object), so a larger one
    /// belongs in DVC or Git LFS.
    public static let maxGitArtifactBytes = 1 << 30
    /// One artifact blob in memory at a time, however many requests ask for different ones.
    private let artifactBlobReads = NSLock()

    /// Runs `body` over the bytes of an artifact's blob (at most `maxGitArtifactBytes`, one blob
    /// at a time); a larger blob is a metadata error naming the file. Errors of `body` (a cache
    /// write) reach the caller as they are; only Git's are translated.
    public func readBlob<T>(_ blob: String, path: String, _ body: (UnsafeRawBufferPointer) throws -> T) throws -> T {
        artifactBlobReads.lock()
        defer { artifactBlobReads.unlock() }
        do {
            return try repository.withBlob(blob, maxSize: Self.maxGitArtifactBytes, body)
        } catch let error as GitError where error.kind == .tooLarge {
            throw LineageError.metadata(
                DVCError(
                    .tooLarge, file: path,
                    "\(path) is committed to Git larger than the \(Self.maxGitArtifactBytes >> 20) MiB an artifact kept in Git may have: keep it in DVC or Git LFS"
                ))
        } catch let error as GitError {
            throw LineageError.git(error)
        }
    }

    private func dataset(_ file: DVCFile, _ out: DVCEntry, at commit: String) throws -> DatasetInfo {
        let changed = try git { try repository.lastChange(of: file.path, from: commit) }
        let origin = file.importSource
        return DatasetInfo(
            path: out.path, md5: out.md5 ?? "", size: out.size ?? 0, nfiles: out.nfiles,
            commit: try changed.map { sha throws in try self.commit(sha) },
            source: origin.map { ImportInfo(url: $0.url, path: $0.path, rev: $0.revLock ?? $0.rev) }
        )
    }

    /// A stage's parameters with their locked values, falling back to the params file at the
    /// commit when `dvc.lock` lacks a value.
    private func lockedParameters(_ node: RepositorySnapshot.StageNode, at commit: String) throws -> [ParameterInfo] {
        var result: [ParameterInfo] = []
        var files: [String: ParamsFile] = [:]
        func paramsFile(_ path: String) throws -> ParamsFile? {
            if let cached = files[path] { return cached }
            guard let data = try git({ try reader.read(path, at: commit) }) else { return nil }
            do {
                let parsed = try ParamsFile(path: path, data: data)
                files[path] = parsed
                return parsed
            } catch { throw LineageError.wrap(error) }
        }
        for reference in node.definition.params {
            let locked = node.locked?.params[reference.file]
            if reference.key.isEmpty {
                let values = try locked ?? (paramsFile(reference.file)?.flattened ?? [])
                result += values.map { ParameterInfo(file: reference.file, key: $0.key, value: $0.value.yamlText) }
            } else if let value = try locked?.first(where: { $0.key == reference.key })?.value ?? paramsFile(reference.file)?.value(at: reference.key)
            {
                result.append(ParameterInfo(file: reference.file, key: reference.key, value: value.yamlText))
            } else {
                throw LineageError.metadata(
                    DVCError(.missing, file: reference.file, "parameter '\(reference.key)' of stage '\(node.address)' is missing"))
            }
        }
        return result
    }

    // MARK: DVC configuration

    /// `.dvc/config` at `commit`, merged with `.dvc/config.local` from the source working tree
    /// when the source is a local folder (that file holds secrets and is never in Git).
    public func dvcConfig(at commit: String) throws -> DVCConfig {
        let shared = try git { try reader.read(".dvc/config", at: commit) }
        let local = dvcFolder.flatMap { FileManager.default.contents(atPath: $0 + "/config.local") }
        do { return try DVCConfig(config: shared, local: local) } catch { throw LineageError.wrap(error) }
    }

    /// The source working tree's `.dvc` folder, when the repository was opened from a local path.
    public var dvcFolder: String? {
        guard let source = repository.source, source.hasPrefix("/") else { return nil }
        var isDirectory: ObjCBool = false
        let folder = source + "/.dvc"
        return FileManager.default.fileExists(atPath: folder, isDirectory: &isDirectory) && isDirectory.boolValue ? folder : nil
    }

    /// The files commit `sha` changed (against its first parent), at most `changedFilesLimit`:
    /// the lineage of an artifact no pipeline produced is its commit, the artifact and these.
    public func changedFiles(in sha: String) throws -> [String] {
        try git { try changes.value(for: sha) { () throws in try repository.changedPaths(in: sha, limit: Self.changedFilesLimit) } }
    }

    /// The most paths `changedFiles` answers for one commit.
    public static let changedFilesLimit = 1000

    // MARK: Git LFS

    /// Where the LFS objects of `commit` are served: `lfs.url` of its `.lfsconfig` (chosen by the
    /// repository), else the source's URL + `/info/lfs` as git-lfs derives it (chosen by the
    /// operator), else, for a local source, its own `lfs/objects` folder; nil when none applies.
    public func lfsEndpoint(at commit: String) throws -> LFSEndpoint? {
        if let data = try git({ try reader.read(".lfsconfig", at: commit) }), let url = LFSPointer.endpoint(inConfig: data) {
            return LFSEndpoint(url: url, fromRepository: true)
        }
        guard let source = repository.source else { return nil }
        if source.hasPrefix("http://") || source.hasPrefix("https://") {
            var url = source
            while url.hasSuffix("/") { url.removeLast() }
            return LFSEndpoint(url: url + (url.hasSuffix(".git") ? "" : ".git") + "/info/lfs", fromRepository: false)
        }
        guard source.hasPrefix("/") else { return nil }
        for folder in [source + "/.git/lfs/objects", source + "/lfs/objects"] {
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: folder, isDirectory: &isDirectory), isDirectory.boolValue {
                return LFSEndpoint(url: folder, fromRepository: false)
            }
        }
        return nil
    }

    // MARK: History

    /// The canonical commits of `model` on the default branch: first-parent commits where the
    /// artifact (its md5, or its signature) changed, newest first.
    public func revisions(of model: String) throws -> [String] {
        let history = try git { try repository.firstParentHistory(from: try head()) }
        var result: [String] = []
        var previous: (commit: String, identity: String?)?
        for commit in history {
            let identity = try snapshot(commit).artifactIdentity(of: model)
            if let last = previous, let lastIdentity = last.identity, lastIdentity != identity { result.append(last.commit) }
            previous = (commit, identity)
        }
        if let last = previous, last.identity != nil { result.append(last.commit) }
        return result
    }

    /// Runs a Git read, wrapping its error.
    func git<T>(_ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch let error as LineageError {
            throw error
        } catch let error as GitError {
            throw LineageError.git(error)
        } catch let error as DVCError {
            throw LineageError.metadata(error)
        } catch {
            throw LineageError.git(GitError(.other, "\(error)"))
        }
    }
}
