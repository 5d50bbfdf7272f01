import CLlama
import Foundation
import Synchronization

/// Continuous batching over one model: a fixed number of slots (llama.cpp sequences) share one
/// `llama_context`, and a decode loop on its own thread puts the next token of every running
/// request into one `llama_decode` call. Prompts are prefilled as the mode says: in fixed-size
/// chunks at fixed positions, each in a call of its own (`invariant`: an answer's tokens do not
/// depend on what ran beside it), or in the same call as the generating tokens, as llama-server
/// does (`mixed`). Requests beyond the slots wait in a bounded queue; beyond that, `submit`
/// refuses at once with `overloaded`.
///
/// Thread model: the context, samplers, slot state and prefix cache belong to the loop thread
/// only. Callers touch the shared `Inbox` under its lock and are woken through
/// `AsyncThrowingStream`s.
final class BatchEngine: Sendable {
    struct Configuration: Sendable {
        var slots: Int
        var contextPerSlot: Int
        var queueLimit: Int
        var threads: Int
        var generationTimeout: Duration = .seconds(600)
        var mode: DecodeMode = .invariant
        /// Prompt chunk size (invariant mode); at most `ubatch`.
        var prefillChunk: Int = 64
        var flashAttention = false
        /// Bytes of saved prompt prefixes (invariant mode); 0 turns the prefix cache off.
        var prefixCacheBytes: Int = 0
        /// The GPUs offloaded layers may go to (ggml names); empty: none.
        var gpuDevices: [String] = []
        /// The KV cache and attention on the GPUs with their layers.
        var offloadKV = true

        /// What the prefix cache may grow to: its bytes in the invariant mode, none in the mixed.
        var prefixCacheBudget: Int { mode == .invariant ? prefixCacheBytes : 0 }

        static let ubatch = 512
        /// Asked of llama.cpp, which caps it at the context size.
        static let batch = 2048

        /// The batch and ubatch asked of llama.cpp. The invariant mode never decodes more than a
        /// prompt chunk, or one token of every slot, in one call: a ubatch of that size holds
        /// every call, and its compute buffers are what such calls use (a 512-token ubatch's would
        /// be allocated for nothing: about 90 MB for a 135M model with 4 slots of 2048 tokens).
        /// The mixed mode fills batches as llama-server does.
        var requestedBatch: Int { mode == .invariant ? max(prefillChunk, slots) : Self.batch }
        var requestedUbatch: Int { mode == .invariant ? max(prefillChunk, slots) : Self.ubatch }

        /// What decides whether an engine of this configuration reproduces an answer; with a
        /// model's placement, what its load decided too.
        func facts(batch: Int? = nil, ubatch: Int? = nil, placement: Placement? = nil) -> EngineFacts {
            let batch = batch ?? requestedBatch
            let ubatch = ubatch ?? requestedUbatch
            var facts = EngineFacts(
                build: EngineFacts.libraryBuild, cpu: LlamaBackend.systemInfo.trimmingCharacters(in: .whitespaces), threads: threads,
                batch: batch, ubatch: ubatch, prefillChunk: mode == .invariant ? prefillChunk : 0, flashAttention: flashAttention,
                mode: mode, prefixCache: prefixCacheBudget > 0)
            facts.tiledMatmul = LlamaBackend.tiledMatmul
            facts.devices = gpuDevices.map(LlamaBackend.describeDevice)
            facts.offloadKV = gpuDevices.isEmpty ? nil : offloadKV
            if let placement {
                facts.gpuLayers = placement.gpuLayers
                facts.repack = placement.repack
                facts.batchInvariant = mode == .invariant && placement.batchInvariant
            }
            return facts
        }
    }

    let model: LlamaModel
    let configuration: Configuration
    /// As llama.cpp set the context up; every summary carries them.
    let facts: EngineFacts
    private let inbox: Inbox

    /// What llama.cpp allocated for this engine (weights, KV cache, compute buffers), by device,
    /// and the model's own host memory.
    let allocated: ModelMemory
    /// Bytes of prompt prefixes the loop holds now (written by the loop thread).
    private let prefixBytes = ByteGauge()

