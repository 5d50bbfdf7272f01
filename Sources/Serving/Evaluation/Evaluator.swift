import Access
import Crypto
import DVCKit
public import Evaluation
public import Foundation
public import Inference
import Ledger
public import Lineage

/// One evaluation: a model revision's answers to every item of an evaluation set at a revision,
/// each recorded in the ledger (its request id `eval-<id>#<item id>` names the evaluation and the
/// item), scored by each scorer.
public struct EvaluationResult: Sendable {
    public struct Item: Sendable {
        public let item: EvaluationItem
        /// The ledger id of its inference (nil when it failed before one was recorded).
        public let inferenceID: String?
        public let output: String?
        public let finishReason: String?
        /// One per scorer, in the evaluation's order; nil where the scorer does not apply or the item failed.
        public let scores: [Double?]
        public let error: String?
    }

    public let id: String
    public let revision: ModelLineage
    /// The set's path, the commit it was read at, and the digest (md5) of its bytes.
    public let dataset: String
    public let datasetCommit: String
    public let datasetMD5: String
    public let scorers: [Scorer]
    public let sampling: SamplingParameters
    public let items: [Item]
    /// Lines of the set that are not items (reported, not run).
    public let lineErrors: [EvaluationSet.LineError]
    /// Items whose answer was already in the ledger (an earlier run of the same evaluation that
    /// stopped part way): read back, not asked again.
    public let reused: Int

    /// Each scorer's mean, count and the items that failed.
    public var summaries: [ScorerSummary] {
        let failures = items.filter { $0.error != nil }.count
        return scorers.enumerated().map { index, scorer in
            ScorerSummary(scorer: scorer.description, scores: items.map { $0.scores[index] }, failures: failures)
        }
    }

    /// DVC's metrics format: one number per scorer (its mean), with the item counts.
    public var metrics: [String: Any] {
        var scores: [String: Any] = [:]
        for summary in summaries { scores[summary.scorer] = summary.mean ?? NSNull() }
        return [
            "scores": scores, "items": items.count, "failed": items.filter { $0.error != nil }.count, "bad_lines": lineErrors.count,
        ]
    }
}

/// Runs evaluations through the same request path as any inference (resolve → fetch → load →
/// generate → record), `concurrency` items at a time, with the caller's quotas.
public struct Evaluator: Sendable {
    let services: Services

    public init(services: Services) { self.services = services }

    /// Sets larger than this are refused.
    public static let maxSetBytes = 64 << 20

    /// Evaluates `revision` on the set at `dataset` (a path in the repository) at `datasetRevision`
    /// (a branch, tag or commit; nil: the default branch). Every item gets `sampling` with its
    /// seed (greedy by default: an evaluation is reproducible). `progress(done, total)` after each item.
    ///
    /// An evaluation's id follows from what decides its answers (the canonical revision, the
    /// set's path and md5, the sampling): a run of the same evaluation finds the answers an
    /// earlier one recorded (by their request ids) and asks only the items still unanswered, so
    /// a run killed part way and started again answers no item twice. `fresh` gives the run an id
    /// of its own instead.
    public func run(
        _ revision: ModelLineage, dataset: String, datasetRevision: String?, sampling: SamplingParameters, scorers: [Scorer],
        concurrency: Int = 4, fresh: Bool = false, caller: RequestInfo = RequestInfo(), progress: (@Sendable (Int, Int) -> Void)? = nil
    ) async throws -> EvaluationResult {
        let lineage = services.lineage
        let file = try await offload { try lineage.trackedFile(dataset, at: datasetRevision) }
        let data = try await services.artifacts.read(file, maxBytes: Self.maxSetBytes)
        let set: EvaluationSet
        do {
            set = try EvaluationSet(jsonl: data)
        } catch {
            throw ServingError(.badUserInput, "\(error)")
        }
        guard !set.items.isEmpty else {
            throw ServingError(.badUserInput, "\(dataset) holds no item (\(set.errors.prefix(3).map(\.description).joined(separator: "; ")))")
        }
        let datasetMD5 = DVCHash.md5(data)
        let id = fresh ? RecordID.make() : Self.id(revision: revision.id, dataset: file.path, md5: datasetMD5, sampling: sampling)
        let recorded = try await recordedAnswers(of: id, caller: caller)
        var results = [EvaluationResult.Item?](repeating: nil, count: set.items.count)
        var pending: [Int] = []
        for (index, item) in set.items.enumerated() {
            if let record = recorded[item.id] {
                let answer = Scorer.Answer(
                    text: record.output, timeToFirstTokenMs: record.timeToFirstTokenMs,
                    tokensPerSecond: GenerationSummary.tokensPerSecond(
                        tokens: record.completionTokens, totalMs: record.totalMs, firstTokenMs: record.timeToFirstTokenMs))
                results[index] = EvaluationResult.Item(
                    item: item, inferenceID: record.id, output: record.output, finishReason: record.finishReason,
                    scores: scorers.map { $0.score(answer, item: item) }, error: nil)
            } else {
                pending.append(index)
            }
        }
        let reused = set.items.count - pending.count
        let width = max(1, min(concurrency, 64))
        try await withThrowingTaskGroup(of: (Int, EvaluationResult.Item).self) { group in
            var next = 0
            var done = reused
            func start() {
                guard next < pending.count else { return }
                let index = pending[next]
                next += 1
                let item = set.items[index]
                // The request that asked counted once already; every further item counts.
                let counted = next > 1
                group.addTask {
                    (
                        index,
                        await self.answer(
                            item, revision: revision, sampling: sampling, scorers: scorers, evaluation: id, caller: caller, counted: counted)
                    )
                }
            }
            for _ in 0..<width { start() }
            while let (index, result) = try await group.next() {
                results[index] = result
                done += 1
                progress?(done, set.items.count)
                start()
            }
        }
        return EvaluationResult(
            id: id, revision: revision, dataset: file.path, datasetCommit: file.commit, datasetMD5: datasetMD5, scorers: scorers,
            sampling: sampling, items: results.compactMap { $0 }, lineErrors: set.errors, reused: reused)
    }

