public import Inference
public import Lineage

/// Where generations run: in this process, on inference workers, or on external backends.
public protocol GenerationBackend: Sendable {
    /// Starts a generation of `request` on the weights of `revision`; with `engine`, only on an
    /// engine that reproduces those facts where there is a choice (workers).
    func generate(
        _ request: GenerationRequest, on revision: ModelLineage, engine: EngineFacts?
    ) async throws -> AsyncThrowingStream<GenerationEvent, any Error>
    /// The engine facts recorded with a generation of `revision` that never reached an engine.
    func engineFacts(for revision: ModelLineage) -> EngineFacts
    /// Loads `revision`'s weights where its generations would run (`loadModel`, the preload list).
    func load(_ revision: ModelLineage) async throws -> ModelManager.Status
    /// Unloads `revision`'s weights wherever they are held, if idle; whether any were.
    func unload(_ revision: ModelLineage) async throws -> Bool
    /// Ends every running generation now with finish reason `cancelled` (a drain past its deadline).
    func stopGenerating() async
    /// The weights loaded where generations run: this process's, or what the workers last reported.
    func loadedModels() async -> [ModelManager.Status]
    /// Embeddings of `texts` by `revision`'s weights.
    func embed(_ texts: [String], on revision: ModelLineage) async throws -> [Embedding]
    /// Refuses, before anything is fetched, weights this backend cannot run from where they are kept.
    func accept(_ revision: ModelLineage) throws
}

extension GenerationBackend {
    public func accept(_ revision: ModelLineage) throws {}

    public func embed(_ texts: [String], on revision: ModelLineage) async throws -> [Embedding] {
        throw ServingError(.badUserInput, "embeddings are served by a server's own engine, not through inference workers")
    }
}

/// In this process: the model manager, with weights from the artifact store.
struct LocalBackend: GenerationBackend {
    let models: ModelManager
    let artifacts: RevisionArtifacts

    /// One engine: it runs whatever the facts (a replay then reports `sameEngine: false`).
    func generate(
        _ request: GenerationRequest, on revision: ModelLineage, engine: EngineFacts?
    ) async throws -> AsyncThrowingStream<GenerationEvent, any Error> {
        // Bad input is refused before the weights are fetched or checked.
        _ = try models.validated(request)
        return try await models.generate(request, on: await artifacts.modelSource(revision))
    }

    func engineFacts(for revision: ModelLineage) -> EngineFacts { models.engineFacts }

    func loadedModels() async -> [ModelManager.Status] { await models.loaded }

    func load(_ revision: ModelLineage) async throws -> ModelManager.Status {
        try await models.load(await artifacts.modelSource(revision))
    }

    func unload(_ revision: ModelLineage) async throws -> Bool {
        try await models.unload(md5: revision.artifact.weightsKey)
    }

    func stopGenerating() async { await models.stopGenerating() }

    func embed(_ texts: [String], on revision: ModelLineage) async throws -> [Embedding] {
        try await models.embed(texts, on: await artifacts.modelSource(revision))
    }
}
