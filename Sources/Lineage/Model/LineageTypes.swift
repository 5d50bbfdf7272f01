public import DVCKit
import Foundation
public import GitStore

/// A model as the repository declares it at some commit.
public struct ModelDeclaration: Sendable, Hashable, Codable {
    /// `smollm2-135m`, or `dir/sub:name` for an artifact declared in a sub-folder's `dvc.yaml`.
    public let name: String
    /// Repository-relative path of the weights.
    public let path: String
    public let description: String?
}

/// Where a model's bytes are kept.
public enum ArtifactOrigin: Sendable, Hashable, Codable {
    /// A DVC remote: the out's object (`ArtifactInfo.remote` and `hashName` say which and how).
    case dvc
    /// Committed to Git: this blob, read from the object database (md5 and SHA-256 computed from
    /// its bytes, so the cache, the ledger and replay keep one key space).
    case git(blob: String)
    /// On the repository's Git LFS server: a pointer committed to Git names the object by its
    /// SHA-256 (`ArtifactInfo.sha256`) and size; its md5 is known once it is fetched.
    case lfs

    /// `dvc`, `git` or `lfs`, as the API shows it.
    public var kind: String {
        switch self {
        case .dvc: "dvc"
        case .git: "git"
        case .lfs: "lfs"
        }
    }

    /// The Git blob, for an artifact committed to Git.
    public var blob: String? {
        if case .git(let blob) = self { blob } else { nil }
    }

    private enum CodingKeys: String, CodingKey { case kind, blob }

    /// `{"kind": "git", "blob": "…"}` (`pedigree lineage --json`).
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(kind, forKey: .kind)
        try container.encodeIfPresent(blob, forKey: .blob)
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        switch try container.decode(String.self, forKey: .kind) {
        case "dvc": self = .dvc
        case "git": self = .git(blob: try container.decode(String.self, forKey: .blob))
        case "lfs": self = .lfs
        case let other: throw DecodingError.dataCorruptedError(forKey: .kind, in: container, debugDescription: "no artifact origin \(other)")
        }
    }
}

/// The model's weights: where they are kept and the digests that name them.
public struct ArtifactInfo: Sendable, Hashable, Codable {
    public let path: String
    public let md5: String
    public let size: Int64
    public let nfiles: Int?
    /// DVC remote named by the out (`remote:`), nil for `core.remote`.
    public let remote: String?
    /// `md5` for DVC 3 hashing, nil for legacy (DVC 2) outs: it decides the object's layout.
    public let hashName: String?
    /// The DVC out holding the weights: `path` itself, or a tracked directory containing it.
    public let outPath: String
    /// The signature beside the weights (`path.sig`), when the commit has one.
    public var signature: SignatureFileInfo? = nil
    /// Where the bytes are: a DVC remote, or the Git object database.
    public var origin: ArtifactOrigin = .dvc
    /// The SHA-256 of the bytes when the repository names it (a Git LFS pointer) or lineage has
    /// read them (a Git blob); nil for DVC outs, whose records hold an md5 only.
    public var sha256: String? = nil

    /// What tells these weights from others: the md5 (marked `legacy:` under DVC 2's hashing), and
    /// for a file inside a tracked folder (the folder's md5) its path too; for an LFS object, its
    /// SHA-256 (the md5 may not be known yet).
    /// Loaded models and checks are keyed by it.
    public var weightsKey: String {
        if case .lfs = origin, let sha256 { return "sha256:" + sha256 }
        // Legacy (DVC 2) digests name other bytes than DVC 3 ones of the same hex.
        let object = hashName == "md5" ? md5 : "legacy:" + md5
        return path == outPath ? object : object + ":" + path
    }
}

/// A signature file beside a model's weights (an OpenSSF Model Signing bundle, `model.gguf.sig`):
/// committed to Git, or tracked by DVC as an out of its own (a `.dvc` file's or a stage's).
public struct SignatureFileInfo: Sendable, Hashable, Codable {
    public enum Source: Sendable, Hashable, Codable {
        case git(blob: String)
        /// The out's object; `size` as DVC recorded it (nil when it did not).
        case dvc(md5: String, size: Int64?, hashName: String?, remote: String?)
    }

