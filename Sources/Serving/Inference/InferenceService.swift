public import Access
public import Foundation
public import Inference
public import Ledger
public import Lineage
public import Logging
import Metrics
import Synchronization
import Tracing

/// Who asked for a piece of work: recorded with every inference and carried by every log line.
public struct RequestInfo: Sendable {
    /// The authenticated caller (an API key's name); nil while authentication is off.
    public var caller: String?
    /// The API key's id (what owns the records made); nil while authentication is off.
    public var callerKey: String?
    /// The HTTP request's id (`X-Request-Id`); nil from the CLI.
    public var requestID: String?
    /// What the caller may do, and its quotas.
    public var principal: Principal
    /// The generations this request has started (an HTTP request, one WebSocket operation);
    /// nil from the CLI, which has no request quota.
    public var generations: RequestGenerations?

    public init(caller: String? = nil, requestID: String? = nil) {
        self.caller = caller
        self.requestID = requestID
        self.principal = .open
    }

    /// A request made with a key (or on an open server): recorded under the key's name.
    public init(principal: Principal, requestID: String?) {
        self.caller = principal.name
        self.callerKey = principal.keyID
        self.requestID = requestID
        self.principal = principal
        self.generations = RequestGenerations()
    }

    /// The same caller for another operation (a WebSocket's next subscription): its own count
    /// of generations.
    public func nextOperation() -> RequestInfo {
        var next = self
        if next.generations != nil { next.generations = RequestGenerations() }
        return next
    }
}

/// How many generations one request has started: each after the first counts against the key's
/// requests per minute, and no request starts more than `max-generations-per-request`.
public final class RequestGenerations: Sendable {
    private let started = Atomic<Int>(0)
    public init() {}
    /// Counts one more; its number (from 1).
    func next() -> Int { started.wrappingAdd(1, ordering: .relaxed).newValue }
}

/// One answer: what `InferencePayload` shows.
public struct InferenceAnswer: Sendable {
    /// The ledger id.
    public let id: String
    public let revision: ModelLineage
    public let summary: GenerationSummary
    /// Its signed receipt (a DSSE envelope's JSON), as recorded; nil without one.
    public var receipt: String?
}

/// Runs inferences end to end on a resolved revision — loaded model → tokens → record — and
/// records every one (completed, cancelled or failed) in the ledger before its answer is
/// complete. GraphQL (`infer`, `inferStream`, `replay`), the OpenAI routes and the CLI all go
/// through here. New work is refused while the server drains (`ServingState`), and running
/// generations are counted so a drain can wait for them.
public final class InferenceService: Sendable {
    let lineage: LineageService
    let artifacts: RevisionArtifacts
    let models: ModelManager
    /// Where generations run: `models` (in this process), inference workers, external backends.
    let backend: any GenerationBackend
    let recorder: InferenceRecorder
    let state: ServingState
    let logger: Logger
    /// Generations started and not yet recorded.
    private let running = Atomic<Int>(0)
    /// The most generations one request may start (`max-generations-per-request`); nil: no bound.
    let maxGenerationsPerRequest: Int?

    public init(
        lineage: LineageService, artifacts: RevisionArtifacts, models: ModelManager, backend: (any GenerationBackend)? = nil,
        recorder: InferenceRecorder,
        state: ServingState, maxGenerationsPerRequest: Int? = nil, logger: Logger = Logger(label: "pedigree.inference")
    ) {
        self.maxGenerationsPerRequest = maxGenerationsPerRequest
        self.lineage = lineage
        self.artifacts = artifacts
        self.models = models
        self.backend = backend ?? LocalBackend(models: models, artifacts: artifacts)
        self.recorder = recorder
        self.state = state
        self.logger = logger
    }

    /// Generations running now (started and not yet recorded).
    public var runningCount: Int { running.load(ordering: .relaxed) }

    /// What a running inference yields: text, then the answer (already recorded).
    public enum Event: Sendable {
        case token(String)
        case payload(InferenceAnswer)
    }

