public import Foundation
public import Logging
import Metrics
import Synchronization
import Tracing

/// A model's weights on local disk, held until `release` is called (the cache may not evict
/// them meanwhile).
public struct Weights: Sendable {
    public let path: String
    public let release: @Sendable () async -> Void

    public init(path: String, release: @escaping @Sendable () async -> Void) {
        self.path = path
        self.release = release
    }
}

/// What the manager needs to serve a model: the md5 of its weights (the key: revisions with the
/// same weights share one instance), the revision asking (for reports), and how to get the file
/// (called at most once per load, off the request path of loaded models).
public struct ModelSource: Sendable {
    public let md5: String
    public let revision: String
    /// The revision's weights as checked (SHA-256, signature): stamped on its generations'
    /// summaries. Per revision, not per loaded instance: revisions sharing weights may differ in
    /// their signatures.
    public let provenance: WeightsProvenance?
    public let weights: @Sendable () async throws -> Weights

    public init(
        md5: String, revision: String, provenance: WeightsProvenance? = nil, weights: @escaping @Sendable () async throws -> Weights
    ) {
        self.md5 = md5
        self.revision = revision
        self.provenance = provenance
        self.weights = weights
    }
}

/// Loaded models, keyed by artifact md5 (two revisions with the same weights share one instance).
///
/// Loading is asynchronous and single-flight: requests for a model that is loading wait for it
/// without holding the actor, so requests for loaded models go on. Limits by count and by memory
/// evict the least recently used idle model (no running or queued request); when none is idle the
/// answer is `overloaded`. An idle model is also unloaded after `keepAlive`. A loaded model holds
/// its `Weights` until it is unloaded, so the cache never evicts them.
public actor ModelManager {
    public struct Configuration: Sendable {
        /// Models loaded at once.
        public var maxModels: Int = 2
        /// Bytes of host memory the loaded models may hold together (weights, KV caches, compute
        /// buffers, prefix caches); nil: `defaultHostBudget` (a share of the machine's memory).
        public var memoryBudget: UInt64?
        /// Bytes of each GPU's memory the loaded models may hold; nil: 90% of what the driver
        /// reports.
        public var gpuMemoryBudget: UInt64?
        /// Requests decoded together per model (continuous batching), and how many may wait.
        public var slots: Int = 4
        public var queueLimit: Int = 16
        /// Tokens of context per slot (prompt plus generated).
        public var contextPerSlot: Int = 2048
        /// The largest `maxTokens` and prompt (in bytes) a request may ask for.
        public var maxTokensLimit: Int = 1024
        public var maxPromptBytes: Int = 32 * 1024
        /// Idle time after which a model is unloaded; nil keeps it.
        public var keepAlive: Duration? = .seconds(600)
        /// The longest one generation runs (from its submission); then it ends with what it has,
        /// finish reason `cancelled`.
        public var generationTimeout: Duration = .seconds(600)
        public var threads: Int = ProcessInfo.processInfo.activeProcessorCount
        /// How prompts and generating tokens share `llama_decode` calls.
        public var decodeMode: DecodeMode = .invariant
        /// Prompt chunk size in the invariant mode (1 to 512).
        public var prefillChunk: Int = 64
        /// Off by default: on this llama.cpp's CPU backend, flash attention is faster for short
        /// contexts but much slower for a prompt chunk of fewer than 64 tokens or a decode step
        /// deep in the context (measured: docs/inference-and-replay.md), which the prefix cache relies on.
        public var flashAttention = false
        /// Bytes of saved prompt prefixes per loaded model (invariant mode); 0: off.
        public var prefixCacheBytes: Int = 256 << 20
        /// Layers offloaded to the GPUs (none without one).
        public var gpuLayers: GPULayers = .auto
        /// The GPUs to use by ggml name (`CUDA0`); empty: every GPU llama.cpp sees.
        public var gpuDevices: [String] = []
        /// The KV cache and attention on the GPUs with their layers (off: in host memory).
        public var offloadKV = true

        public init() {}

        /// The GPUs models may use: those listed that exist (by ggml's name, in any case), or
        /// every one.
        var usableGPUs: [String] {
            let available = Placement.availableGPUs().map(\.name)
            guard !gpuDevices.isEmpty else { return available }
            return available.filter { name in gpuDevices.contains { $0.caseInsensitiveCompare(name) == .orderedSame } }
        }

        /// Listed GPUs that llama.cpp does not see (a warning at start: their layers stay on the CPU).
        public var unknownGPUs: [String] {
            let available = Placement.availableGPUs().map(\.name)
            return gpuDevices.filter { name in !available.contains { $0.caseInsensitiveCompare(name) == .orderedSame } }
        }

        func engineConfiguration(trainedContext: Int) -> BatchEngine.Configuration {
            BatchEngine.Configuration(
                slots: slots, contextPerSlot: min(contextPerSlot, max(256, trainedContext)), queueLimit: queueLimit, threads: threads,
                generationTimeout: generationTimeout, mode: decodeMode, prefillChunk: prefillChunk, flashAttention: flashAttention,
                prefixCacheBytes: prefixCacheBytes, gpuDevices: usableGPUs, offloadKV: offloadKV)
        }
    }

    /// A loaded model as `loadedModels` reports it.
    public struct Status: Sendable {
        public let md5: String
        public let revisions: [String]
        /// Everything the model holds, all devices together (`memory.total`).
        public let memoryBytes: Int64
        /// By device, as llama.cpp allocated it (and the saved prefixes).
        public let memory: ModelMemory
        public let slots: Int
        public let activeSlots: Int
        public let queueDepth: Int
        public let lastUsed: Date
        /// The inference worker holding it (a gateway's view); nil in this process.
        public var worker: String?

        public init(
            md5: String, revisions: [String], memory: ModelMemory, slots: Int, activeSlots: Int, queueDepth: Int, lastUsed: Date,
            worker: String? = nil
        ) {
            self.md5 = md5
            self.revisions = revisions
            self.memory = memory
            self.memoryBytes = memory.total
            self.slots = slots
            self.activeSlots = activeSlots
            self.queueDepth = queueDepth
            self.lastUsed = lastUsed
            self.worker = worker
        }
    }

    private final class Instance: Sendable {
        let engine: BatchEngine
        let weights: Weights
        init(engine: BatchEngine, weights: Weights) {
            self.engine = engine
            self.weights = weights
        }
    }

    private struct Entry {
        var instance: Instance?
        var loading: Task<Instance, any Error>?
        /// What the load will hold once admitted (the dry run's figures and the prefix cache's
        /// budget); nil while the weights are still being fetched.
        var reserved: ModelMemory?
        var revisions: Set<String>
        var lastUsed: ContinuousClock.Instant
        var lastUsedDate: Date
    }

    public nonisolated let configuration: Configuration
    private let logger: Logger
    private var entries: [String: Entry] = [:]
    /// Set by `stopGenerating`: no new generation starts.
    private var stopped = false

    public init(configuration: Configuration = Configuration(), logger: Logger = Logger(label: "pedigree.models")) {
        self.configuration = configuration
        self.logger = logger
        if configuration.decodeMode == .invariant { LlamaBackend.disableTiledMatmul() }
        let unknown = configuration.unknownGPUs
        if !unknown.isEmpty {
            let seen = Placement.availableGPUs().map(\.name)
            logger.warning(
                "gpu-devices names GPUs llama.cpp does not see: their layers stay on the CPU",
                metadata: ["unknown": "\(unknown.joined(separator: ", "))", "seen": "\(seen.isEmpty ? "none" : seen.joined(separator: ", "))"])
        }
    }

    /// The engine facts as configured, recorded with inferences that never reached an engine
    /// (an engine's own, as llama.cpp set it up, come with each summary).
    public nonisolated var engineFacts: EngineFacts { configuration.engineConfiguration(trainedContext: 0).facts() }

    // MARK: Generation

    /// Starts a generation on the model of `source`, loading it first when needed.
    public func generate(_ request: GenerationRequest, on source: ModelSource) async throws -> AsyncThrowingStream<GenerationEvent, any Error> {
        var request = try validated(request)
        request.weights = source.provenance
        let instance = try await instance(for: source)
        // A load that was under way when the server stopped must not start a generation after it.
        guard !stopped else { throw InferenceError.overloaded("the server is shutting down") }
        return try instance.engine.submit(request)
    }

    /// Embeddings of `texts` by the model of `source` (loaded first when needed), on a context
    /// of their own beside the generation slots, off the caller's thread.
    public func embed(_ texts: [String], on source: ModelSource) async throws -> [Embedding] {
        guard !texts.isEmpty, texts.count <= 256 else { throw InferenceError.badInput("input holds 1 to 256 texts") }
        guard texts.reduce(0, { $0 + $1.utf8.count }) <= configuration.maxPromptBytes else {
            throw InferenceError.badInput("input holds at most \(configuration.maxPromptBytes) bytes")
        }
        let instance = try await instance(for: source)
        guard !stopped else { throw InferenceError.overloaded("the server is shutting down") }
        let model = instance.engine.model
        let threads = configuration.threads
        return try await withCheckedThrowingContinuation { continuation in
            // Blocking llama.cpp calls: a thread of the global pool, not a task's.
            DispatchQueue.global().async {
                continuation.resume(with: Result { try Embedder.embed(texts, model: model, threads: threads) })
            }
        }
    }

    /// The request with its sampling checked against this server's limits, or `badInput`
    /// (also what a gateway checks before it sends a request to a worker).
    public nonisolated func validated(_ request: GenerationRequest) throws -> GenerationRequest {
        let sampling = try request.sampling.validated(maxTokensLimit: configuration.maxTokensLimit)
        switch request.input {
        case .prompt(let text):
            guard !text.isEmpty, text.utf8.count <= configuration.maxPromptBytes else {
                throw InferenceError.badInput("the prompt must be 1 to \(configuration.maxPromptBytes) bytes")
            }
            guard sampling.tools == nil else { throw InferenceError.badInput("tools are offered in a chat (messages), not with a prompt") }
        case .messages(let messages):
            let bytes = messages.reduce(0) { total, message in
                total + message.content.utf8.count + (message.toolCalls ?? []).reduce(0) { $0 + $1.name.utf8.count + $1.arguments.utf8.count }
            }
            guard !messages.isEmpty, bytes <= configuration.maxPromptBytes else {
                throw InferenceError.badInput("messages must hold 1 to \(configuration.maxPromptBytes) bytes")
            }
            try ChatMessage.checkToolHistory(messages)
        }
        return GenerationRequest(input: request.input, sampling: sampling)
    }

    // MARK: Loading

    /// Loads a model now (the `loadModel` mutation, the preload list).
    @discardableResult
    public func load(_ source: ModelSource) async throws -> Status {
        let instance = try await instance(for: source)
        return status(of: source.md5, instance: instance)
    }

    /// Unloads the model with weights `md5` if it is idle; returns whether it was loaded.
    public func unload(md5: String) async throws -> Bool {
        guard let entry = entries[md5], let instance = entry.instance else { return false }
        let load = instance.engine.load
        guard load.active + load.queued == 0 else { throw InferenceError.overloaded("the model is serving requests; unload it when idle") }
        await drop(md5)
        return true
    }

    /// Every loaded model.
    public var loaded: [Status] { entries.keys.sorted().compactMap { status(of: $0) } }

    private func status(of md5: String) -> Status? {
        guard let instance = entries[md5]?.instance else { return nil }
        return status(of: md5, instance: instance)
    }

    private func status(of md5: String, instance: Instance) -> Status {
        let load = instance.engine.load
        let entry = entries[md5]
        return Status(
            md5: md5, revisions: (entry?.revisions ?? []).sorted(), memory: instance.engine.memory,
            slots: instance.engine.configuration.slots, activeSlots: load.active, queueDepth: load.queued, lastUsed: entry?.lastUsedDate ?? Date())
    }

    /// The loaded instance of `source`, loading it when absent: fetch the weights, plan the load
    /// (a dry run that allocates nothing), admit it against the budgets (evicting idle models
    /// when needed), then load. The entry exists from the start, so concurrent requests wait for
    /// the same load, and its reservation counts against the budgets from its admission on.
    private func instance(for source: ModelSource) async throws -> Instance {
        let md5 = source.md5
        if let existing = try await existing(md5, revision: source.revision) { return existing }
        let configuration = self.configuration
        let loading = Task { () async throws -> Instance in
            let weights = try await source.weights()
            do {
                let started = ContinuousClock.now
                let engine = try await withSpan("load") { span in
                    span.attributes["pedigree.artifact.md5"] = md5
                    let budgets = self.gpuBudgets()
                    let planned = try await Self.offThread {
                        try Self.oneAtATime { try Self.plan(path: weights.path, configuration: configuration, gpuBudgets: budgets) }
                    }
                    try await self.admit(md5, reserving: planned.memory)
                    return try await Self.offThread {
                        try Self.oneAtATime {
                            let model = try LlamaModel(path: weights.path, placement: planned.placement)
                            return try BatchEngine(
                                model: model, configuration: configuration.engineConfiguration(trainedContext: model.trainedContext),
                                metadata: planned.memory.devices.reduce(0) { $0 + $1.metadata })
                        }
                    }
                }
                Timer(label: "pedigree.model.load.duration").record(duration: ContinuousClock.now - started)
                Counter(label: "pedigree_model_loads_total").increment()
                return Instance(engine: engine, weights: weights)
            } catch {
                await weights.release()
                throw error
            }
        }
        entries[md5] = Entry(instance: nil, loading: loading, revisions: [source.revision], lastUsed: .now, lastUsedDate: Date())
        do {
            let instance = try await loading.value
            entries[md5]?.instance = instance
            entries[md5]?.loading = nil
            logger.info(
                "model loaded",
                metadata: [
                    "md5": "\(md5)", "revision": "\(source.revision)", "bytes": "\(instance.engine.memory.total)",
                    "memory": "\(instance.engine.memory)",
                ])
            return instance
        } catch {
            entries[md5] = nil
            Counter(label: "pedigree_model_load_failures_total").increment()
            throw error
        }
    }

    /// Where loading the weights at `path` puts them and what it will hold: the CPU layout whose
    /// kernels are measured batch-invariant for the model's weight types (invariant mode), the
    /// layers offloaded (`auto`: the most whose GPU memory fits each GPU's budget, found by dry
    /// runs), and llama.cpp's dry run of that load with the prefix cache at its budget.
    private static func plan(path: String, configuration: Configuration, gpuBudgets: [String: Int64]) throws -> (
        memory: ModelMemory, placement: Placement
    ) {
        let header: GGUFHeader
        do {
            header = try GGUFHeader(path: path)
        } catch {
            throw InferenceError.loadFailed("invalid GGUF: \(error.description)")
        }
        var placement = Placement()
        placement.devices = configuration.usableGPUs
        placement.offloadKV = configuration.offloadKV
        if configuration.decodeMode == .invariant {
            let layout = KernelInvariance.cpuLayout(types: header.matrixTypes, threads: configuration.threads)
            placement.repack = layout.repack
            placement.batchInvariant = layout.invariant
        }
        func dryRun(layers: Int) throws -> (memory: ModelMemory, layers: Int) {
            var trial = placement
            trial.gpuLayers = placement.devices.isEmpty ? 0 : layers
            // A dry run allocates no buffer: what the host kept is the model's own.
            let meter = ModelMemory.HostMeter()
            let model = try LlamaModel(path: path, placement: trial, dryRun: true)
            let metadata = meter.kept
            let engine = configuration.engineConfiguration(trainedContext: model.trainedContext)
            let memory = try BatchEngine.projectedMemory(of: model, configuration: engine).addingPrefixCache(Int64(engine.prefixCacheBudget))
            return (memory.addingMetadata(metadata), model.layers)
        }
        func fits(_ memory: ModelMemory) -> Bool {
            memory.devices.allSatisfy { device in !device.isGPU || device.total <= gpuBudgets[device.name, default: .max] }
        }
        let requested: Int
        switch configuration.gpuLayers {
        case .count(let count): requested = count
        case .all, .auto: requested = Int(Int32.max)
        }
        let first = try dryRun(layers: requested)
        var memory = first.memory
        var layers = placement.devices.isEmpty ? 0 : min(requested, first.layers + 1)
        if configuration.gpuLayers == .auto, layers > 0, !fits(memory) {
            // The most layers that fit (fewer never need more GPU memory); none at worst.
            var low = 0
            var high = layers - 1
            while low < high {
                let middle = (low + high + 1) / 2
                if fits(try dryRun(layers: middle).memory) { low = middle } else { high = middle - 1 }
            }
            layers = low
            memory = try dryRun(layers: low).memory
        }
        placement.gpuLayers = layers
        // Not measured on a GPU: an answer with offloaded layers is not promised to be invariant.
        if layers > 0 { placement.batchInvariant = false }
        return (memory, placement)
    }

    /// Each usable GPU's budget.
    private func gpuBudgets() -> [String: Int64] {
        Dictionary(uniqueKeysWithValues: configuration.usableGPUs.map { name in (name, gpuBudget(name)) })
    }

    private func gpuBudget(_ name: String) -> Int64 {
        configuration.gpuMemoryBudget.map { Int64(clamping: $0) } ?? (LlamaBackend.deviceMemory(name).map { $0.total / 10 * 9 } ?? .max)
    }

    /// The loaded (or loading) instance of `md5`, marked as used by `revision`; nil when absent.
    private func existing(_ md5: String, revision: String) async throws -> Instance? {
        guard var entry = entries[md5] else { return nil }
        entry.revisions.insert(revision)
        entry.lastUsed = .now
        entry.lastUsedDate = Date()
        entries[md5] = entry
        if let instance = entry.instance { return instance }
        return try await entry.loading?.value
    }

    /// llama.cpp loads synchronously; do it on a thread of its own, not on the cooperative pool.
    /// Held by every dry run and every load while llama.cpp allocates: a dry run measures the host
    /// memory the process kept (`ModelMemory.HostMeter`), which another model's vocabulary or
    /// KV cache allocated meanwhile would swell (two racing loads each counted the other's: 42 MiB
    /// for a 28 MiB model). One load at a time, as Ollama's scheduler does; generation never waits.
    private static let loading = Mutex(())

    private static func oneAtATime<T>(_ work: () throws -> T) throws -> T {
        try loading.withLock { _ in try work() }
    }

    private static func offThread<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            let thread = Thread { continuation.resume(with: Result { try work() }) }
            thread.start()
        }
    }

    /// What one model reserves on each device: a loaded one what llama.cpp allocated and its
    /// prefix cache's budget; one being loaded what its plan said (nothing while its weights are
    /// still being fetched).
    private func reservation(_ entry: Entry) -> ModelMemory? {
        guard let instance = entry.instance else { return entry.reserved }
        return instance.engine.allocated.addingPrefixCache(Int64(instance.engine.configuration.prefixCacheBudget))
    }

    /// The budget of each device the plan uses.
    private func budgets(for plan: ModelMemory) -> [(device: ModelMemory.Device, budget: Int64)] {
        plan.devices.map { device in
            if device.name == ModelMemory.host {
                return (device, Int64(clamping: configuration.memoryBudget ?? Self.defaultHostBudget))
            }
            return (device, gpuBudget(device.name))
        }
    }

    /// Admits the load of `md5` holding `plan`: evicts idle models, least recently used first,
    /// until the count limit and every device's budget have room, counting the models loaded and
    /// those being loaded. A plan larger than a whole budget fails at once (`loadFailed`); when
    /// only busy models are left to evict it fails at once too (`overloaded`), naming the bytes.
    private func admit(_ md5: String, reserving plan: ModelMemory) async throws {
        let budgets = budgets(for: plan)
        for (device, budget) in budgets where device.total > budget {
            throw InferenceError.loadFailed(
                "the model needs \(Self.describe(device)) of \(device.name) memory; the \(device.name) memory budget is \(ModelMemory.describe(budget))"
            )
        }
        func used(on device: String) -> Int64 {
            entries.filter { $0.key != md5 }.values.compactMap(reservation).reduce(0) { $0 + $1.bytes(on: device) }
        }
        func short() -> (device: ModelMemory.Device, budget: Int64)? {
            budgets.first { used(on: $0.device.name) + $0.device.total > $0.budget }
        }
        while entries.count - 1 >= configuration.maxModels || short() != nil {
            let idle = entries.filter { _, entry in
                guard let instance = entry.instance else { return false }
                let load = instance.engine.load
                return load.active + load.queued == 0
            }
            guard let victim = idle.min(by: { $0.value.lastUsed < $1.value.lastUsed })?.key else {
                if let (device, budget) = short() {
                    let free = max(0, budget - used(on: device.name))
                    throw InferenceError.overloaded(
                        "the model needs \(ModelMemory.describe(device.total)) of \(device.name) memory and \(ModelMemory.describe(free)) of the \(ModelMemory.describe(budget)) budget is free; the other models are busy or loading: retry later"
                    )
                }
                throw InferenceError.overloaded("\(entries.count - 1) models are loaded and busy: retry later")
            }
            Counter(label: "pedigree_model_evictions_total", dimensions: [("reason", "room")]).increment()
            await drop(victim)
        }
        // Unloading suspended this call; the entry may have gone (a failed or cancelled load).
        guard entries[md5] != nil else { throw CancellationError() }
        entries[md5]?.reserved = plan
    }

    /// `1.2 GiB (weights 96.6 MiB, context 188.0 MiB, compute 20.1 MiB, prefix cache 256.0 MiB)`.
    private static func describe(_ device: ModelMemory.Device) -> String {
        "\(ModelMemory.describe(device.total)) (weights \(ModelMemory.describe(device.weights)), context \(ModelMemory.describe(device.context)), compute \(ModelMemory.describe(device.compute)), prefix cache \(ModelMemory.describe(device.prefixCache)), metadata \(ModelMemory.describe(device.metadata)))"
    }

    /// Three quarters of the host's memory: the cgroup's limit where there is one, else the
    /// machine's.
    public static let defaultHostBudget: UInt64 = HostMemory.total / 4 * 3

    private func drop(_ md5: String) async {
        guard let instance = entries.removeValue(forKey: md5)?.instance else { return }
        instance.engine.shutdown()
        await instance.weights.release()
        logger.info("model unloaded", metadata: ["md5": "\(md5)"])
    }

    /// Unloads models idle for longer than `keepAlive`; runs until cancelled.
    public func sweepIdleModels() async {
        guard let keepAlive = configuration.keepAlive else { return }
        while !Task.isCancelled {
            try? await Task.sleep(for: .seconds(1))
            let now = ContinuousClock.now
            for (md5, entry) in entries where now - entry.lastUsed > keepAlive {
                guard let load = entry.instance?.engine.load else { continue }
                if load.active + load.queued == 0 {
                    Counter(label: "pedigree_model_evictions_total", dimensions: [("reason", "idle")]).increment()
                    await drop(md5)
                }
            }
        }
    }

    /// Ends every running and waiting generation of every model now, each with finish reason
    /// `cancelled`, and refuses new ones (the end of a drain on shutdown).
    public func stopGenerating() {
        stopped = true
        for instance in entries.values.compactMap(\.instance) { instance.engine.cancelAll() }
    }

    /// Unloads every model (on shutdown).
    public func unloadAll() async {
        for md5 in entries.keys.sorted() { await drop(md5) }
    }
}
