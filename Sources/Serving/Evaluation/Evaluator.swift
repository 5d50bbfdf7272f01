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
    public func run(
        _ revision: ModelLineage, dataset: String, datasetRevision: String?, sampling: SamplingParameters, scorers: [Scorer],
        concurrency: Int = 4, caller: RequestInfo = RequestInfo(), progress: (@Sendable (Int, Int) -> Void)? = nil
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
        let id = RecordID.make()
        let width = max(1, min(concurrency, 64))
        var results = [EvaluationResult.Item?](repeating: nil, count: set.items.count)
        try await withThrowingTaskGroup(of: (Int, EvaluationResult.Item).self) { group in
            var next = 0
            var done = 0
            func start() {
                guard next < set.items.count else { return }
                let index = next
                next += 1
                let item = set.items[index]
                group.addTask {
                    (index, await self.answer(item, revision: revision, sampling: sampling, scorers: scorers, evaluation: id, caller: caller))
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
            id: id, revision: revision, dataset: file.path, datasetCommit: file.commit, datasetMD5: DVCHash.md5(data), scorers: scorers,
            sampling: sampling, items: results.compactMap { $0 }, lineErrors: set.errors)
    }

    private func answer(
        _ item: EvaluationItem, revision: ModelLineage, sampling: SamplingParameters, scorers: [Scorer], evaluation: String, caller: RequestInfo
    ) async -> EvaluationResult.Item {
        let input: GenerationRequest.Input =
            switch item.input {
            case .prompt(let text): .prompt(text)
            case .messages(let messages): .messages(messages.map { ChatMessage(role: $0.role, content: $0.content) })
            }
        var caller = caller
        caller.requestID = "eval-\(evaluation)#\(item.id)"
        let id = RecordID.make()
        do {
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
