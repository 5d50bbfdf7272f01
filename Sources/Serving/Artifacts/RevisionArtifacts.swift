public import ArtifactStore
import DVCKit
public import Foundation
import GitStore
public import Inference
public import Lineage
import Tracing
import Trust

extension ArtifactLocation {
    /// Where a revision's weights lie in DVC's storage: the out's object (DVC 3 or legacy layout by
    /// its `hash:`), and the weights' path inside it when the out is a tracked directory.
    public init(_ artifact: ArtifactInfo) throws {
        let object = try ObjectID(md5: artifact.md5, scheme: ObjectID.Scheme(hashName: artifact.hashName))
        let inside = artifact.path == artifact.outPath ? nil : String(artifact.path.dropFirst(artifact.outPath.count + 1))
        // A size of 0 is what lineage reports when DVC recorded none.
        self.init(object: object, size: artifact.size > 0 ? artifact.size : nil, pathInOut: inside, remote: artifact.remote)
    }
}

/// Joins a resolved revision to the artifact store: which objects to fetch and with which DVC
/// configuration (the repository's at the revision's commit), and whether its weights may load
/// (`WeightsTrust`). It holds the services it was handed; none knows the others.
public struct RevisionArtifacts: Sendable {
    let lineage: LineageService
    let store: ArtifactStore
    public let trust: WeightsTrust

    public init(lineage: LineageService, store: ArtifactStore, trust: WeightsTrust) {
        self.lineage = lineage
        self.store = store
        self.trust = trust
    }

    /// The figures of the artifact store that `/metrics` shows: downloads since start, the cache's
    /// contents now, and cache lookups by result.
    public struct Figures: Sendable {
        public let downloads: Int
        public let downloadedBytes: Int64
        public let cachedObjects: Int
        public let cachedBytes: Int64
        public let hits: Int64
        public let misses: Int64
        /// Fetches answered from the cache, of all fetches since start (0 before the first).
        public var hitRatio: Double { hits + misses == 0 ? 0 : Double(hits) / Double(hits + misses) }
    }

    /// The store's figures now.
    public func figures() async -> Figures {
        let cache = store.cache
        let usage = await cache.usage
        let lookups = store.lookups
        return Figures(
            downloads: await cache.downloads, downloadedBytes: await cache.downloadedBytes, cachedObjects: usage.objects, cachedBytes: usage.bytes,
            hits: lookups.hits, misses: lookups.misses)
    }

    /// Pulls running now, with their progress.
    public var transfers: [TransferProgress] { store.transfers }

    /// What a pull produced.
    public struct Pulled: Sendable {
        public let revision: ModelLineage
        /// The model's read-only file (or folder, for a directory artifact) in the cache.
        public let path: String
        /// Objects downloaded and bytes received by this pull (0 when everything was cached).
        public let downloadedObjects: Int
        public let downloadedBytes: Int64
    }

    /// Fetches a revision's weights (when not cached) and returns their local path.
    public func pull(_ revision: ModelLineage, progress: TransferProgress? = nil) async throws -> Pulled {
        let progress = progress ?? TransferProgress(label: revision.id)
        let (_, path) = try await fetch(revision, progress: progress)
        return Pulled(revision: revision, path: path, downloadedObjects: progress.downloadedObjects, downloadedBytes: progress.receivedBytes)
    }

    /// Whether a revision's weights are in the cache.
    public func isCached(_ artifact: ArtifactInfo) async -> Bool {
        if case .lfs = artifact.origin, let oid = artifact.sha256 { return await store.cache.object(sha256: oid) != nil }
        guard let location = try? ArtifactLocation(artifact) else { return false }
        return await store.isCached(location)
    }

    /// The weights' md5: the one the repository records, or, for a Git LFS object, the one its
    /// fetch gave (empty until then).
    public func md5(of artifact: ArtifactInfo) async -> String {
        guard artifact.md5.isEmpty, case .lfs = artifact.origin, let oid = artifact.sha256 else { return artifact.md5 }
        return await store.cache.object(sha256: oid)?.md5 ?? ""
    }

