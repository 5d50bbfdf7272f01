import Access
import Crypto
import DVCKit
public import Evaluation
public import Foundation
import GitStore
public import Inference
public import Ledger
public import Lineage
import Logging

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
        public internal(set) var scores: [Double?]
        public let error: String?
        /// The generated token ids, where the ledger holds them as ids (not digests).
        public var tokenIDs: [Int32]?
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
    /// Items in the set (`items` holds fewer while it runs, or when it stopped part way).
    public let total: Int
    public var status: EvaluationStatus = .completed
    public var createdAt = Date()

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
        concurrency: Int = 4, fresh: Bool = false, judgeTemplate: String = Scorer.defaultJudgeTemplate, caller: RequestInfo = RequestInfo(),
        progress: (@Sendable (Int, Int) -> Void)? = nil
    ) async throws -> EvaluationResult {
        let judges = try await resolveJudges(scorers, template: judgeTemplate)
        let (file, data, set) = try await readSet(dataset, at: datasetRevision)
        let datasetMD5 = DVCHash.md5(data)
        let id =
            fresh
            ? RecordID.make() : Self.id(revision: revision.id, dataset: file.path, md5: datasetMD5, sampling: sampling, owner: caller.principal.keyID)
        let recorded = try await recordedAnswers(of: id, caller: caller)
        var results = [EvaluationResult.Item?](repeating: nil, count: set.items.count)
        var pending: [Int] = []
        for (index, item) in set.items.enumerated() {
            if let record = recorded[item.id] {
                results[index] = Self.item(item, answeredBy: record, scorers: scorers)
            } else {
                pending.append(index)
            }
        }
        let reused = set.items.count - pending.count
        func result(_ status: EvaluationStatus) -> EvaluationResult {
            var result = EvaluationResult(
                id: id, revision: revision, dataset: file.path, datasetCommit: file.commit, datasetMD5: datasetMD5, scorers: scorers,
                sampling: sampling, items: results.compactMap { $0 }, lineErrors: set.errors, reused: reused, total: set.items.count)
            result.status = status
            return result
        }
        // Registered before the row is written: a second run of a running evaluation is refused
        // before it can touch the first one's row.
        let tracker = try services.evaluations.started(id, revision: revision.id, total: set.items.count, done: reused, owner: caller.principal.keyID)
        defer { services.evaluations.finished(id) }
        try await save(result(.running), caller: caller)
        let width = max(1, min(concurrency, 64))
        await withTaskGroup(of: (Int, EvaluationResult.Item).self) { group in
            var next = 0
            func start() {
                guard next < pending.count, !tracker.isCancelled, !Task.isCancelled else { return }
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
            while let (index, answered) = await group.next() {
                // An item stopped by the cancellation is not an answer: a rerun asks it again.
                if answered.error == nil || !(tracker.isCancelled || Task.isCancelled) {
                    results[index] = answered
                    tracker.answered(tokens: answered.tokenIDs?.count ?? 0, failed: answered.error != nil)
                    progress?(tracker.done, set.items.count)
                }
                start()
            }
        }
        // Stopped part way (a cancellation after the last item started still lets every one finish).
        let stopped = (tracker.isCancelled || Task.isCancelled) && results.contains { $0 == nil }
        if !judges.isEmpty, !stopped {
            results = await judged(results, by: judges, template: judgeTemplate, recorded: recorded, evaluation: id, width: width, caller: caller)
        }
        let final = result(stopped ? .cancelled : .completed)
        // Saved from a task of its own: a cancelled task's writes would not start.
        let caller = caller
        try await Task { try await self.save(final, caller: caller) }.value
        return final
    }

    /// A judge: the scorer's index, the revision it names, and the tag its request ids carry (a
    /// digest of that revision and the template, so another judge or template asks again).
    struct Judge: Sendable {
        let index: Int
        let revision: ModelLineage
        let tag: String
    }

    /// The judges among `scorers`, their specs resolved once. `BAD_USER_INPUT` for a template
    /// without `{answer}`.
    private func resolveJudges(_ scorers: [Scorer], template: String) async throws -> [Judge] {
        var judges: [Judge] = []
        for (index, scorer) in scorers.enumerated() {
            guard case .judge(let spec) = scorer else { continue }
            guard template.contains("{answer}"), template.utf8.count <= 16 << 10 else {
                throw ServingError(.badUserInput, "a judge template holds {answer} (and is at most 16 KiB)")
            }
            let lineage = services.lineage
            let revision = try await offload { try lineage.lineage(spec) }
            let digest = SHA256.hash(data: Data((revision.id + "\u{0}" + template).utf8))
            judges.append(Judge(index: index, revision: revision, tag: DVCHash.hexString(digest.prefix(6))))
        }
        return judges
    }

    /// `results` with each judge's verdict on every answered item: read from the judge's recorded
    /// answer (an earlier run asked it) or asked now, `width` at a time.
    private func judged(
        _ results: [EvaluationResult.Item?], by judges: [Judge], template: String, recorded: [String: InferenceRecord], evaluation: String,
        width: Int, caller: RequestInfo
    ) async -> [EvaluationResult.Item?] {
        var results = results
        var asks: [(item: Int, judge: Judge)] = []
        for (index, result) in results.enumerated() {
            guard let result, result.error == nil, result.output != nil else { continue }
            for judge in judges {
                if let record = recorded["\(result.item.id)#judge-\(judge.tag)"], record.status == .completed {
                    results[index]?.scores[judge.index] = Scorer.verdict(in: record.output)
                } else {
                    asks.append((index, judge))
                }
            }
        }
        let snapshot = results
        await withTaskGroup(of: (Int, Int, Double?).self) { group in
            var next = 0
            func start() {
                guard next < asks.count, !Task.isCancelled else { return }
                let (index, judge) = asks[next]
                next += 1
                guard let result = snapshot[index], let answer = result.output else { return }
                group.addTask {
                    let verdict = await self.ask(judge, item: result.item, answer: answer, template: template, evaluation: evaluation, caller: caller)
                    return (index, judge.index, verdict)
                }
            }
            for _ in 0..<width { start() }
            while let (index, scorer, verdict) = await group.next() {
                results[index]?.scores[scorer] = verdict
                start()
            }
        }
        return results
    }

    /// The judge's verdict on `answer` (nil when it failed or said nothing readable); its answer is
    /// recorded like any other, under `eval-<id>#<item id>#judge-<tag>`.
    private func ask(_ judge: Judge, item: EvaluationItem, answer: String, template: String, evaluation: String, caller: RequestInfo) async
        -> Double?
    {
        var caller = caller.nextOperation()
        caller.requestID = "eval-\(evaluation)#\(item.id)#judge-\(judge.tag)"
        do {
            try caller.principal.meter?.admitRequest()
            let request = GenerationRequest(
                input: .messages([ChatMessage(role: "user", content: Scorer.judgePrompt(template, item: item, answer: answer))]),
                sampling: SamplingParameters(temperature: 0, seed: 0, maxTokens: 8))
            var verdict: InferenceAnswer?
            for try await event in try await services.inference.start(request, on: judge.revision, by: caller) {
                if case .payload(let done) = event { verdict = done }
            }
            return verdict.flatMap { Scorer.verdict(in: $0.summary.text) }
        } catch {
            services.logger.warning(
                "judge failed", metadata: ["judge": "\(judge.revision.id)", "item": "\(item.id)", "error": "\(ErrorCode.classify(error).message)"])
            return nil
        }
    }

    /// The set at `path` and `revision`: the file, its bytes and its items.
    private func readSet(_ path: String, at revision: String?) async throws -> (TrackedFile, Data, EvaluationSet) {
        let lineage = services.lineage
        let file = try await offload { try lineage.trackedFile(path, at: revision) }
        let data = try await services.artifacts.read(file, maxBytes: Self.maxSetBytes)
        let set: EvaluationSet
        do {
            set = try EvaluationSet(jsonl: data)
        } catch {
            throw ServingError(.badUserInput, "\(error)")
        }
        guard !set.items.isEmpty else {
            throw ServingError(.badUserInput, "\(path) holds no item (\(set.errors.prefix(3).map(\.description).joined(separator: "; ")))")
        }
        return (file, data, set)
    }

    /// An item answered by a recorded inference, scored.
    static func item(_ item: EvaluationItem, answeredBy record: InferenceRecord, scorers: [Scorer]) -> EvaluationResult.Item {
        let answer = Scorer.Answer(
            text: record.output, timeToFirstTokenMs: record.timeToFirstTokenMs,
            tokensPerSecond: GenerationSummary.tokensPerSecond(
                tokens: record.completionTokens, totalMs: record.totalMs, firstTokenMs: record.timeToFirstTokenMs))
        return EvaluationResult.Item(
            item: item, inferenceID: record.id, output: record.output, finishReason: record.finishReason,
            scores: scorers.map { $0.score(answer, item: item) }, error: nil,
            tokenIDs: try? JSONDecoder().decode([Int32].self, from: Data(record.completionTokenIDs.utf8)))
    }

    /// Writes the evaluation's row (when the ledger is on).
    private func save(_ result: EvaluationResult, caller: RequestInfo) async throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        let now = Date()
        let record = EvaluationRecord(
            id: result.id, createdAt: now, updatedAt: now, caller: caller.principal.name, callerKey: caller.principal.keyID,
            status: result.status, model: result.revision.model.name, revision: result.revision.id, commit: result.revision.commit.sha,
            dataset: result.dataset, datasetCommit: result.datasetCommit, datasetMD5: result.datasetMD5,
            sampling: String(decoding: try encoder.encode(result.sampling), as: UTF8.self), scorers: result.scorers.map(\.description),
            total: result.total, done: result.items.count, failed: result.items.filter { $0.error != nil }.count, reused: result.reused,
            means: result.summaries.map(\.mean),
            items: result.items.map {
                EvaluationRecord.Item(
                    id: $0.item.id, line: $0.item.line, inferenceID: $0.inferenceID, finishReason: $0.finishReason, scores: $0.scores,
                    error: $0.error)
            },
            badLines: result.lineErrors.map { EvaluationRecord.BadLine(line: $0.line, reason: $0.reason) })
        try await services.recorder.saveEvaluation(record)
    }

    /// A stored evaluation read back as `principal` may read it: its set read again at the
    /// commit it was read at, its answers from the ledger, its scores as stored. Nil when absent
    /// (or another key's).
    public func load(_ id: String, caller: RequestInfo) async throws -> EvaluationResult? {
        guard let record = try await services.recorder.evaluation(id: id, readableBy: caller.principal) else { return nil }
        return try await load(record, caller: caller)
    }

    /// The evaluations matching `filter` that `caller` may read, newest first, read back (100 at most).
    public func list(_ filter: EvaluationFilter, first: Int, caller: RequestInfo) async throws -> [EvaluationResult] {
        guard (1...20).contains(first) else { throw ServingError(.badUserInput, "first must be between 1 and 20") }
        var results: [EvaluationResult] = []
        for record in try await services.recorder.evaluations(filter, first: first, readableBy: caller.principal) {
            results.append(try await load(record, caller: caller))
        }
        return results
    }

    /// Compares two stored evaluations (`NOT_FOUND` for one `caller` cannot read), with the
    /// lineage diff of their revisions when they are revisions of one model.
    public func compare(_ a: String, _ b: String, caller: RequestInfo) async throws -> EvaluationComparison {
        guard let old = try await load(a, caller: caller) else { throw ServingError(.notFound, "no evaluation \(a)") }
        guard let new = try await load(b, caller: caller) else { throw ServingError(.notFound, "no evaluation \(b)") }
        var diff: LineageDiff?
        if old.revision.model.name == new.revision.model.name {
            let lineage = services.lineage
            diff = try await offload { try lineage.compare(old.revision.id, new.revision.id) }
        }
        return try EvaluationComparison(old, new, lineage: diff)
    }

    private func load(_ record: EvaluationRecord, caller: RequestInfo) async throws -> EvaluationResult {
        let lineage = services.lineage
        let revision = try await offload { try lineage.lineage(record.revision) }
        let (_, data, set) = try await readSet(record.dataset, at: record.datasetCommit)
        guard DVCHash.md5(data) == record.datasetMD5 else {
            throw ServingError(.internalError, "evaluation \(record.id): its set no longer has the md5 it was run on")
        }
        let scorers = try record.scorers.map { try Scorer(parsing: $0) }
        let sampling = try JSONDecoder().decode(SamplingParameters.self, from: Data(record.sampling.utf8))
        let answers = try await recordedAnswers(of: record.id, caller: caller)
        let byID = Dictionary(set.items.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
        let items = record.items.compactMap { stored -> EvaluationResult.Item? in
            guard let item = byID[stored.id] else { return nil }
            let answer = answers[stored.id].flatMap { $0.id == stored.inferenceID ? $0 : nil }
            var result = EvaluationResult.Item(
                item: item, inferenceID: stored.inferenceID, output: answer?.output, finishReason: stored.finishReason,
                // One per scorer whatever the row says (a row written by hand or by another version).
                scores: scorers.indices.map { $0 < stored.scores.count ? stored.scores[$0] : nil },
                error: stored.error)
            result.tokenIDs = answer.flatMap { try? JSONDecoder().decode([Int32].self, from: Data($0.completionTokenIDs.utf8)) }
            return result
        }
        var result = EvaluationResult(
            id: record.id, revision: revision, dataset: record.dataset, datasetCommit: record.datasetCommit, datasetMD5: record.datasetMD5,
            scorers: scorers, sampling: sampling, items: items,
            lineErrors: record.badLines.map { EvaluationSet.LineError(line: $0.line, reason: $0.reason) },
            reused: record.reused, total: record.total)
        result.status = record.status
        result.createdAt = record.createdAt
        return result
    }

    /// The id of an evaluation: a digest of what decides its answers, and of the key that runs it
    /// (with keys, each key's evaluation is its own: nobody resumes into another's).
    static func id(revision: String, dataset: String, md5: String, sampling: SamplingParameters, owner: String?) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        let samplingJSON = (try? encoder.encode(sampling)).map { String(decoding: $0, as: UTF8.self) } ?? ""
        let digest = SHA256.hash(data: Data(([revision, dataset, md5, samplingJSON] + (owner.map { [$0] } ?? [])).joined(separator: "\u{0}").utf8))
        return "ev" + DVCHash.hexString(digest.prefix(12))
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
                scores: scorers.map { $0.score(scored, item: item) }, error: nil, tokenIDs: summary.completionTokens)
        } catch {
            return EvaluationResult.Item(
                item: item, inferenceID: nil, output: nil, finishReason: nil, scores: scorers.map { _ in nil },
                // As any answer shows an error: classified and redacted (no path, URL or secret).
                error: ErrorCode.classify(error).message)
        }
    }
}