    /// The id of an evaluation: a digest of what decides its answers.
    static func id(revision: String, dataset: String, md5: String, sampling: SamplingParameters) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        let samplingJSON = (try? encoder.encode(sampling)).map { String(decoding: $0, as: UTF8.self) } ?? ""
        let digest = SHA256.hash(data: Data([revision, dataset, md5, samplingJSON].joined(separator: "\u{0}").utf8))
        return "ev" + digest.prefix(12).map { String(format: "%02x", $0) }.joined()
    }

    /// The completed answers recorded under evaluation `id`, by item id (the first of each).
    private func recordedAnswers(of id: String, caller: RequestInfo) async throws -> [String: InferenceRecord] {
        guard services.recorder.isEnabled else { return [:] }
        let prefix = "eval-\(id)#"
        var found: [String: InferenceRecord] = [:]
        var after: String?
        while true {
            var filter = InferenceFilter()
            filter.requestIDPrefix = prefix
            let page = try await services.recorder.inferences(filter, first: 1000, after: after, readableBy: caller.principal)
            for record in page.records where record.status == .completed {
                guard let key = record.requestID?.dropFirst(prefix.count) else { continue }
                found[String(key)] = record
            }
            guard page.hasMore, let last = page.records.last?.id else { return found }
            after = last
        }
    }

    private func answer(
        _ item: EvaluationItem, revision: ModelLineage, sampling: SamplingParameters, scorers: [Scorer], evaluation: String, caller: RequestInfo,
        counted: Bool
    ) async -> EvaluationResult.Item {
        let input: GenerationRequest.Input =
            switch item.input {
            case .prompt(let text): .prompt(text)
            case .messages(let messages): .messages(messages.map { ChatMessage(role: $0.role, content: $0.content) })
            }
        // Each item is an operation of its own: the cap on the generations one request may start
        // does not apply (an evaluation is many requests), the key's quotas do — every item after
        // the first counts against its requests per minute, as a further request would.
        var caller = caller.nextOperation()
        caller.requestID = "eval-\(evaluation)#\(item.id)"
        let id = RecordID.make()
        do {
            if counted { try caller.principal.meter?.admitRequest() }
            var answer: InferenceAnswer?
            for try await event in try await services.inference.start(
                GenerationRequest(input: input, sampling: sampling), on: revision, by: caller, id: id)
            {
                if case .payload(let done) = event { answer = done }
            }
            guard let summary = answer?.summary else { throw CancellationError() }
            let scored = Scorer.Answer(text: summary.text, timeToFirstTokenMs: summary.timeToFirstTokenMs, tokensPerSecond: summary.tokensPerSecond)
            return EvaluationResult.Item(
                item: item, inferenceID: id, output: summary.text, finishReason: summary.finishReason.rawValue,
                scores: scorers.map { $0.score(scored, item: item) }, error: nil)
        } catch {
            return EvaluationResult.Item(
                item: item, inferenceID: nil, output: nil, finishReason: nil, scores: scorers.map { _ in nil }, error: "\(error)")
        }
    }
}