    /// Starts an inference on `revision`; its events arrive on the stream. Ending the stream
    /// early cancels the generation (its slot is freed) and records it as cancelled.
    /// `engine`: facts the engine must reproduce (a replay's); workers without them are not used.
    public func start(
        _ request: GenerationRequest, on revision: ModelLineage, by caller: RequestInfo, id: String = RecordID.make(),
        engine required: EngineFacts? = nil
    ) async throws
        -> AsyncThrowingStream<Event, any Error>
    {
        try state.admit()
        if let generations = caller.generations {
            let number = generations.next()
            if let limit = maxGenerationsPerRequest, number > limit {
                throw ServingError(.badUserInput, "one request may start at most \(limit) generations (max-generations-per-request)")
            }
            // The request was counted once when it arrived: each further generation counts again.
            if number > 1 { try caller.principal.meter?.admitRequest() }
        }
        // The key's quotas: tokens left this minute (its most tokens reserved now) and generations at once.
        let lease = try caller.principal.meter?.beginGeneration(reserving: request.sampling.maxTokens)
        var requestLogger = self.logger
        requestLogger[metadataKey: "request_id"] = caller.requestID.map { .string($0) }
        let logger = requestLogger
        let created = Date()
        let context = ServiceContext.current ?? .topLevel
        var current = revision
        var drafted = InferenceRecorder.Draft(id: id, created: created, request: request, revision: revision, caller: caller, context: context)
        running.add(1, ordering: .relaxed)
        let generation: AsyncThrowingStream<GenerationEvent, any Error>
        // From the request to the last token; fetch and load (when needed) are its children.
        let span = startSpan("generate", context: context, ofKind: .internal)
        span.attributes["gen_ai.request.model"] = revision.model.name
        span.attributes["pedigree.revision"] = revision.id
        span.attributes["pedigree.inference.id"] = id
        do {
            if current.awaitsMD5 {
                // A Git LFS object is named by SHA-256: its md5, which the record, replay and the
                // loaded model are keyed by, is learnt from its fetch (bad input, and weights the
                // backend cannot run from LFS, are refused first).
                try backend.accept(current)
                _ = try models.validated(request)
                current = try await ServiceContext.withValue(span.context) { [current] in try await artifacts.completed(current) }
                drafted = InferenceRecorder.Draft(id: id, created: created, request: request, revision: current, caller: caller, context: context)
            }
            generation = try await ServiceContext.withValue(span.context) { [current] in
                try await backend.generate(request, on: current, engine: required)
            }
        } catch {
            span.recordError(error)
            span.end()
            defer { running.subtract(1, ordering: .relaxed) }
            lease?.end(tokens: 0)
            let code = ErrorCode.classify(error).code
            logger.info("inference refused", metadata: ["id": "\(id)", "revision": "\(revision.id)", "code": "\(code.rawValue)"])
            switch code {
            case .badUserInput, .overloaded, .shuttingDown:
                // Refused before anything ran: counted, not recorded with its input.
                recorder.countRejection(code)
            default:
                try await recorder.store(drafted.failed(error, engine: backend.engineFacts(for: revision).json))
            }
            throw error
        }
        logger.info("inference started", metadata: ["id": "\(id)", "revision": "\(revision.id)"])
        let recorder = self.recorder
        let revision = current
        let draft = drafted
        return AsyncThrowingStream { continuation in
            let task = Task { [self, logger] in
                defer { running.subtract(1, ordering: .relaxed) }
                var text = ""
                // Tokens so far, charged to the key's quota when the generation ends.
                var pieces = 0
                var spanEnded = false
                // The key is asked again while the generation runs: revoking it ends the generation.
                var nextKeyCheck = ContinuousClock.now + .seconds(1)
                defer {
                    lease?.end(tokens: pieces)
                    if !spanEnded { span.end() }
                }
                do {
                    for try await event in generation {
                        switch event {
                        case .token(let piece):
                            if ContinuousClock.now >= nextKeyCheck {
                                nextKeyCheck = .now + .seconds(1)
                                guard caller.principal.isStillValid else {
                                    throw AccessError.unauthenticated("the API key was revoked or changed during the generation")
                                }
                            }
                            if pieces == 0 { span.addEvent("gen_ai.first_token") }
                            text += piece
                            pieces += 1
                            continuation.yield(.token(piece))
                        case .finished(let summary):
                            pieces = summary.completionTokenCount
                            GenerationMetrics.record(summary, model: revision.model.name, request: request)
                            span.attributes["gen_ai.usage.input_tokens"] = summary.promptTokenCount
                            span.attributes["gen_ai.usage.output_tokens"] = summary.completionTokenCount
                            span.attributes["gen_ai.response.finish_reasons"] = [summary.finishReason.rawValue]
                            span.end()
                            spanEnded = true
                            let receipt = try await recorder.store(
                                draft.finished(summary, engine: summary.engine?.json ?? backend.engineFacts(for: revision).json))
                            logger.info(
                                "inference finished",
                                metadata: [
                                    "id": "\(id)", "finish_reason": "\(summary.finishReason.rawValue)", "tokens": "\(summary.completionTokenCount)",
                                ])
                            continuation.yield(.payload(InferenceAnswer(id: id, revision: revision, summary: summary, receipt: receipt)))
                            continuation.finish()
                            return
                        }
                    }
                    // The stream ended without a summary: the client left.
                    throw CancellationError()
                } catch {
                    // This task may be cancelled (the client left): the write must still
                    // happen, so it runs in a task of its own, and the drain waits for it.
                    let engine = backend.engineFacts(for: revision).json
                    let record =
                        Task.isCancelled || error is CancellationError
                        ? draft.finished(.cancelled(text: text, seed: request.sampling.seed), engine: engine) : draft.failed(error, engine: engine)
                    await Task { try? await recorder.store(record) }.value
                    if record.status == .cancelled { logger.info("inference cancelled", metadata: ["id": "\(id)"]) }
                    continuation.finish(throwing: error)
                }
            }
            continuation.onTermination = { _ in task.cancel() }
        }
    }

