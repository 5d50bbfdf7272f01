public import Access
public import Foundation
import GitStore
public import Inference
public import Ledger
public import Lineage
public import Logging
import Metrics
import OTel
import Synchronization
import Tracing
public import Trust

/// The latest durations (a ring of 1024), for quantiles `/metrics` shows.
final class DurationRing: Sendable {
    private let ring = Mutex<(samples: [Double], next: Int)>(([], 0))

    func record(_ duration: Duration) {
        let seconds = Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
        ring.withLock { ring in
            if ring.samples.count < 1024 { ring.samples.append(seconds) } else { ring.samples[ring.next] = seconds }
            ring.next = (ring.next + 1) % 1024
        }
    }

    /// The `q` quantile of the durations kept, in seconds; nil before the first.
    func quantile(_ q: Double) -> Double? {
        let sorted = ring.withLock { $0.samples }.sorted()
        guard !sorted.isEmpty else { return nil }
        return sorted[min(sorted.count - 1, Int(q * Double(sorted.count)))]
    }
}

/// Writes inference records to the ledger with the configured policy (warn or fail on a failed
/// write) and privacy setting (text or digests), and keeps the figures `/metrics` shows. This is
/// the ledger's edge: enums become the record's text here.
public final class InferenceRecorder: Sendable {
    /// The store; internal: the edges read through `record(id:readableBy:)` and `inferences`.
    let ledger: (any InferenceLedger)?
    let policy: LedgerFailurePolicy
    /// False: prompts, outputs and token ids are stored as keyed digests (privacy setting).
    let storeText: Bool
    /// The deployment's salt for those digests.
    let salt: Data
    /// Signs each record's receipt (nil: records carry none).
    public let receiptKey: ReceiptKey?
    let logger: Logger
    private let counters = Mutex<(records: Int64, failures: Int64, rejected: Int64)>((0, 0, 0))
    /// The longest input a failed record keeps; the rest is replaced by its size and digest.
    static let failedInputExcerpt = 1024
    /// The latest ledger write durations, for the latency the ledger adds to each answer.
    private let writeDurations = DurationRing()
    /// The latest receipts' durations (the statement made, signed and hashed into its leaf).
    private let receiptDurations = DurationRing()

    public init(
        ledger: (any InferenceLedger)?, policy: LedgerFailurePolicy = .warn, storeText: Bool = true, salt: Data = Data(),
        receiptKey: ReceiptKey? = nil, logger: Logger = Logger(label: "pedigree.ledger")
    ) {
        self.receiptKey = receiptKey
        self.ledger = ledger
        self.policy = policy
        self.storeText = storeText
        self.salt = salt
        self.logger = logger
    }

    /// Records written, writes that failed, and requests rejected before they ran (counted, not
    /// recorded) since start (for `/metrics`).
    public var counts: (records: Int64, failures: Int64, rejected: Int64) { counters.withLock { $0 } }

    /// Counts a request refused before anything ran (bad input, a full queue, shutdown). Such a
    /// request is not recorded: a client must not be able to grow the ledger by sending what is
    /// refused.
    func countRejection(_ code: ErrorCode) {
        counters.withLock { $0.rejected += 1 }
        Counter(label: "pedigree_inferences_rejected_total", dimensions: [("code", code.rawValue)]).increment()
    }

    /// The `q` quantile of recent ledger write durations, in seconds; nil before the first write.
    public func writeQuantile(_ q: Double) -> Double? { writeDurations.quantile(q) }

    /// The `q` quantile of recent receipts' durations (made, signed, hashed), in seconds.
    public func receiptQuantile(_ q: Double) -> Double? { receiptDurations.quantile(q) }

    /// A recorded inference; `BAD_USER_INPUT` when the ledger is off.
    public func record(id: String) async throws -> InferenceRecord? {
        guard let ledger else { throw ServingError(.badUserInput, "the ledger is off") }
        return try await ledger.inference(id: id)
    }

    /// A recorded inference if `principal` may read it (replay it, with `replay`): an `infer`
    /// key reads its own only, and another's is as absent as an unknown id.
    public func record(id: String, readableBy principal: Principal, replay: Bool = false) async throws -> InferenceRecord? {
        guard let record = try await record(id: id), principal.mayRead(recordByKey: record.callerKey, replay: replay) else { return nil }
        return record
    }

    /// Whether inferences are recorded (`ledger` is not `off`).
    public var isEnabled: Bool { ledger != nil }

    /// The most records one page holds.
    public static let pageSizes = 1...1000

    /// A page of the records matching `filter` that `principal` may read, newest first, after the
    /// cursor `after`. `BAD_USER_INPUT` when the ledger is off or `first` is outside
    /// `pageSizes`; `FORBIDDEN` when the filter names callers the principal may not read.
    public func inferences(_ filter: InferenceFilter, first: Int, after: String? = nil, readableBy principal: Principal) async throws -> (
        records: [InferenceRecord], hasMore: Bool
    ) {
        guard let ledger else { throw ServingError(.badUserInput, "the ledger is off") }
        guard Self.pageSizes.contains(first) else { throw ServingError(.badUserInput, "first must be between 1 and 1000") }
        return try await ledger.inferences(try scoped(filter, for: principal), first: first, after: after)
    }

