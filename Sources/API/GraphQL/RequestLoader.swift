public import ArtifactStore
public import Inference
public import Lineage
import Synchronization

/// Per-request memo over the lineage service (the DataLoader of this schema): within one request
/// a spec is resolved once and each (model, commit) lineage is built once, however many fields
/// ask for it. Across requests, `LineageService` caches by immutable commit and blob ids.
public final class RequestLoader: Sendable {
    public let service: LineageService
    public let artifacts: ArtifactStore
    public let models: ModelManager
    private let lineages = Mutex<[String: Result<ModelLineage, any Error>]>([:])

    public init(models: ModelManager) {
        self.models = models
        artifacts = models.artifacts
        service = artifacts.lineage
    }

    /// Lineage for a revision spec.
    public func lineage(_ spec: String) throws -> ModelLineage {
        try memo("spec:" + spec) { () throws in try service.lineage(spec) }
    }

    /// Lineage of a model as of a commit.
    public func lineage(model: String, commit: String) throws -> ModelLineage {
        try memo("at:\(model)@\(commit)") { () throws in try service.lineage(model: model, at: commit) }
    }

    private func memo(_ key: String, _ compute: () throws -> ModelLineage) throws -> ModelLineage {
        if let cached = lineages.withLock({ $0[key] }) { return try cached.get() }
        let result = Result { () throws in try compute() }
        lineages.withLock { $0[key] = result }
        return try result.get()
    }
}
