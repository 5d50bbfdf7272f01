public import ArtifactStore
import Crypto
public import DVCKit
public import Foundation
public import Inference
public import Logging
public import ServiceLifecycle
import UnixSignals

/// What `pedigree worker` runs: the inference engine and a verified artifact cache, no Git
/// mirror, no ledger. It is told which weights to serve by artifact md5 and object location,
/// fetches them itself from the DVC remote its own configuration names (its own credentials),
/// and reports what it holds.
public struct WorkerServices: Sendable {
    public let configuration: ServingConfiguration
    public let store: ArtifactStore
    public let models: ModelManager
    public let state: ServingState
    /// The worker's DVC remotes: the operator's file, so every option is trusted as
    /// `.dvc/config.local` would be.
    public let dvcConfig: DVCConfig
    /// SHA-256 of the shared token every request must carry; nil: none required (loopback only).
    let tokenDigest: [UInt8]?
    public let logger: Logger

    public static func open(_ configuration: ServingConfiguration, token: String?, dvcConfig: DVCConfig, logger: Logger) throws -> WorkerServices {
        PrivateFiles.narrow([configuration.cache.path, configuration.cache.appendingPathComponent("objects").path], logger: logger)
        let cache = try ObjectCache(
            root: configuration.cache, budget: configuration.cacheBudget, maxConcurrentDownloads: max(1, configuration.jobs),
            verify: configuration.verifyCache, logger: logger)
        let store = ArtifactStore(
            cache: cache, dvcFolder: nil, remoteOverride: configuration.remote, trustedEndpoints: configuration.remoteEndpoints, logger: logger)
        return WorkerServices(
            configuration: configuration, store: store, models: ModelManager(configuration: configuration.models, logger: logger),
            state: ServingState(), dvcConfig: dvcConfig, tokenDigest: token.map { Array(SHA256.hash(data: Data($0.utf8))) }, logger: logger)
    }

    /// Whether requests must carry the shared token.
    public var requiresToken: Bool { tokenDigest != nil }

    /// Whether an `Authorization` header carries the shared token (compared as digests, in
    /// constant time).
    public func admits(authorization: String?) -> Bool {
        guard let tokenDigest else { return true }
        guard let authorization, authorization.lowercased().hasPrefix("bearer ") else { return false }
        let presented = Array(SHA256.hash(data: Data(authorization.dropFirst(7).trimmingCharacters(in: .whitespaces).utf8)))
        return zip(presented, tokenDigest).reduce(UInt8(0)) { $0 | ($1.0 ^ $1.1) } == 0
    }

    /// A checked generation request, not started yet.
    public struct Prepared: Sendable {
        let request: GenerationRequest
        let source: ModelSource
        let deadline: Duration?
    }

    /// Checks a request before anything runs: the worker takes work, one input, a valid object
    /// id, sampling and sizes within this worker's limits.
    public func prepare(_ wire: WorkerWire.GenerateRequest) throws -> Prepared {
        try state.admit()
        guard let asked = wire.generationRequest else {
            throw ServingError(.badUserInput, "a generation takes a prompt or messages, exactly one")
        }
        let request = try models.validated(asked)
        return Prepared(request: request, source: try source(wire.artifact), deadline: wire.deadlineMs.map { .milliseconds(max(1, $0)) })
    }

    /// The weights of `artifact`, fetched from this worker's remotes when first loaded.
    func source(_ artifact: WorkerWire.Artifact) throws -> ModelSource {
        let location: ArtifactLocation
        do { location = try artifact.location() } catch { throw ServingError(.badUserInput, "artifact: \(error)") }
        let store = self.store
        let config = self.dvcConfig
        let md5 = artifact.md5
        return ModelSource(md5: md5, revision: "md5:\(md5)") {
            let path = try await store.fetch(location, config: { config }, progress: TransferProgress(label: "md5:\(md5)"))
            await store.cache.pin([location.object])
            return Weights(path: path) { await store.cache.unpin([location.object]) }
        }
    }

    /// Loads the weights of `artifact` now (fetching them when needed), with the heartbeats of a
    /// generation; yields the model as loaded.
    public func load(_ artifact: WorkerWire.Artifact, heartbeat: Duration = .seconds(1)) throws
        -> AsyncThrowingStream<WorkerWire.Status.Model?, any Error>
    {
        try state.admit()
        let source = try source(artifact)
        let models = self.models
        return Self.withHeartbeat(every: heartbeat) { continuation in
            continuation.yield(WorkerWire.Status.Model(try await models.load(source)))
        }
    }