    /// Runs an inference to its end.
    public func run(
        _ request: GenerationRequest, on revision: ModelLineage, by caller: RequestInfo, engine required: EngineFacts? = nil
    ) async throws -> InferenceAnswer {
        for try await event in try await start(request, on: revision, by: caller, engine: required) {
            if case .payload(let answer) = event { return answer }
        }
        throw CancellationError()
    }

    /// Loads `revision`'s weights where its generations run: this process, the worker its md5
    /// ranks first, or nowhere for an external backend's (`BAD_USER_INPUT`).
    public func load(_ revision: ModelLineage) async throws -> ModelManager.Status { try await backend.load(revision) }

    /// Unloads `revision`'s weights wherever they are held, if idle; whether any were.
    public func unload(_ revision: ModelLineage) async throws -> Bool { try await backend.unload(revision) }

    /// Ends every running generation now with finish reason `cancelled` (each still recorded), and
    /// starts no new one.
    public func stopGenerating() async { await backend.stopGenerating() }

    // MARK: Replay

    /// What `replay` reports.
    public struct Replay: Sendable {
        public let original: InferenceRecord
        public let replay: InferenceAnswer
        public let identical: Bool
        /// Index of the first generated token that differs; nil when identical.
        public let firstDifference: Int?

        /// Whether the replay ran on an engine with the original's facts; nil when the original
        /// recorded none (made before they were recorded).
        public var sameEngine: Bool? {
            guard let recorded = EngineFacts(json: original.engine), let now = replay.summary.engine else { return nil }
            return now.reproduces(recorded)
        }

        /// Whether the same tokens were to be expected: the same weights, the same engine, and
        /// kernels measured batch-invariant for both runs (never for a replay `against` other weights).
        public var guaranteed: Bool {
            guard let recorded = EngineFacts(json: original.engine), let now = replay.summary.engine,
                original.artifactMD5 == replay.revision.artifact.md5
            else { return false }
            return recorded.guarantees(now)
        }
    }

    /// What `replayMany` reports: counts and one item per record.
    public struct ReplayBatch: Sendable {
        public struct Item: Sendable {
            public let id: String
            public let outcome: Result<Replay, ServingError>
        }
        public let items: [Item]
        public var identical: Int { items.filter { (try? $0.outcome.get().identical) == true }.count }
        public var differing: Int { items.filter { (try? $0.outcome.get().identical) == false }.count }
        public var failed: Int { items.filter { if case .failure = $0.outcome { true } else { false } }.count }
    }

    /// The weights loaded where generations run, one list: this process's models, or on a
    /// gateway those its healthy workers last reported, each with its worker (a gateway loads
    /// nothing itself: `loadModel` and the preload list act on the workers).
    public func loadedModels() async -> [ModelManager.Status] { await backend.loadedModels() }

    /// Embeddings of `texts` by `revision`'s weights (fetched and loaded when needed); not recorded.
    public func embed(_ texts: [String], on revision: ModelLineage) async throws -> [Embedding] {
        try await backend.embed(texts, on: revision)
    }

    /// Replays the newest `sample` records matching `filter` against `revision`, one at a time.
    public func replayMany(_ filter: InferenceFilter, against revision: ModelLineage, sample: Int, by caller: RequestInfo) async throws
        -> ReplayBatch
    {
        guard recorder.isEnabled else { throw ServingError(.badUserInput, "the ledger is off") }
        guard InferenceRecorder.pageSizes.contains(sample) else { throw ServingError(.badUserInput, "sample must be between 1 and 1000") }
        if caller.generations != nil, let limit = maxGenerationsPerRequest, sample > limit {
            throw ServingError(.badUserInput, "one request may start at most \(limit) generations (max-generations-per-request); sample is \(sample)")
        }
        let records = try await recorder.inferences(filter, first: sample, readableBy: caller.principal).records
        var items: [ReplayBatch.Item] = []
        for record in records {
            do {
                items.append(.init(id: record.id, outcome: .success(try await replay(id: record.id, against: revision, by: caller))))
            } catch {
                let (code, message) = ErrorCode.classify(error)
                items.append(.init(id: record.id, outcome: .failure(ServingError(code, message))))
            }
        }
        return ReplayBatch(items: items)
    }