// MARK: Promote

extension Evaluator {
    /// A scorer's mean an evaluation must reach.
    public struct Threshold: Sendable, Hashable {
        public let scorer: String
        public let minimum: Double

        public init(scorer: String, minimum: Double) {
            self.scorer = scorer
            self.minimum = minimum
        }

        /// `SCORER=MIN` (the CLI's `--fail-under`); nil when it is not that.
        public init?(parsing text: String) {
            guard let equals = text.lastIndex(of: "="), let minimum = Double(text[text.index(after: equals)...]), minimum.isFinite,
                equals > text.startIndex
            else { return nil }
            self.init(scorer: String(text[..<equals]), minimum: minimum)
        }
    }

    /// A promotion: the tags written (and pushed), the revision they name, the evaluation that let it.
    public struct Promotion: Sendable {
        public let tags: [String]
        public let revision: ModelLineage
        public let evaluation: EvaluationResult
    }

    /// The thresholds `result` misses, as `scorer mean < minimum` (a scorer without a mean misses).
    /// `BAD_USER_INPUT` for a threshold on a scorer the evaluation did not use.
    public static func misses(_ thresholds: [Threshold], in result: EvaluationResult) throws -> [String] {
        let summaries = result.summaries
        return try thresholds.compactMap { threshold in
            if threshold.scorer == Scorer.timeToFirstToken.description {
                throw ServingError(.badUserInput, "ttft is better lower: a minimum it must reach does not gate anything")
            }
            guard let summary = summaries.first(where: { $0.scorer == threshold.scorer }) else {
                throw ServingError(
                    .badUserInput,
                    "evaluation \(result.id) has no scorer \(threshold.scorer) (it has \(summaries.map(\.scorer).joined(separator: ", ")))")
            }
            guard let mean = summary.mean, mean >= threshold.minimum else {
                return "\(threshold.scorer) \(summary.mean.map { String(format: "%.4f", $0) } ?? "none") < \(threshold.minimum)"
            }
            return nil
        }
    }

