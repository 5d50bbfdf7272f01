import ArtifactStore
public import Foundation
import GitStore
public import Inference
public import Ledger
import Lineage
public import Logging
import Synchronization

/// Runs inferences end to end — spec → lineage → loaded model → tokens — and records every one
/// (completed, cancelled or failed) in the ledger before its answer is complete. GraphQL
/// (`infer`, `inferStream`, `replay`) and the OpenAI routes all go through here.
public final class InferenceService: Sendable {
    public let models: ModelManager
    public let ledger: (any InferenceLedger)?
    let policy: LedgerFailurePolicy
    /// False: prompts and outputs are stored as SHA-256 digests (privacy setting).
    let storeText: Bool
    let logger: Logger
    private let counters = Mutex<(records: Int64, failures: Int64)>((0, 0))
    /// The latest ledger write durations in seconds (a ring of 1024), for the latency the ledger
    /// adds to each answer.
    private let writeDurations = Mutex<(samples: [Double], next: Int)>(([], 0))

    public init(
        models: ModelManager, ledger: (any InferenceLedger)?, policy: LedgerFailurePolicy = .warn, storeText: Bool = true,
        logger: Logger = Logger(label: "pedigree.inference")
    ) {
        self.models = models
        self.ledger = ledger
        self.policy = policy
        self.storeText = storeText
        self.logger = logger
    }

    /// Records written and writes that failed since start (for `/metrics`).
    public var ledgerCounts: (records: Int64, failures: Int64) { counters.withLock { $0 } }

    /// The `q` quantile of recent ledger write durations, in seconds; nil before the first write.
    public func ledgerWriteQuantile(_ q: Double) -> Double? {
        let sorted = writeDurations.withLock { $0.samples }.sorted()
        guard !sorted.isEmpty else { return nil }
        return sorted[min(sorted.count - 1, Int(q * Double(sorted.count)))]
    }

    /// What a running inference yields: text, then the answer (already recorded).
    public enum Event: Sendable {
        case token(String)
        case payload(InferenceAnswer)
    }

    /// Starts an inference; its events arrive on the stream. Ending the stream early cancels the
    /// generation (its slot is freed) and records it as cancelled.
    public func start(_ request: GenerationRequest, spec: String, caller: String?, id: String = RecordID.make()) async throws
        -> AsyncThrowingStream<Event, any Error>
    {
        let revision = try models.artifacts.lineage.lineage(spec)
        let created = Date()
        let generation: AsyncThrowingStream<GenerationEvent, any Error>
        do {
            generation = try await models.generate(request, on: revision)
        } catch {
            try await store(failed: error, id: id, created: created, request: request, revision: revision, caller: caller)
            throw error
        }
        return AsyncThrowingStream { continuation in
            let task = Task {
                var text = ""
                do {
                    for try await event in generation {
                        switch event {
                        case .token(let piece):
                            text += piece
                            continuation.yield(.token(piece))
                        case .finished(let summary):
                            let answer = InferenceAnswer(id: id, revision: revision, summary: summary)
                            try await self.store(
                                self.record(id: id, created: created, request: request, revision: revision, caller: caller, summary: summary))
                            continuation.yield(.payload(answer))
                            continuation.finish()
                            return
                        }
                    }
                    // The stream ended without a summary: the client left.
                    let partial = GenerationSummary.cancelled(text: text, seed: request.sampling.seed)
                    let record = self.record(id: id, created: created, request: request, revision: revision, caller: caller, summary: partial)
                    // This task is cancelled; the write must still happen.
                    Task.detached { try? await self.store(record) }
                    continuation.finish(throwing: CancellationError())
                } catch {
                    try? await self.store(failed: error, id: id, created: created, request: request, revision: revision, caller: caller)
                    continuation.finish(throwing: error)
                }
            }
            continuation.onTermination = { _ in task.cancel() }
        }
    }

    /// Runs an inference to its end.
    public func run(_ request: GenerationRequest, spec: String, caller: String?) async throws -> InferenceAnswer {
        for try await event in try await start(request, spec: spec, caller: caller) {
            if case .payload(let answer) = event { return answer }
        }
        throw CancellationError()
    }

    // MARK: Replay

    /// What `replay` reports.
    public struct Replay: Sendable {
        public let original: InferenceRecord
        public let replay: InferenceAnswer
        public let identical: Bool
        /// Index of the first generated token that differs; nil when identical.
        public let firstDifference: Int?
    }

