import Access
public import ArtifactStore
import Foundation
import GraphQL
public import Inference
import Ledger
public import Lineage
public import Serving
import Synchronization
import Tracing

/// The context of one GraphQL request: the services, who asked, and a per-request memo over the
/// lineage service (the DataLoader of this schema) — within one request a spec is resolved once
/// and each (model, commit) lineage is built once, however many fields ask for it. Across
/// requests, `LineageService` caches by immutable commit and blob ids.
///
/// This is where a revision spec becomes a `ModelLineage`: resolvers hand resolved values to
/// the services, never spec strings.
public final class RequestLoader: Sendable {
    public let services: Services
    public let caller: RequestInfo
    private let lineages = Mutex<[String: Result<ModelLineage, any Error>]>([:])

    public init(services: Services, caller: RequestInfo) {
        self.services = services
        self.caller = caller
    }

    var service: LineageService { services.lineage }
    var artifacts: RevisionArtifacts { services.artifacts }
    var models: ModelManager { services.models }
    var inference: InferenceService { services.inference }

    /// Lineage for a revision spec: at once when the service has it cached, else computed on the
    /// thread pool.
    public func lineage(_ spec: String) async throws -> ModelLineage {
        try await withSpan("resolve") { span in
            span.attributes["pedigree.spec"] = spec
            let revision: ModelLineage
            if let cached = service.cachedLineage(spec) {
                revision = cached
            } else {
                revision = try await memo("spec:" + spec) { try await service.lineageOffloaded(spec) }
            }
            span.attributes["pedigree.revision"] = revision.id
            return revision
        }
    }

    /// Lineage of a model as of a commit.
    public func lineage(model: String, commit: String) async throws -> ModelLineage {
        try await memo("at:\(model)@\(commit)") { try await service.lineageOffloaded(model: model, at: commit) }
    }

    /// Runs a read of the lineage service (Git, YAML) on the thread pool.
    func read<T: Sendable>(_ body: @escaping @Sendable (LineageService) throws -> T) async throws -> T {
        let service = self.service
        return try await offload { try body(service) }
    }

    /// A recorded inference, if this caller may read it (an `infer` key reads its own only;
    /// another's is as absent as an unknown id).
    func record(_ id: String) async throws -> InferenceRecord? {
        try await services.recorder.record(id: id, readableBy: caller.principal)
    }

    /// A page of recorded inferences; a `revision` filter may be any spec (it is made canonical).
    func inferences(filter: Map, first: Int, after: String?) async throws -> InferencePage {
        let page = try await services.recorder.inferences(try await inferenceFilter(filter), first: first, after: after, readableBy: caller.principal)
        return InferencePage(records: page.records, hasMore: page.hasMore)
    }

    /// A GraphQL `InferenceFilter` as the ledger's (the recorder narrows it to what the caller may
    /// read).
    func inferenceFilter(_ filter: Map) async throws -> InferenceFilter {
        func date(_ key: String) throws -> Date? {
            guard let text = filter[key].string else { return nil }
            guard let parsed = ISO8601DateFormatter().date(from: text) else {
                throw ServingError(.badUserInput, "\(key) must be an ISO-8601 date and time with offset")
            }
            return parsed
        }
        var revision: String?
        if let spec = filter["revision"].string { revision = try await lineage(spec).id }
        let asked = InferenceFilter(
            model: filter["model"].string, revision: revision, since: try date("since"), until: try date("until"), caller: filter["caller"].string)
        return asked
    }

    private func memo(_ key: String, _ compute: () async throws -> ModelLineage) async throws -> ModelLineage {
        if let cached = lineages.withLock({ $0[key] }) { return try cached.get() }
        let result: Result<ModelLineage, any Error>
        do { result = .success(try await compute()) } catch { result = .failure(error) }
        lineages.withLock { $0[key] = result }
        return try result.get()
    }
}