    /// `metadata`: the model's own host memory as the plan measured it (`ModelMemory.metadata`).
    init(model: LlamaModel, configuration: Configuration, metadata: Int64 = 0) throws {
        self.model = model
        self.configuration = configuration
        let parameters = Self.contextParameters(configuration)
        guard let context = llama_init_from_model(model.pointer, parameters) else {
            throw InferenceError.loadFailed("llama.cpp could not create a context of \(parameters.n_ctx) tokens")
        }
        allocated = ModelMemory.read(context: context).addingMetadata(metadata)
        let facts = configuration.facts(batch: Int(llama_n_batch(context)), ubatch: Int(llama_n_ubatch(context)), placement: model.placement)
        self.facts = facts
        let inbox = Inbox()
        self.inbox = inbox
        let prefixBytes = self.prefixBytes
        let loop = DecodeLoop(
            model: model, context: ContextHandle(context), inbox: inbox, configuration: configuration, facts: facts,
            reportPrefixBytes: { prefixBytes.bytes.store($0, ordering: .relaxed) })
        let thread = Thread { loop.run() }
        thread.name = "pedigree-decode"
        thread.start()
    }

    /// What an engine of `configuration` over the model at `path` would allocate, from a dry run
    /// that allocates nothing (the prefix cache not included: it grows as prompts are saved).
    static func projectedMemory(of model: LlamaModel, configuration: Configuration) throws -> ModelMemory {
        let parameters = Self.contextParameters(configuration)
        guard let context = llama_init_from_model(model.pointer, parameters) else {
            throw InferenceError.loadFailed("llama.cpp could not plan a context of \(parameters.n_ctx) tokens")
        }
        defer { llama_free(context) }
        return ModelMemory.read(context: context)
    }

    /// Everything the engine holds now: what llama.cpp allocated and the saved prefixes.
    var memory: ModelMemory { allocated.addingPrefixCache(Int64(prefixBytes.bytes.load(ordering: .relaxed))) }

    /// The context every engine of `configuration` gets (the real one and the dry run's).
    private static func contextParameters(_ configuration: Configuration) -> llama_context_params {
        var parameters = llama_context_default_params()
        parameters.n_seq_max = UInt32(configuration.slots)
        parameters.n_ctx = UInt32(configuration.slots * configuration.contextPerSlot)
        parameters.n_batch = UInt32(configuration.requestedBatch)
        parameters.n_ubatch = UInt32(configuration.requestedUbatch)
        parameters.n_threads = Int32(configuration.threads)
        parameters.n_threads_batch = Int32(configuration.threads)
        parameters.flash_attn_type = configuration.flashAttention ? LLAMA_FLASH_ATTN_TYPE_ENABLED : LLAMA_FLASH_ATTN_TYPE_DISABLED
        // One KV stream per sequence: attention over its own cells only, and a sequence's cells
        // laid out the same whatever else runs.
        parameters.kv_unified = false
        // A call asks for at most one token's logits per sequence (a prompt's last, a generating
        // token): compute buffers sized for that, not for logits of every token of a ubatch
        // (smollm2: 12 MB of the 13 MB compute buffer for nothing).
        parameters.n_outputs_max = UInt32(configuration.slots)
        parameters.n_outputs_max_per_seq = 1
        parameters.offload_kqv = configuration.offloadKV
        parameters.no_perf = true
        return parameters
    }

    /// Requests running and waiting.
    var load: (active: Int, queued: Int) { inbox.state.withLock { ($0.active, $0.pending.count) } }

