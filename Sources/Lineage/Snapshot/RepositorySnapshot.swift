public import DVCKit
import Foundation
import GitStore

/// The DVC metadata of one commit, parsed once: pipelines with their locks, `.dvc` files and the
/// models they declare. Commits never change, so a snapshot is cached by commit id for good.
///
/// A broken file does not break the snapshot: its error is kept and reported for the models
/// that depend on it, while the others stay answerable.
public struct RepositorySnapshot: Sendable {
    /// One pipeline stage with its lock entry.
    struct StageNode: Sendable {
        /// `train`, or `sub/dvc.yaml:train` for pipelines outside the root folder.
        let address: String
        let definition: StageDefinition
        let locked: LockedStage?
        /// Why there is no lock entry, when the lock file itself is broken or missing.
        let lockProblem: DVCError?

        /// The error of a stage without a lock entry.
        var missingLock: DVCError { lockProblem ?? DVCError(.missing, file: "dvc.lock", "stage '\(address)' is not locked") }
    }

    /// A model and, when its metadata is broken, why.
    struct ModelSlot: Sendable {
        let declaration: ModelDeclaration
        let error: DVCError?
    }

    let commit: String
    let stages: [StageNode]
    /// Parsed `.dvc` files by their own path.
    let dvcFiles: [String: DVCFile]
    /// Models by name, in name order.
    let models: [String: ModelSlot]
    /// Files that failed to parse (reported in logs and for the models that depend on them).
    let problems: [DVCError]
    /// Signature files committed to Git (`*.sig`): their blob ids by path.
    let signatureBlobs: [String: String]
    /// Models' files committed to Git: their blob ids by path (a model DVC does not hold).
    let modelBlobs: [String: String]
    /// Models' files whose committed blob is a Git LFS pointer: the pointers by path.
    let lfsPointers: [String: LFSPointer]

    /// Where a model's bytes are at this commit: a DVC out's entry, or a Git blob; with the stage
    /// that produces them, when a pipeline does.
    enum ArtifactRecord: Sendable {
        case dvc(DVCEntry, stage: Int?)
        case git(blob: String, stage: Int?)
        /// A pointer committed to Git; the content on the repository's LFS server.
        case lfs(LFSPointer, blob: String, stage: Int?)

        var stage: Int? {
            switch self {
            case .dvc(_, let stage), .git(_, let stage), .lfs(_, _, let stage): stage
            }
        }
    }

    /// Folder-relative file names that hold DVC metadata, or a signature (`*.sig`, committed).
    static func isMetadata(_ path: String) -> Bool {
        let name = path.split(separator: "/").last.map(String.init) ?? path
        return name == "dvc.yaml" || name == "dvc.lock" || (name.hasSuffix(".dvc") && name.count > 4) || name.hasSuffix(signatureSuffix)
    }

    static let ggufSuffix = ".gguf"

    /// What a signature's file name adds to the weights' (`model.gguf.sig`).
    static let signatureSuffix = ".sig"