    public let path: String
    /// Where its bytes are: exactly what the check reads.
    public let source: Source

    /// What names its content: `git:<blob id>` or `md5:<md5>`. Equal digests, equal files.
    public var digest: String {
        switch source {
        case .git(let blob): "git:" + blob
        case .dvc(let md5, _, _, _): "md5:" + md5
        }
    }
}

/// A dependency or output with its recorded hash.
public struct DependencyInfo: Sendable, Hashable, Codable {
    public let path: String
    public let md5: String
}

/// A parameter with its locked value, as YAML scalar text.
public struct ParameterInfo: Sendable, Hashable, Codable {
    public let file: String
    public let key: String
    public let value: String
}

/// One pipeline stage with what it consumed and produced at this commit.
public struct StageInfo: Sendable, Hashable, Codable {
    /// The stage's address as DVC prints it: `train`, or `sub/dvc.yaml:train` outside the root.
    public let name: String
    public let cmd: String
    public let deps: [DependencyInfo]
    public let outs: [DependencyInfo]
    public let parameters: [ParameterInfo]
}

/// Where imported data came from.
public struct ImportInfo: Sendable, Hashable, Codable {
    public let url: String
    public let path: String
    public let rev: String?
}

/// A source dataset: DVC-tracked input that no stage produces.
public struct DatasetInfo: Sendable, Hashable, Codable {
    public let path: String
    public let md5: String
    public let size: Int64
    public let nfiles: Int?
    /// The commit (at or before the revision) that last changed its `.dvc` file.
    public let commit: CommitInfo?
    public let source: ImportInfo?
}

/// A model at one revision with everything it came from.
public struct ModelLineage: Sendable, Hashable, Codable {
    /// Canonical id: `<model>@<sha of the commit that last changed the artifact>`.
    public let id: String
    public let model: ModelDeclaration
    /// The canonical commit (where the artifact last changed).
    public let commit: CommitInfo
    public let artifact: ArtifactInfo
    /// The producing stage; nil when the weights are tracked by a `.dvc` file.
    public let stage: StageInfo?
    /// The producing stage and every stage upstream of it, sources first.
    public let pipeline: [StageInfo]
    public let datasets: [DatasetInfo]
    public let parameters: [ParameterInfo]
    public let code: [DependencyInfo]
}

/// Where a commit's Git LFS objects are served: an LFS server's URL (its Batch API under
/// `/objects/batch`), or a local folder laid out as git-lfs stores objects (`ab/cd/abcd…`).
public struct LFSEndpoint: Sendable, Hashable {
    public let url: String
    /// Chosen by a commit (`.lfsconfig`), not by the operator: the server connects there only when
    /// the configuration lists it (`remote-endpoints`).
    public let fromRepository: Bool

    public init(url: String, fromRepository: Bool) {
        self.url = url
        self.fromRepository = fromRepository
    }

    /// Whether the endpoint is a local folder.
    public var isLocal: Bool { url.hasPrefix("/") }
}

extension ModelLineage {
    /// Whether the weights' md5 is still to learn: a Git LFS object names them by SHA-256 only,
    /// until it is fetched.
    public var awaitsMD5: Bool { artifact.md5.isEmpty }

    /// The same revision with its weights' md5, learnt from their fetch (a Git LFS object).
    public func learning(md5: String) -> ModelLineage {
        var artifact = ArtifactInfo(
            path: self.artifact.path, md5: md5, size: self.artifact.size, nfiles: self.artifact.nfiles, remote: self.artifact.remote,
            hashName: self.artifact.hashName, outPath: self.artifact.outPath)
        artifact.signature = self.artifact.signature
        artifact.origin = self.artifact.origin
        artifact.sha256 = self.artifact.sha256
        return ModelLineage(
            id: id, model: model, commit: commit, artifact: artifact, stage: stage, pipeline: pipeline, datasets: datasets, parameters: parameters,
            code: code)
    }
}