    /// Starts a generation; its tokens arrive on the stream. Throws `overloaded` when every slot
    /// is busy and the queue is full, and `badInput` when the prompt does not fit a slot.
    func submit(_ request: GenerationRequest) throws -> AsyncThrowingStream<GenerationEvent, any Error> {
        let prompt: String
        let parseSpecial: Bool
        var chat: RenderedChat?
        switch request.input {
        case .prompt(let text):
            prompt = text
            parseSpecial = false
        case .messages(let messages) where LlamaModel.needsJinja(messages, tools: request.sampling.tools):
            try model.refuseControlTokens(messages, tools: request.sampling.tools)
            let rendered = try model.renderChat(messages, tools: request.sampling.tools)
            prompt = rendered.prompt
            parseSpecial = true
            chat = rendered
        case .messages(let messages):
            try model.refuseControlTokens(messages, tools: nil)
            prompt = try model.applyChatTemplate(messages)
            parseSpecial = true
        }
        try Sampler.check(request.sampling, model: model, chat: chat)
        let tokens = model.tokenize(prompt, addSpecial: true, parseSpecial: parseSpecial)
        guard !tokens.isEmpty else { throw InferenceError.badInput("the prompt is empty") }
        guard tokens.count + request.sampling.maxTokens <= configuration.contextPerSlot else {
            throw InferenceError.badInput(
                "prompt (\(tokens.count) tokens) plus maxTokens (\(request.sampling.maxTokens)) exceed the \(configuration.contextPerSlot)-token context of a slot"
            )
        }
        let (stream, continuation) = AsyncThrowingStream<GenerationEvent, any Error>.makeStream()
        let job = Job(request: request, tokens: tokens, chat: chat, continuation: continuation, timeout: configuration.generationTimeout)
        try inbox.state.withLock { state in
            // A stopped loop never admits again: refuse at once instead of queueing forever.
            guard !state.stopping else { throw InferenceError.overloaded("the model was unloaded: retry") }
            guard state.active + state.pending.count < configuration.slots + configuration.queueLimit else {
                throw InferenceError.overloaded(
                    "all \(configuration.slots) slots are busy and \(configuration.queueLimit) requests are queued: retry later")
            }
            state.pending.append(job)
        }
        continuation.onTermination = { [inbox] _ in
            job.cancelled.store(true, ordering: .relaxed)
            inbox.wake()
        }
        inbox.wake()
        return stream
    }

    /// Ends every running and waiting request now with finish reason `cancelled` (each stream
    /// still gets its summary); the engine stays up for new requests.
    func cancelAll() {
        inbox.state.withLock { $0.cancelAll = true }
        inbox.wake()
    }

    /// Stops the loop; running requests end as cancelled. The context is freed by the loop.
    func shutdown() {
        inbox.state.withLock { $0.stopping = true }
        inbox.wake()
    }

    deinit { shutdown() }
}

/// One request on its way through the engine.
final class Job: Sendable {
    let request: GenerationRequest
    let tokens: [Int32]
    /// A chat rendered by the model's Jinja template (tools): its grammar and parser.
    let chat: RenderedChat?
    let continuation: AsyncThrowingStream<GenerationEvent, any Error>.Continuation
    let cancelled = Atomic<Bool>(false)
    let submitted = ContinuousClock.now
    /// Past this the generation ends, `cancelled`.
    let deadline: ContinuousClock.Instant

    init(
        request: GenerationRequest, tokens: [Int32], chat: RenderedChat? = nil,
        continuation: AsyncThrowingStream<GenerationEvent, any Error>.Continuation, timeout: Duration
    ) {
        self.request = request
        self.tokens = tokens
        self.chat = chat
        self.continuation = continuation
        self.deadline = submitted + timeout
    }
}

/// What callers and the loop share: the queue, the count of running requests, a stop flag, and
/// a condition the loop sleeps on when there is nothing to do.
final class Inbox: Sendable {
    struct State {
        var pending: [Job] = []
        var active = 0
        var stopping = false
        /// Set by `cancelAll`: the loop ends every request with a `cancelled` summary.
        var cancelAll = false
    }
    let state = Mutex(State())
    private let signal = Signal()

    func wake() { signal.post() }
    func waitForWork() { signal.wait() }
}

/// A counting wake-up: `post` never blocks; `wait` returns at once when posted since the last wait.
final class Signal: @unchecked Sendable {
    // NSCondition is a lock with a wait queue; it is only used under its own lock, so sharing it
    // between the callers and the loop thread is safe.
    private let condition = NSCondition()
    private var posted = false