    /// `filter` narrowed to what `principal` may read: a key that reads only its own records gets
    /// them whatever the filter says of callers, and FORBIDDEN when it names another (or may read none).
    func scoped(_ filter: InferenceFilter, for principal: Principal) throws(AccessError) -> InferenceFilter {
        guard !principal.permits(.readAllInferences) else { return filter }
        guard principal.permits(.readOwnInferences), let name = principal.name, let keyID = principal.keyID else {
            throw AccessError.forbidden("this key may not read recorded inferences")
        }
        if let asked = filter.caller, asked != name {
            throw AccessError.forbidden("a key with role \(principal.role.rawValue) reads its own inferences only (caller: \"\(name)\")")
        }
        var scoped = filter
        scoped.callerKey = keyID
        return scoped
    }

    /// Stores an evaluation (nothing when the ledger is off). A failed write is thrown: an
    /// evaluation that cannot be read back must not look stored.
    func saveEvaluation(_ evaluation: EvaluationRecord) async throws {
        guard let ledger else { return }
        try await ledger.saveEvaluation(evaluation)
    }

    /// An evaluation if `principal` may read it (as for its inferences: a key that reads its own
    /// reads the evaluations it ran; another's is as absent as an unknown id).
    public func evaluation(id: String, readableBy principal: Principal) async throws -> EvaluationRecord? {
        guard let ledger else { throw ServingError(.badUserInput, "the ledger is off: evaluations are not kept") }
        guard let record = try await ledger.evaluation(id: id), principal.mayRead(recordByKey: record.callerKey) else { return nil }
        return record
    }

    /// The evaluations matching `filter` that `principal` may read, newest first.
    public func evaluations(_ filter: EvaluationFilter, first: Int, readableBy principal: Principal) async throws -> [EvaluationRecord] {
        guard let ledger else { throw ServingError(.badUserInput, "the ledger is off: evaluations are not kept") }
        guard Self.pageSizes.contains(first) else { throw ServingError(.badUserInput, "first must be between 1 and 1000") }
        var scopedFilter = filter
        scopedFilter.callerKey = try scoped(InferenceFilter(callerKey: filter.callerKey), for: principal).callerKey
        return try await ledger.evaluations(scopedFilter, first: first)
    }

    /// Writes a record (sealed by `seal` when given: its receipt, made with its position); with the
    /// `warn` policy a failed write is logged and counted, not thrown. Returns the record as stored.
    @discardableResult
    func store(_ record: InferenceRecord, seal: (@Sendable (InferenceRecord) -> LedgerSeal)? = nil) async throws -> InferenceRecord? {
        guard let ledger else { return nil }
        do {
            let start = ContinuousClock.now
            let stored = try await ledger.record(record, seal: seal)
            let elapsed = ContinuousClock.now - start
            Timer(label: MetricName.ledgerWriteDuration).record(duration: elapsed)
            writeDurations.record(elapsed)
            counters.withLock { $0.records += 1 }
            return stored
        } catch {
            counters.withLock { $0.failures += 1 }
            logger.warning(
                "ledger write failed", metadata: ["id": "\(record.id)", "request_id": "\(record.requestID ?? "-")", "error": "\(error)"])
            if policy == .fail { throw ServingError(.internalError, "the inference could not be recorded in the ledger") }
            return nil
        }
    }

    /// What is known of an inference when it starts; becomes a record when it ends.
    struct Draft: Sendable {
        let id: String
        let created: Date
        let request: GenerationRequest
        let revision: ModelLineage
        let caller: RequestInfo
        /// The request's trace (its id is recorded; the record span is its child).
        let context: ServiceContext

        func finished(_ summary: GenerationSummary, engine: String) -> Record {
            Record(draft: self, summary: summary, status: summary.finishReason == .cancelled ? .cancelled : .completed, error: nil, engine: engine)
        }

        func failed(_ error: any Error, engine: String) -> Record {
            let classified = ErrorCode.classify(error)
            return Record(
                draft: self, summary: .cancelled(text: "", seed: request.sampling.seed), status: .failed,
                error: "\(classified.code.rawValue): \(classified.message)", engine: engine)
        }
    }

    /// A draft with its outcome.
    struct Record: Sendable {
        let draft: Draft
        let summary: GenerationSummary
        let status: RecordStatus
        let error: String?
        let engine: String
    }

    /// Writes the outcome's record; returns its receipt (nil without a receipt key).
    @discardableResult
    func store(_ outcome: Record) async throws -> String? {
        try await withSpan("record", context: outcome.draft.context) { _ in
            let (record, seal) = makeRecord(outcome)
            return try await store(record, seal: seal)?.receipt
        }
    }