    /// Registers `version` and/or assigns `stage` to the revision evaluation `id` ran on, only
    /// when it is `model`'s, completed with no failed item, and reaches every threshold (at least
    /// one); `FAILED_PRECONDITION` otherwise, and no tag is written. The tags are GTO's, pushed to
    /// the repository's remote; the registry here shows them at once. Takes the admin role.
    public func promote(
        model: String, version: String?, stage: String?, evaluation id: String, thresholds: [Threshold], caller: RequestInfo
    ) async throws -> Promotion {
        guard caller.principal.permits(.administer) else { throw AccessError.forbidden("promote takes the admin role") }
        guard !thresholds.isEmpty else { throw ServingError(.badUserInput, "promote takes at least one threshold the evaluation must reach") }
        guard let evaluation = try await load(id, caller: caller) else { throw ServingError(.notFound, "no evaluation \(id)") }
        guard evaluation.revision.model.name == model else {
            throw ServingError(.badUserInput, "evaluation \(id) ran on \(evaluation.revision.model.name), not \(model)")
        }
        let failed = evaluation.items.filter { $0.error != nil }.count
        guard evaluation.lineErrors.isEmpty else {
            throw ServingError(.failedPrecondition, "evaluation \(id) left \(evaluation.lineErrors.count) bad line(s) of its set unasked")
        }
        guard evaluation.status == .completed, evaluation.items.count == evaluation.total, failed == 0 else {
            throw ServingError(
                .failedPrecondition,
                "evaluation \(id) is \(evaluation.status.rawValue) with \(evaluation.items.count) of \(evaluation.total) items answered, \(failed) failed"
            )
        }
        let misses = try Self.misses(thresholds, in: evaluation)
        guard misses.isEmpty else {
            throw ServingError(.failedPrecondition, "evaluation \(id) did not pass: \(misses.joined(separator: "; "))")
        }
        let lineage = services.lineage
        let commit = evaluation.revision.commit.sha
        let tags = try await offload { try lineage.promote(model: model, commit: commit, version: version, stage: stage) }
        services.logger.info(
            "promoted",
            metadata: [
                "model": "\(model)", "tags": "\(tags.joined(separator: ","))", "evaluation": "\(id)", "caller": "\(caller.principal.name ?? "-")",
            ])
        return Promotion(tags: tags, revision: evaluation.revision, evaluation: evaluation)
    }
}