    func post() {
        condition.lock()
        posted = true
        condition.signal()
        condition.unlock()
    }

    func wait() {
        condition.lock()
        while !posted { condition.wait() }
        posted = false
        condition.unlock()
    }
}

/// A byte count one thread writes and others read.
final class ByteGauge: Sendable {
    let bytes = Atomic<Int>(0)
}

/// The context pointer, owned by the decode loop thread (created on another thread, then handed
/// over and never touched elsewhere).
struct ContextHandle: @unchecked Sendable {
    let pointer: OpaquePointer
    init(_ pointer: OpaquePointer) { self.pointer = pointer }
}

/// The decode loop. Everything here runs on the loop thread.
final class DecodeLoop: @unchecked Sendable {
    // @unchecked: the instance is created on the caller's thread and then used only by the loop
    // thread (`run`), so its mutable state is never shared.
    private struct Slot {
        let sequence: Int32
        let job: Job
        let sampler: Sampler
        var assembler: TextAssembler
        /// A tool chat's answer, read as it comes: only content is emitted as tokens.
        var reader: ChatStream?
        /// Prompt tokens not yet decoded.
        var promptOffset = 0
        /// Tokens in this sequence's memory (the next position).
        var position: Int32 = 0
        var generated: [Int32] = []
        var lastToken: Int32 = 0
        var started: ContinuousClock.Instant
        var firstToken: ContinuousClock.Instant?
        var batchIndex: Int32 = -1
        /// Prompt tokens restored from the prefix cache.
        var reused = 0
        /// Each generated token's log-probabilities, when asked for.
        var logprobs: [TokenLogprob] = []
        /// Time spent enforcing the grammar (the loop's time, which every slot shares).
        var grammarTime: Duration = .zero
    }

    /// A grammar may cost the shared loop this much per answer: past it the answer fails
    /// (`badInput`) instead of stalling every other slot (an ambiguous grammar's stacks multiply).
    static let grammarBudget: Duration = .seconds(5)

    private let model: LlamaModel
    private let context: OpaquePointer
    private let inbox: Inbox
    private let configuration: BatchEngine.Configuration
    private var slots: [Slot] = []
    /// Scratch space of constrained sampling (a vocabulary's candidates).
    private var candidates: [llama_token_data] = []
    private var freeSequences: [Int32]
    private let batchCapacity: Int32
    private var prefixes: PrefixCache
    private let facts: EngineFacts
    /// Told the prefix cache's bytes whenever they change.
    private let reportPrefixBytes: @Sendable (Int) -> Void

    init(
        model: LlamaModel, context: ContextHandle, inbox: Inbox, configuration: BatchEngine.Configuration, facts: EngineFacts,
        reportPrefixBytes: @escaping @Sendable (Int) -> Void
    ) {
        self.facts = facts
        self.reportPrefixBytes = reportPrefixBytes
        self.model = model
        self.context = context.pointer
        self.inbox = inbox
        self.configuration = configuration
        freeSequences = (0..<Int32(configuration.slots)).reversed()
        batchCapacity = Int32(llama_n_batch(context.pointer))
        prefixes = PrefixCache(
            budget: configuration.prefixCacheBudget, chunk: max(1, configuration.prefillChunk))
    }