    /// `revision` with its weights' md5 known: a Git LFS object's is learnt by fetching it (once;
    /// then from the cache's index). Other revisions come back as they are.
    public func completed(_ revision: ModelLineage) async throws -> ModelLineage {
        guard revision.awaitsMD5 else { return revision }
        let (object, _) = try await fetch(revision, progress: TransferProgress(label: revision.id))
        return revision.learning(md5: object.md5)
    }

    /// How the model manager gets a revision's weights: checked first (their SHA-256 and
    /// signature, once; `untrustedWeights` when the policy refuses them), then, when the model
    /// loads, fetched, pinned in the cache until it is unloaded, and confirmed to be the file
    /// checked. Keyed by `ArtifactInfo.weightsKey`.
    public func modelSource(_ revision: ModelLineage) async throws -> ModelSource {
        let provenance = try await admit(revision)
        let trust = self.trust
        return ModelSource(md5: revision.artifact.weightsKey, revision: revision.id, provenance: provenance) { [self] in
            let (path, release) = try await pinned(revision)
            do {
                try await trust.confirm(provenance, path: path, revision: revision)
            } catch {
                await release()
                throw error
            }
            return Weights(path: path, release: release)
        }
    }

    /// The check of `revision`'s weights (fetched first when not cached), and the policy's word.
    func admit(_ revision: ModelLineage) async throws -> WeightsProvenance {
        let lineage = self.lineage
        let commit = revision.commit.sha
        let reader = WeightsTrust.Reader(
            weights: { [self] in try await pinned(revision) },
            signature: { [self] file in try await signature(file, lineage: lineage, commit: commit) })
        let provenance = try await trust.admit(revision, reader: reader)
        // Weights the repository names by SHA-256 (Git LFS, a Git blob) are exactly those bytes,
        // whatever file the cache's index led to.
        if let expected = revision.artifact.sha256, !provenance.sha256.isEmpty, provenance.sha256 != expected {
            throw ArtifactError.integrity(object: revision.artifact.path, expected: "sha256 " + expected, actual: "sha256 " + provenance.sha256)
        }
        // The SHA-256 just computed names these bytes in Git LFS too: the same file, asked for
        // through LFS later, is found in the cache instead of downloaded.
        if case .dvc = revision.artifact.origin, revision.artifact.path == revision.artifact.outPath, !provenance.sha256.isEmpty,
            let location = try? ArtifactLocation(revision.artifact)
        {
            await store.cache.remember(sha256: provenance.sha256, of: location.object)
        }
        return provenance
    }

    /// The check of `revision`'s weights as a lineage read shows it: the one made in this process
    /// when they were loaded, else nil (a read neither downloads nor hashes weights).
    public func provenance(of revision: ModelLineage) -> WeightsProvenance? { trust.known(revision) }

    /// The revision's weights fetched (when not cached) and pinned until the returned release;
    /// `notServable` when they are not GGUF (a pickle, an ONNX file), before anything hashes or
    /// loads them.
    private func pinned(_ revision: ModelLineage) async throws -> (path: String, release: @Sendable () async -> Void) {
        let (object, path) = try await fetch(revision, progress: TransferProgress(label: revision.id))
        try Self.requireServable(path, revision: revision)
        let cache = store.cache
        await cache.pin([object])
        return (path, { await cache.unpin([object]) })
    }

    /// GGUF files start with these four bytes; llama.cpp loads nothing else.
    static let ggufMagic: [UInt8] = Array("GGUF".utf8)

    /// Refuses weights that are not GGUF with `notServable`. A file that cannot be read here
    /// passes: the load reports it.
    static func requireServable(_ path: String, revision: ModelLineage) throws {
        guard let handle = FileHandle(forReadingAtPath: path) else { return }
        defer { try? handle.close() }
        guard let head = try? handle.read(upToCount: ggufMagic.count) ?? Data(), Array(head) != ggufMagic else { return }
        throw ServingError(
            .notServable,
            "\(revision.id): \(revision.artifact.path) is not a GGUF file, which is all this engine serves; its lineage and bytes are there to read and pull"
        )
    }