    init(commit: String, reader: MetadataReader) throws {
        self.commit = commit
        let tree = try reader.repository.files(at: commit) { Self.isMetadata($0) || $0.hasSuffix(Self.ggufSuffix) }
        let files = tree.filter { Self.isMetadata($0.path) }
        var problems: [DVCError] = []
        var stages: [StageNode] = []
        var dvcFiles: [String: DVCFile] = [:]
        var brokenDVCFiles: [String: DVCError] = [:]
        var artifacts: [(ArtifactDefinition, folder: String)] = []
        let paths = Set(files.map(\.path))

        for file in files where file.path.hasSuffix(".dvc") {
            do {
                dvcFiles[file.path] = try DVCFile(path: file.path, data: try reader.blob(file.blob, path: file.path))
            } catch let error as DVCError {
                brokenDVCFiles[file.path] = error
                problems.append(error)
            }
        }
        for file in files where file.path.hasSuffix("dvc.yaml") {
            let folder = RepoPath.directory(of: file.path)
            let pipeline: PipelineFile
            do {
                pipeline = try PipelineFile(path: file.path, data: try reader.blob(file.blob, path: file.path)) { path in
                    try reader.read(path, at: commit)
                }
            } catch let error as DVCError {
                problems.append(error)
                continue
            }
            artifacts += pipeline.artifacts.map { ($0, folder) }
            let lockPath = folder.isEmpty ? "dvc.lock" : folder + "/dvc.lock"
            var lock: LockFile?
            var lockProblem: DVCError?
            if paths.contains(lockPath) {
                do {
                    guard let data = try reader.read(lockPath, at: commit) else { throw DVCError(.missing, file: lockPath, "unreadable") }
                    lock = try LockFile(
                        path: lockPath, data: data, wdirs: Dictionary(pipeline.stages.map { ($0.name, $0.wdir) }, uniquingKeysWith: { a, _ in a }))
                } catch let error as DVCError {
                    lockProblem = error
                    problems.append(error)
                }
            } else if !pipeline.stages.isEmpty {
                lockProblem = DVCError(
                    .missing, file: lockPath, "no dvc.lock next to \(file.path): run `dvc repro` or `dvc commit` and commit dvc.lock")
            }
            for stage in pipeline.stages {
                let address = folder.isEmpty ? stage.name : "\(file.path):\(stage.name)"
                let locked = lock?.stages[stage.name]
                stages.append(
                    StageNode(
                        address: address, definition: stage, locked: locked,
                        lockProblem: locked == nil
                            ? (lockProblem ?? DVCError(.missing, file: lockPath, "stage '\(stage.name)' is not in dvc.lock: run `dvc repro`")) : nil
                    ))
            }
        }

        // Model discovery: declared artifacts first, then the `models/<name>/*.gguf` convention.
        var models: [String: ModelSlot] = [:]
        var claimedPaths = Set<String>()
        for (artifact, folder) in artifacts where artifact.type == "model" {
            let name = folder.isEmpty ? artifact.name : "\(folder):\(artifact.name)"
            models[name] = ModelSlot(declaration: ModelDeclaration(name: name, path: artifact.path, description: artifact.description), error: nil)
            claimedPaths.insert(artifact.path)
        }
        func conventional(_ path: String) -> String? {
            let parts = path.split(separator: "/")
            guard parts.count == 3, parts[0] == "models", parts[2].hasSuffix(".gguf") else { return nil }
            return String(parts[1])
        }
        var candidates: [(name: String, path: String, error: DVCError?)] = []
        for (dvcPath, error) in brokenDVCFiles {
            let target = String(dvcPath.dropLast(4))
            if let name = conventional(target) { candidates.append((name, target, error)) }
        }
        for file in dvcFiles.values {
            for out in file.outs { if let name = conventional(out.path) { candidates.append((name, out.path, nil)) } }
        }
        for stage in stages {
            for out in stage.definition.outs { if let name = conventional(out.path) { candidates.append((name, out.path, nil)) } }
        }
        for candidate in candidates.sorted(by: { $0.path < $1.path }) where !claimedPaths.contains(candidate.path) {
            claimedPaths.insert(candidate.path)
            guard models[candidate.name] == nil else { continue }
            models[candidate.name] = ModelSlot(
                declaration: ModelDeclaration(name: candidate.name, path: candidate.path, description: nil), error: candidate.error)
        }
        // A repository without DVC metadata (a Hugging Face-style one: GGUF files in Git or Git
        // LFS and a README): each GGUF file committed is a model, named by its path without
        // `.gguf` (or by its folder under the `models/<name>/` convention). A broken dvc.yaml does
        // not turn a DVC repository into one.
        let declaresNothing = !files.contains { !$0.path.hasSuffix(Self.signatureSuffix) }
        if models.isEmpty && declaresNothing {
            for file in tree where file.path.hasSuffix(Self.ggufSuffix) {
                let name = conventional(file.path) ?? String(file.path.dropLast(Self.ggufSuffix.count))
                guard models[name] == nil, RevisionSpec.isValidModelName(Substring(name)) else { continue }
                models[name] = ModelSlot(declaration: ModelDeclaration(name: name, path: file.path, description: nil), error: nil)
            }
        }
        self.stages = stages
        self.dvcFiles = dvcFiles
        self.models = models
        self.problems = problems
        self.signatureBlobs = Dictionary(
            files.filter { $0.path.hasSuffix(Self.signatureSuffix) }.map { ($0.path, $0.blob) }, uniquingKeysWith: { a, _ in a })
        var modelBlobs: [String: String] = [:]
        var lfsPointers: [String: LFSPointer] = [:]
        for slot in models.values where slot.error == nil {
            let path = slot.declaration.path
            guard let blob = try reader.repository.blobID(path: path, at: commit) else { continue }
            modelBlobs[path] = blob
            // A pointer is under 1024 bytes: a larger blob is refused from its header, unread.
            if let data = try? reader.repository.blob(blob, maxSize: LFSPointer.maxBytes), let pointer = LFSPointer(data) {
                lfsPointers[path] = pointer
            }
        }
        self.modelBlobs = modelBlobs
        self.lfsPointers = lfsPointers
    }

    // MARK: Graph

    /// The stage whose outputs contain `path`.
    func producer(of path: String) -> Int? {
        stages.firstIndex { node in
            node.definition.outs.contains { RepoPath.isWithin(path, $0.path) || RepoPath.isWithin($0.path, path) }
        }
    }