    /// Runs a recorded inference again: the recorded canonical revision (so it works after the
    /// branch moved on), its weights (fetched again when evicted), input and full sampling.
    /// With `against`, the recorded input and sampling run on that revision instead (another
    /// revision's weights: where do the answers part?).
    public func replay(id: String, against other: ModelLineage? = nil, by caller: RequestInfo) async throws -> Replay {
        // Another caller's record is not found for a key that may replay only its own.
        guard let original = try await recorder.record(id: id, readableBy: caller.principal, replay: true) else {
            throw ServingError(.notFound, "no inference \(id) in the ledger")
        }
        guard !original.inputIsDigest else {
            throw ServingError(.badUserInput, "inference \(id) was stored as a digest (privacy setting): it cannot be replayed")
        }
        guard !original.inputIsExcerpt else {
            throw ServingError(.badUserInput, "inference \(id) failed and its long input was stored as an excerpt: it cannot be replayed")
        }
        let decoder = JSONDecoder()
        let sampling: SamplingParameters
        let input: GenerationRequest.Input
        do {
            sampling = try decoder.decode(SamplingParameters.self, from: Data(original.sampling.utf8))
            switch original.inputKind {
            case .messages: input = .messages(try decoder.decode([ChatMessage].self, from: Data(original.input.utf8)))
            case .prompt: input = .prompt(original.input)
            }
        } catch {
            throw ServingError(.internalError, "inference \(id) has a record that cannot be read back")
        }
        let revision: ModelLineage
        if let other {
            revision = other
        } else {
            revision = try await lineage.lineageOffloaded(model: original.model, at: original.commit)
        }
        // On workers, only one with the record's engine facts may replay it.
        let answer = try await run(
            GenerationRequest(input: input, sampling: sampling), on: revision, by: caller, engine: EngineFacts(json: original.engine))
        let before = (try? decoder.decode([Int32].self, from: Data(original.completionTokenIDs.utf8))) ?? []
        let after = answer.summary.completionTokens
        let difference: Int?
        if before.isEmpty, after.isEmpty {
            // No token ids (an external backend's answers): the texts are compared.
            difference = original.output == answer.summary.text ? nil : 0
        } else {
            difference =
                zip(before, after).enumerated().first { $0.element.0 != $0.element.1 }?.offset
                ?? (before.count == after.count ? nil : min(before.count, after.count))
        }
        return Replay(original: original, replay: answer, identical: difference == nil, firstDifference: difference)
    }
}

/// The OpenTelemetry GenAI server figures of one finished generation, by model name (never by
/// prompt): time to first token, time per output token, the whole request, and token usage.
enum GenerationMetrics {
    static func record(_ summary: GenerationSummary, model: String, request: GenerationRequest) {
        let operation: String
        switch request.input {
        case .prompt: operation = "text_completion"
        case .messages: operation = "chat"
        }
        let dimensions = [("gen_ai.request.model", model), ("gen_ai.operation.name", operation)]
        Timer(label: MetricName.timeToFirstToken, dimensions: dimensions).recordNanoseconds(nanoseconds(summary.timeToFirstTokenMs))
        Timer(label: MetricName.requestDuration, dimensions: dimensions).recordNanoseconds(nanoseconds(summary.totalMs))
        let generated = summary.completionTokenCount
        if generated > 1 {
            let perToken = (summary.totalMs - summary.timeToFirstTokenMs) / Double(generated - 1)
            Timer(label: MetricName.timePerOutputToken, dimensions: dimensions).recordNanoseconds(nanoseconds(perToken))
        }
        Recorder(label: MetricName.tokenUsage, dimensions: dimensions + [("gen_ai.token.type", "input")])
            .record(summary.promptTokenCount)
        Recorder(label: MetricName.tokenUsage, dimensions: dimensions + [("gen_ai.token.type", "output")]).record(generated)
        if summary.cachedPromptTokens > 0 {
            Counter(label: "pedigree_prompt_tokens_cached_total", dimensions: [("gen_ai.request.model", model)])
                .increment(by: summary.cachedPromptTokens)
        }
    }

    static func nanoseconds(_ milliseconds: Double) -> Int64 {
        let value = milliseconds * 1e6
        return value.isFinite && value > 0 ? Int64(min(value, 1e18)) : 0
    }
}