    /// Runs a recorded inference again: the recorded canonical revision (so it works after the
    /// branch moved on), its weights (fetched again when evicted), input and full sampling.
    public func replay(id: String, caller: String?) async throws -> Replay {
        guard let ledger else { throw APIError(.badUserInput, "the ledger is off: nothing to replay") }
        guard let original = try await ledger.inference(id: id) else { throw APIError(.notFound, "no inference \(id) in the ledger") }
        guard !original.inputIsDigest else {
            throw APIError(.badUserInput, "inference \(id) was stored as a digest (privacy setting): it cannot be replayed")
        }
        let decoder = JSONDecoder()
        let sampling = try decoder.decode(SamplingParameters.self, from: Data(original.sampling.utf8))
        let input: GenerationRequest.Input =
            original.inputKind == "messages"
            ? .messages(try decoder.decode([ChatMessage].self, from: Data(original.input.utf8))) : .prompt(original.input)
        let answer = try await run(GenerationRequest(input: input, sampling: sampling), spec: original.revision, caller: caller)
        let before = (try? decoder.decode([Int32].self, from: Data(original.completionTokenIDs.utf8))) ?? []
        let after = answer.summary.completionTokens
        let difference =
            zip(before, after).enumerated().first { $0.element.0 != $0.element.1 }?.offset
            ?? (before.count == after.count ? nil : min(before.count, after.count))
        return Replay(original: original, replay: answer, identical: difference == nil, firstDifference: difference)
    }

    // MARK: Records

    private func record(
        id: String, created: Date, request: GenerationRequest, revision: ModelLineage, caller: String?, summary: GenerationSummary,
        status: String? = nil, error: String? = nil
    ) -> InferenceRecord {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        func json(_ value: some Encodable) -> String { String(decoding: (try? encoder.encode(value)) ?? Data("null".utf8), as: UTF8.self) }
        let inputKind: String
        let input: String
        switch request.input {
        case .prompt(let prompt):
            inputKind = "prompt"
            input = prompt
        case .messages(let messages):
            inputKind = "messages"
            input = json(messages)
        }
        let lineage = LineageDigest(
            pipeline: revision.pipeline.map(\.name), datasets: revision.datasets.map { ["path": $0.path, "md5": $0.md5] },
            parameters: revision.parameters.map { ["file": $0.file, "key": $0.key, "value": $0.value] },
            code: revision.code.map { ["path": $0.path, "md5": $0.md5] })
        return InferenceRecord(
            id: id, createdAt: created, caller: caller,
            status: status ?? (summary.finishReason == "cancelled" ? "cancelled" : "completed"), error: error,
            model: revision.model.name, revision: revision.id, commit: revision.commit.sha, artifactMD5: revision.artifact.md5,
            lineage: json(lineage), engine: models.engineInfo, sampling: json(request.sampling), seed: Int64(request.sampling.seed),
            inputKind: inputKind, input: storeText ? input : InferenceRecord.digest(input),
            output: storeText ? summary.text : InferenceRecord.digest(summary.text), finishReason: summary.finishReason,
            promptTokens: summary.promptTokens.count, completionTokens: summary.completionTokens.count,
            completionTokenIDs: json(summary.completionTokens), timeToFirstTokenMs: summary.timeToFirstTokenMs, totalMs: summary.totalMs)
    }

    private func store(failed error: any Error, id: String, created: Date, request: GenerationRequest, revision: ModelLineage, caller: String?)
        async throws
    {
        let message = ErrorCode.classify(error)
        let summary = GenerationSummary.cancelled(text: "", seed: request.sampling.seed)
        try await store(
            record(
                id: id, created: created, request: request, revision: revision, caller: caller, summary: summary, status: "failed",
                error: "\(message.code.rawValue): \(message.message)"))
    }

    /// Writes a record; with the `warn` policy a failed write is logged and counted, not thrown.
    private func store(_ record: InferenceRecord) async throws {
        guard let ledger else { return }
        do {
            let start = ContinuousClock.now
            try await ledger.record(record)
            let elapsed = ContinuousClock.now - start
            let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
            writeDurations.withLock { ring in
                if ring.samples.count < 1024 { ring.samples.append(seconds) } else { ring.samples[ring.next] = seconds }
                ring.next = (ring.next + 1) % 1024
            }
            counters.withLock { $0.records += 1 }
        } catch {
            counters.withLock { $0.failures += 1 }
            logger.warning("ledger write failed", metadata: ["id": "\(record.id)", "error": "\(error)"])
            if policy == .fail { throw APIError(.internalError, "the inference could not be recorded in the ledger") }
        }
    }

    /// The lineage stored with a record.
    private struct LineageDigest: Encodable {
        let pipeline: [String]
        let datasets: [[String: String]]
        let parameters: [[String: String]]
        let code: [[String: String]]
    }
}