    /// The outcome's record, and what seals it with a receipt (nil without a receipt key).
    private func makeRecord(_ outcome: Record) -> (InferenceRecord, (@Sendable (InferenceRecord) -> LedgerSeal)?) {
        let draft = outcome.draft
        let summary = outcome.summary
        let revision = draft.revision
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        func json(_ value: some Encodable) -> String { String(decoding: (try? encoder.encode(value)) ?? Data("null".utf8), as: UTF8.self) }
        let inputKind: InputKind
        let input: String
        switch draft.request.input {
        case .prompt(let prompt):
            inputKind = .prompt
            input = prompt
        case .messages(let messages):
            inputKind = .messages
            input = json(messages)
        }
        let lineage = LineageDigest(
            pipeline: revision.pipeline.map(\.name), datasets: revision.datasets.map { ["path": $0.path, "md5": $0.md5] },
            parameters: revision.parameters.map { ["file": $0.file, "key": $0.key, "value": $0.value] },
            code: revision.code.map { ["path": $0.path, "md5": $0.md5] })
        // Whole milliseconds: what both ledgers keep exactly, so the time a receipt signs is the
        // time the row gives back.
        let created = Date(timeIntervalSince1970: (draft.created.timeIntervalSince1970 * 1000).rounded(.down) / 1000)
        let record = InferenceRecord(
            id: draft.id, createdAt: created, caller: draft.caller.caller, status: outcome.status, error: outcome.error,
            model: revision.model.name, revision: revision.id, commit: revision.commit.sha, artifactMD5: revision.artifact.md5,
            lineage: json(lineage), engine: outcome.engine, sampling: json(draft.request.sampling), seed: Int64(draft.request.sampling.seed),
            inputKind: inputKind,
            input: storeText ? (outcome.status == .failed ? Self.excerpt(input) : input) : InferenceRecord.digest(input, salt: salt),
            output: storeText ? summary.text : InferenceRecord.digest(summary.text, salt: salt), finishReason: summary.finishReason.rawValue,
            promptTokens: summary.promptTokenCount, completionTokens: summary.completionTokenCount,
            completionTokenIDs: storeText ? json(summary.completionTokens) : InferenceRecord.digest(json(summary.completionTokens), salt: salt),
            timeToFirstTokenMs: summary.timeToFirstTokenMs, totalMs: summary.totalMs,
            requestID: draft.caller.requestID, traceID: draft.context.otelTraceID, callerKey: draft.caller.callerKey,
            artifactSHA256: summary.weights?.sha256,
            signature: summary.weights.map {
                json(SignatureCheck(status: $0.status.rawValue, file: $0.file, method: $0.method, signer: $0.signer, reason: $0.reason))
            })
        guard let receiptKey else { return (record, nil) }
        // The statement is made here, over the answer and input as they were (before any privacy
        // digest); inside the ledger's write only its position is placed and the payload signed.
        let logger = self.logger
        let started = ContinuousClock.now
        let pending: InferenceReceipt.PendingStatement?
        do {
            pending = try InferenceReceipt.prepare(
                record, text: summary.text, tokens: summary.completionTokens, input: input, signer: receiptKey.keyID)
        } catch {
            logger.warning("receipt not made", metadata: ["id": "\(record.id)", "error": "\(error)"])
            pending = nil
        }
        let prepared = ContinuousClock.now - started
        let durations = receiptDurations
        return (
            record,
            { record in
                let sealing = ContinuousClock.now
                let (seal, error) = InferenceReceipt.seal(pending, position: record.position, with: receiptKey)
                durations.record(prepared + (ContinuousClock.now - sealing))
                if let error {
                    // The record is kept without a receipt rather than lost (`ledger verify` names it).
                    logger.warning("receipt not signed", metadata: ["id": "\(record.id)", "error": "\(error)"])
                }
                return seal
            }
        )
    }

    /// A signature check as a record keeps it (`InferenceRecord.signature`).
    struct SignatureCheck: Encodable {
        let status: String
        let file: String?
        let method: String?
        let signer: String?
        let reason: String?
    }

    /// A failed request's input as stored: whole when short, else its first bytes (whole
    /// characters), its size and its SHA-256 digest, so a failure can be matched to what was sent
    /// without the ledger holding every large input that failed.
    static func excerpt(_ input: String) -> String {
        let size = input.utf8.count
        guard size > failedInputExcerpt else { return input }
        var kept = ""
        var bytes = 0
        for character in input {
            let length = character.utf8.count
            if bytes + length > failedInputExcerpt { break }
            kept.append(character)
            bytes += length
        }
        return kept + InferenceRecord.truncationMark + "\(size) bytes, \(InferenceRecord.digest(input))]"
    }

    /// The lineage stored with a record.
    private struct LineageDigest: Encodable {
        let pipeline: [String]
        let datasets: [[String: String]]
        let parameters: [[String: String]]
        let code: [[String: String]]
    }
}