    /// A signature file's bytes, read from exactly where the revision names it: its Git blob, or
    /// its DVC out (fetched into the verified cache). Larger than a signature may be, or of a size
    /// DVC did not record: `TrustError` (the check's outcome, not a failure to retry).
    private func signature(_ file: SignatureFileInfo, lineage: LineageService, commit: String) async throws -> Data {
        let limit = ModelSigning.maxBundle
        switch file.source {
        case .git(let blob):
            do {
                return try lineage.repository.blob(blob, maxSize: limit)
            } catch let error as GitError where error.kind == .tooLarge {
                throw TrustError.envelope("\(file.path) is larger than \(limit) bytes")
            }
        case .dvc(let md5, let size, let hashName, let remote):
            guard let size, size > 0 else { throw TrustError.envelope("DVC records no size for \(file.path)") }
            guard size <= limit else { throw TrustError.envelope("\(file.path) holds \(size) bytes (at most \(limit))") }
            let location = ArtifactLocation(object: try ObjectID(md5: md5, scheme: ObjectID.Scheme(hashName: hashName)), size: size, remote: remote)
            let path = try await store.fetch(location, config: { try lineage.dvcConfig(at: commit) }, progress: TransferProgress(label: file.path))
            return try Data(contentsOf: URL(fileURLWithPath: path))
        }
    }

    /// The bytes of a repository file at a commit: Git's own, or the DVC out's, fetched into the
    /// verified cache. A file over `maxBytes` is refused (`badUserInput`).
    public func read(_ file: TrackedFile, maxBytes: Int) async throws -> Data {
        switch file.content {
        case .git(let data):
            guard data.count <= maxBytes else { throw ServingError(.badUserInput, "\(file.path) holds more than \(maxBytes) bytes") }
            return data
        case .dvc(let artifact):
            guard artifact.size <= maxBytes else { throw ServingError(.badUserInput, "\(file.path) holds more than \(maxBytes) bytes") }
            let (_, path) = try await fetch(artifact, commit: file.commit, progress: TransferProgress(label: file.path))
            let data = try Data(contentsOf: URL(fileURLWithPath: path))
            guard data.count <= maxBytes else { throw ServingError(.badUserInput, "\(file.path) holds more than \(maxBytes) bytes") }
            return data
        }
    }

    private func fetch(_ revision: ModelLineage, progress: TransferProgress) async throws -> (object: ObjectID, path: String) {
        try await withSpan("fetch") { span in
            span.attributes["pedigree.artifact.md5"] = revision.artifact.md5
            if let sha256 = revision.artifact.sha256 { span.attributes["pedigree.artifact.sha256"] = sha256 }
            let fetched = try await fetch(revision.artifact, commit: revision.commit.sha, progress: progress)
            span.attributes["pedigree.artifact.downloaded_bytes"] = Int(progress.receivedBytes)
            return fetched
        }
    }

    /// An artifact of the repository at `commit` in the cache, fetched when missing: from the DVC
    /// remote the repository's configuration names there, from the Git object database, or from
    /// the Git LFS endpoint of that commit. Returns the cache object (to pin) and the file's path.
    private func fetch(_ artifact: ArtifactInfo, commit: String, progress: TransferProgress) async throws -> (object: ObjectID, path: String) {
        let lineage = self.lineage
        switch artifact.origin {
        case .dvc:
            let location = try ArtifactLocation(artifact)
            return (location.object, try await store.fetch(location, config: { try lineage.dvcConfig(at: commit) }, progress: progress))
        case .git(let blob):
            let location = try ArtifactLocation(artifact)
            let path = try await store.fetch(location, from: { GitBlobRemote(lineage: lineage, blob: blob, path: artifact.path) }, progress: progress)
            return (location.object, path)
        case .lfs:
            guard let oid = artifact.sha256 else { throw ServingError(.internalError, "a Git LFS artifact without its SHA-256") }
            let fetched = try await store.fetchLFS(
                oid: oid, size: artifact.size, endpoint: { try lineage.lfsEndpoint(at: commit).map { ($0.url, $0.fromRepository) } },
                progress: progress)
            return (fetched.id, fetched.path)
        }
    }
}