    func run() {
        var batch = llama_batch_init(batchCapacity, 0, 1)
        defer {
            llama_batch_free(batch)
            for slot in slots { finish(slot, reason: .cancelled) }
            // Waiting requests would wait forever: they fail now.
            let waiting = inbox.state.withLock { state in
                defer { state.pending.removeAll() }
                return state.pending
            }
            for job in waiting { job.continuation.finish(throwing: InferenceError.overloaded("the model was unloaded: retry")) }
            llama_free(context)
        }
        while true {
            let (admitted, stopping, cancelled) = admit()
            if stopping { return }
            if let cancelled {
                // cancelAll: every running and waiting request ends with its summary.
                for slot in slots { finish(slot, reason: .cancelled) }
                slots.removeAll()
                for job in cancelled {
                    let summary = GenerationSummary(
                        text: "", finishReason: .cancelled, promptTokens: job.tokens, completionTokens: [], seed: job.request.sampling.seed,
                        timeToFirstTokenMs: 0, totalMs: (ContinuousClock.now - job.submitted).milliseconds,
                        queuedMs: (ContinuousClock.now - job.submitted).milliseconds)
                    job.continuation.yield(.finished(summary))
                    job.continuation.finish()
                }
            }
            slots += admitted
            slots.removeAll { slot in
                guard slot.job.cancelled.load(ordering: .relaxed) else { return false }
                finish(slot, reason: .cancelled)
                return true
            }
            if slots.isEmpty {
                inbox.waitForWork()
                continue
            }
            switch configuration.mode {
            case .mixed:
                fill(&batch)
                guard decode(batch) else { continue }
                sample()
            case .invariant:
                // Prompt chunks first, each alone in its call (up to a ubatch of them per turn),
                // then one token of every generating sequence together.
                var budget = BatchEngine.Configuration.ubatch
                while budget > 0, let index = slots.firstIndex(where: { $0.promptOffset < $0.job.tokens.count }) {
                    budget -= fillChunk(&batch, slot: index)
                    guard decode(batch) else { break }
                    savePrefix(index)
                    sample()
                }
                fillGenerating(&batch)
                guard decode(batch) else { continue }
                sample()
            }
        }
    }

    /// Decodes the batch; on failure every running request fails (the context is full).
    private func decode(_ batch: llama_batch) -> Bool {
        guard batch.n_tokens > 0 else { return true }
        let status = llama_decode(context, batch)
        guard status != 0 else { return true }
        for slot in slots { fail(slot, InferenceError.overloaded("llama_decode failed (\(status)): the context is full")) }
        slots.removeAll()
        return false
    }

    /// Moves waiting jobs into free slots; returns them, whether the engine is stopping, and the
    /// waiting jobs when `cancelAll` asked to end everything (nil otherwise).
    private func admit() -> ([Slot], Bool, [Job]?) {
        var admitted: [Job] = []
        var cancelled: [Job]?
        let stopping = inbox.state.withLock { state -> Bool in
            if state.stopping { return true }
            if state.cancelAll {
                cancelled = state.pending
                state.pending.removeAll()
                state.cancelAll = false
                return false
            }
            state.pending.removeAll { job in
                guard job.cancelled.load(ordering: .relaxed) else { return false }
                job.continuation.finish(throwing: CancellationError())
                return true
            }
            while !state.pending.isEmpty, admitted.count < freeSequences.count {
                admitted.append(state.pending.removeFirst())
            }
            state.active += admitted.count
            return false
        }
        let slots = admitted.compactMap { job -> Slot? in
            let sampler: Sampler
            do {
                sampler = try Sampler(job.request.sampling, model: model, chat: job.chat)
            } catch {
                // Checked when submitted: not reached, but never a trap.
                inbox.state.withLock { $0.active -= 1 }
                job.continuation.finish(throwing: error)
                return nil
            }
            var slot = Slot(
                sequence: freeSequences.removeLast(), job: job, sampler: sampler,
                assembler: TextAssembler(stops: job.request.sampling.stop + (job.chat?.stops ?? [])),
                reader: job.chat.flatMap { $0.readsCalls ? ChatStream(parser: $0.parser, single: $0.single) : nil }, started: .now)
            restorePrefix(&slot)
            return slot
        }
        return (slots, stopping, cancelled)
    }

    /// Mixed mode: one token per generating slot, then prompt tokens while the batch has room.
    private func fill(_ batch: inout llama_batch) {
        fillGenerating(&batch)
        for index in slots.indices where slots[index].promptOffset < slots[index].job.tokens.count {
            let tokens = slots[index].job.tokens
            while slots[index].promptOffset < tokens.count, batch.n_tokens < batchCapacity {
                let offset = slots[index].promptOffset
                slots[index].promptOffset += 1
                add(&batch, token: tokens[offset], slot: &slots[index], logits: offset == tokens.count - 1)
            }
            if batch.n_tokens >= batchCapacity { break }
        }
    }