    /// The `.dvc` file and out that track `path` (or a folder holding it).
    func tracking(_ path: String) -> (file: DVCFile, out: DVCEntry)? {
        for file in dvcFiles.values.sorted(by: { $0.path < $1.path }) {
            for out in file.outs where RepoPath.isWithin(path, out.path) || RepoPath.isWithin(out.path, path) {
                return (file, out)
            }
        }
        return nil
    }

    /// Where a model's bytes are: its producing stage's lock entry (or, for an out DVC leaves to
    /// Git with `cache: false`, the committed blob), its `.dvc` out, or else the file committed to
    /// Git (a GTO artifact kept in Git itself).
    func artifact(of model: ModelDeclaration) throws -> ArtifactRecord {
        if let index = producer(of: model.path) {
            let node = stages[index]
            guard let locked = node.locked else { throw node.missingLock }
            if node.definition.outs.contains(where: { $0.path == model.path && !$0.cache }) {
                guard let blob = modelBlobs[model.path] else {
                    throw DVCError(
                        .missing, file: model.path, "stage '\(node.address)' keeps \(model.path) in Git (cache: false), but it is not committed")
                }
                return committed(model.path, blob: blob, stage: index)
            }
            guard
                let entry = locked.outs.first(where: { $0.path == model.path })
                    ?? locked.outs.first(where: { RepoPath.isWithin(model.path, $0.path) }),
                entry.md5 != nil
            else {
                throw DVCError(.missing, file: node.definition.name, "dvc.lock records no hash for \(model.path): run `dvc repro`")
            }
            return .dvc(entry, stage: index)
        }
        if let tracked = tracking(model.path), tracked.out.md5 != nil { return .dvc(tracked.out, stage: nil) }
        if let blob = modelBlobs[model.path] { return committed(model.path, blob: blob, stage: nil) }
        throw DVCError(.missing, file: model.path, "no stage output, .dvc file or Git commit holds \(model.path)")
    }

    /// A file committed to Git: its blob, or the LFS object its blob points to.
    private func committed(_ path: String, blob: String, stage: Int?) -> ArtifactRecord {
        if let pointer = lfsPointers[path] { return .lfs(pointer, blob: blob, stage: stage) }
        return .git(blob: blob, stage: stage)
    }

    /// What identifies a model's artifact here: its md5 (a Git blob's id) and, when the weights are signed, the
    /// signature's identity (a signature added or replaced makes a new revision of the same
    /// weights); nil when the model is absent or broken.
    func artifactIdentity(of name: String) -> String? {
        guard let slot = models[name], slot.error == nil, let record = try? artifact(of: slot.declaration) else { return nil }
        let content: String
        switch record {
        case .dvc(let entry, _):
            guard let md5 = entry.md5 else { return nil }
            content = md5
        case .git(let blob, _):
            content = "git:" + blob
        case .lfs(let pointer, _, _):
            content = "lfs:" + pointer.oid
        }
        guard let signature = signature(of: slot.declaration.path) else { return content }
        return content + " " + signature.digest
    }

    /// The signature beside the weights at `path` (`path.sig`): committed to Git, or tracked by
    /// DVC as an out of its own (a `.dvc` file's or a stage's; a file inside a tracked folder is
    /// not read as a signature); nil when there is none.
    func signature(of path: String) -> SignatureFileInfo? {
        let file = path + Self.signatureSuffix
        if let blob = signatureBlobs[file] { return SignatureFileInfo(path: file, source: .git(blob: blob)) }
        let entry: DVCEntry?
        var remote: String?
        if let index = producer(of: file) {
            entry = stages[index].locked?.outs.first { $0.path == file }
            remote = stages[index].definition.outs.first { $0.path == file }?.remote
        } else {
            entry = tracking(file).flatMap { $0.out.path == file ? $0.out : nil }
        }
        guard let entry, let md5 = entry.md5 else { return nil }
        return SignatureFileInfo(path: file, source: .dvc(md5: md5, size: entry.size, hashName: entry.hashName, remote: entry.remote ?? remote))
    }

    /// The stage at `index` and every stage upstream of it, sources first (depth-first post-order,
    /// so each stage comes after everything it depends on).
    func pipeline(endingAt index: Int) -> [Int] {
        var order: [Int] = []
        var state: [Int: Bool] = [:]  // false: visiting, true: done
        func visit(_ current: Int) {
            if state[current] != nil { return }  // done, or a cycle DVC itself would refuse
            state[current] = false
            for dep in stages[current].definition.deps {
                if let upstream = producer(of: dep), upstream != current { visit(upstream) }
            }
            state[current] = true
            order.append(current)
        }
        visit(index)
        return order
    }
}