    /// Unloads the weights with `md5` if idle; whether they were loaded.
    public func unload(md5: String) async throws -> Bool {
        try await models.unload(md5: md5)
    }

    /// Runs a prepared generation — fetching and loading the weights first when needed — and
    /// yields its events, with `nil` every `heartbeat` from the start (also while the weights
    /// load), so that a gateway tells a live worker from a hung one or a cut link by silence.
    /// Ends the generation past its deadline; ending the stream cancels it.
    public func events(_ prepared: Prepared, heartbeat: Duration = .seconds(1)) -> AsyncThrowingStream<GenerationEvent?, any Error> {
        let models = self.models
        return Self.withHeartbeat(every: heartbeat) { continuation in
            var generation = try await models.generate(prepared.request, on: prepared.source)
            if let deadline = prepared.deadline { generation = Self.bounded(generation, by: deadline) }
            for try await event in generation { continuation.yield(event) }
        }
    }

    /// What `work` yields, with `nil` every `interval` from the start until it ends; ending the
    /// stream cancels the work.
    static func withHeartbeat<Element: Sendable>(
        every interval: Duration, _ work: @escaping @Sendable (AsyncThrowingStream<Element?, any Error>.Continuation) async throws -> Void
    ) -> AsyncThrowingStream<Element?, any Error> {
        let (stream, continuation) = AsyncThrowingStream<Element?, any Error>.makeStream()
        let producer = Task {
            do {
                try await work(continuation)
                continuation.finish()
            } catch {
                continuation.finish(throwing: error)
            }
        }
        let ticker = Task {
            while !Task.isCancelled {
                try? await Task.sleep(for: interval)
                if Task.isCancelled { return }
                continuation.yield(nil)
            }
        }
        continuation.onTermination = { _ in
            producer.cancel()
            ticker.cancel()
        }
        return stream
    }

    /// `stream`, ended with `DEADLINE_EXCEEDED` when `limit` passes first (the generation is
    /// cancelled with it).
    static func bounded(
        _ stream: AsyncThrowingStream<GenerationEvent, any Error>, by limit: Duration
    ) -> AsyncThrowingStream<GenerationEvent, any Error> {
        AsyncThrowingStream { continuation in
            let task = Task {
                do {
                    try await withThrowingTaskGroup(of: Void.self) { group in
                        group.addTask {
                            for try await event in stream { continuation.yield(event) }
                        }
                        group.addTask {
                            try await Task.sleep(for: limit)
                            throw ServingError(.deadlineExceeded, "the gateway's deadline passed")
                        }
                        try await group.next()
                        group.cancelAll()
                    }
                    continuation.finish()
                } catch {
                    continuation.finish(throwing: error)
                }
            }
            continuation.onTermination = { _ in task.cancel() }
        }
    }

    /// What the worker holds now.
    public func status() async -> WorkerWire.Status {
        let loaded = await models.loaded
        let used = loaded.reduce(Int64(0)) { $0 + $1.memoryBytes }
        return WorkerWire.Status(
            engine: models.engineFacts,
            models: loaded.map(WorkerWire.Status.Model.init),
            memoryFree: configuration.models.memoryBudget.map { max(0, Int64(clamping: $0) - used) }, maxModels: configuration.models.maxModels,
            draining: state.phase != .serving)
    }

    /// The worker's services: the idle-model sweeper, `http`, then the drain (first to run on
    /// shutdown, while HTTP still answers).
    public func serviceGroup(http: any Service, logger: Logger) -> ServiceGroup {
        let services: [any Service] = [ModelSweeper(models: models), http, WorkerDrain(services: self, deadline: configuration.drainTimeout)]
        var group = ServiceGroupConfiguration(services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        group.maximumGracefulShutdownDuration = configuration.drainTimeout + .seconds(15)
        return ServiceGroup(configuration: group)
    }
}

/// On shutdown: new generations are refused (`/readyz` says so, and the gateway moves on),
/// running ones finish until the deadline, then are cancelled.
struct WorkerDrain: Service {
    let services: WorkerServices
    let deadline: Duration

    func run() async throws {
        do { try await gracefulShutdown() } catch { return }
        let state = services.state
        state.enter(.draining)
        services.logger.info("shutting down: draining", metadata: ["streams": "\(state.openStreams)"])
        let start = ContinuousClock.now
        while state.openStreams > 0, ContinuousClock.now - start < deadline {
            try? await Task.sleep(for: .milliseconds(10))
        }
        if state.openStreams > 0 { await services.models.stopGenerating() }
        state.enter(.stopped)
        services.logger.info("drained")
    }
}