    /// One token per generating slot.
    private func fillGenerating(_ batch: inout llama_batch) {
        batch.n_tokens = 0
        for index in slots.indices where slots[index].promptOffset == slots[index].job.tokens.count && slots[index].batchIndex < 0 {
            add(&batch, token: slots[index].lastToken, slot: &slots[index], logits: true)
        }
    }

    /// Invariant mode: the slot's next prompt chunk alone, up to the next multiple of the chunk
    /// size (so chunks sit at the same positions whatever came before); returns its length.
    private func fillChunk(_ batch: inout llama_batch, slot index: Int) -> Int {
        batch.n_tokens = 0
        let tokens = slots[index].job.tokens
        let start = slots[index].promptOffset
        let chunk = max(1, configuration.prefillChunk)
        let end = min(tokens.count, (start / chunk + 1) * chunk)
        for offset in start..<end {
            add(&batch, token: tokens[offset], slot: &slots[index], logits: offset == tokens.count - 1)
        }
        slots[index].promptOffset = end
        return end - start
    }

    /// Saves the slot's memory when its prefill just reached the boundary its prompt saves at.
    private func savePrefix(_ index: Int) {
        let slot = slots[index]
        guard let boundary = prefixes.saveBoundary(promptCount: slot.job.tokens.count), slot.promptOffset == boundary,
            prefixes.wants(slot.job.tokens[..<boundary])
        else { return }
        let size = llama_state_seq_get_size_ext(context, slot.sequence, 0)
        guard size > 0, size <= prefixes.budget else { return }
        var state = [UInt8](repeating: 0, count: size)
        let written = state.withUnsafeMutableBufferPointer { buffer in
            llama_state_seq_get_data_ext(context, buffer.baseAddress, size, slot.sequence, 0)
        }
        guard written == size else { return }
        prefixes.insert(tokens: Array(slot.job.tokens[..<boundary]), state: state)
        reportPrefixBytes(prefixes.bytes)
    }

    /// Starts a new slot from the longest saved prefix of its prompt, if any.
    private func restorePrefix(_ slot: inout Slot) {
        guard let found = prefixes.lookup(slot.job.tokens) else { return }
        let read = found.state.withUnsafeBufferPointer { buffer in
            llama_state_seq_set_data_ext(context, buffer.baseAddress, buffer.count, slot.sequence, 0)
        }
        let memory = llama_get_memory(context)
        guard read == found.state.count else {
            llama_memory_seq_rm(memory, slot.sequence, -1, -1)
            return
        }
        if found.keep < found.entryLength { llama_memory_seq_rm(memory, slot.sequence, Int32(found.keep), -1) }
        slot.promptOffset = found.keep
        slot.position = Int32(found.keep)
        slot.reused = found.keep
    }

    private func add(_ batch: inout llama_batch, token: Int32, slot: inout Slot, logits: Bool) {
        let at = Int(batch.n_tokens)
        batch.token[at] = token
        batch.pos[at] = slot.position
        batch.n_seq_id[at] = 1
        batch.seq_id[at]?[0] = slot.sequence
        batch.logits[at] = logits ? 1 : 0
        slot.position += 1
        slot.batchIndex = logits ? Int32(at) : -1
        batch.n_tokens += 1
    }

    /// Samples a token for every slot that got logits, streams its text and ends finished slots.
    private func sample() {
        var index = 0
        while index < slots.count {
            guard slots[index].batchIndex >= 0 else {
                index += 1
                continue
            }
            let batchIndex = slots[index].batchIndex
            let sampling = ContinuousClock.now
            let outcome = slots[index].sampler.sample(
                context: context, index: batchIndex, model: model, candidates: &candidates,
                deadline: sampling + (Self.grammarBudget - slots[index].grammarTime))
            slots[index].batchIndex = -1
            if slots[index].sampler.grammar != nil { slots[index].grammarTime += ContinuousClock.now - sampling }
            if slots[index].firstToken == nil { slots[index].firstToken = .now }
            let token: Int32
            switch outcome {
            case .token(let sampled):
                token = sampled
            case .none:
                // No token at all: the grammar allows none (it can only end).
                finish(slots[index], reason: .stop)
                slots.remove(at: index)
                continue
            case .tooCostly:
                let spent = Int(slots[index].grammarTime.milliseconds)
                fail(
                    slots[index],
                    InferenceError.badInput(
                        "the grammar took \(spent) ms over \(slots[index].generated.count + 1) tokens: too costly to enforce (ambiguous)"))
                slots.remove(at: index)
                continue
            }
            var reason: FinishReason?
            if let count = slots[index].job.request.sampling.logprobs, !model.isEndOfGeneration(token),
                let logits = llama_get_logits_ith(context, batchIndex)
            {
                slots[index].logprobs.append(
                    TokenLogprob.measure(
                        logits: logits, vocabularySize: Int(model.vocabularySize), chosen: token, count: count, piece: model.piece))
            }
            if model.isEndOfGeneration(token) {
                reason = .stop
            } else {
                slots[index].generated.append(token)
                slots[index].lastToken = token
                let (assembled, stopped) = slots[index].assembler.append(model.piece(token))
                let emit = slots[index].reader == nil || assembled.isEmpty ? assembled : slots[index].reader!.feed(assembled)
                if !emit.isEmpty { slots[index].job.continuation.yield(.token(emit)) }
                if stopped || slots[index].reader?.ended == true {
                    reason = .stop
                } else if slots[index].generated.count >= slots[index].job.request.sampling.maxTokens {
                    reason = .length
                } else if ContinuousClock.now >= slots[index].job.deadline {
                    reason = .cancelled
                }
            }
            if let reason {
                finish(slots[index], reason: reason)
                slots.remove(at: index)
            } else {
                index += 1
            }
        }
    }

    /// Ends a slot: its sequence leaves the memory, its sampler is freed, its stream gets the summary.
    private func finish(_ slot: Slot, reason: FinishReason) {
        var slot = slot
        var rest = slot.assembler.flush()
        var message: AssistantMessage?
        if slot.reader != nil {
            if !rest.isEmpty { _ = slot.reader!.feed(rest) }
            let read = slot.reader!.finish()
            (message, rest) = (read.message, read.rest)
        }
        if !rest.isEmpty, reason != .cancelled { slot.job.continuation.yield(.token(rest)) }
        let now = ContinuousClock.now
        let job = slot.job
        var summary = GenerationSummary(
            text: slot.assembler.text, finishReason: reason, promptTokens: job.tokens, completionTokens: slot.generated,
            seed: job.request.sampling.seed,
            timeToFirstTokenMs: ((slot.firstToken ?? now) - job.submitted).milliseconds,
            totalMs: (now - job.submitted).milliseconds, queuedMs: (slot.started - job.submitted).milliseconds)
        summary.cachedPromptTokens = slot.reused
        if job.request.sampling.logprobs != nil { summary.logprobs = slot.logprobs }
        summary.engine = facts
        summary.weights = job.request.weights
        summary.message = message
        release(slot)
        job.continuation.yield(.finished(summary))
        job.continuation.finish()
    }

    private func fail(_ slot: Slot, _ error: any Error) {
        release(slot)
        slot.job.continuation.finish(throwing: error)
    }

    private func release(_ slot: Slot) {
        llama_memory_seq_rm(llama_get_memory(context), slot.sequence, -1, -1)
        slot.sampler.free()
        freeSequences.append(slot.sequence)
        inbox.state.withLock { $0.active -= 1 }
    }

}

extension Duration {
    /// The duration in milliseconds (the unit of the timings in a `GenerationSummary`).
    public var milliseconds: Double { Double(components.seconds) * 1000 + Double(components.attoseconds) / 1e15 }
}
