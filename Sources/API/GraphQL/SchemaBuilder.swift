import ArtifactStore
import Evaluation
import Foundation
import GitStore
public import GraphQL
import Inference
import Ledger
import Lineage
import OrderedCollections
import Serving
import Trust

/// Builds the executable schema: `PedigreeSchema.sdl` plus one resolver per field.
///
/// Every resolver receives the parent value (a `Lineage` value type) and the request's
/// `RequestLoader` as context; none keeps state of its own.
public enum SchemaBuilder {
    public static func build() throws -> GraphQLSchema {
        let schema = try buildSchema(source: PedigreeSchema.sdl)
        if let long = schema.getType(name: "Long") as? GraphQLScalarType {
            long.serialize = { value in
                if let number = value as? Int64 { return .number(Number(Int(number))) }
                if let number = value as? Int { return .number(Number(number)) }
                throw GraphQLError(message: "Long cannot represent \(value)")
            }
            long.parseLiteral = { literal in
                guard let int = literal as? IntValue, let number = Int64(int.value) else {
                    throw GraphQLError(message: "Long must be an integer literal")
                }
                return .number(Number(Int(number)))
            }
        }
        for (typeName, fields) in resolvers {
            guard let type = schema.getType(name: typeName) as? GraphQLObjectType else {
                throw GraphQLError(message: "resolvers name unknown type \(typeName)")
            }
            let definitions = try type.fields()
            for (fieldName, resolve) in fields {
                guard let field = definitions[fieldName] else {
                    throw GraphQLError(message: "resolver for unknown field \(typeName).\(fieldName)")
                }
                field.resolve = resolve
            }
            // Re-assigning drops the field-definition cache, so the resolvers above are used.
            type.fields = { definitions }
        }
        if let subscription = schema.subscriptionType {
            let definitions = try subscription.fields()
            for (fieldName, subscribe) in subscriptions {
                guard let field = definitions[fieldName] else {
                    throw GraphQLError(message: "subscription for unknown field \(fieldName)")
                }
                field.subscribe = subscribe
                // Each event of the source stream is the root value the field resolves to.
                field.resolve = { source, _, _, _ in source }
            }
            subscription.fields = { definitions }
        }
        let problems = validateSchema(schema: schema)
        guard problems.isEmpty else { throw GraphQLErrors(problems) }
        return schema
    }

    /// Subscription fields: each returns the stream of its events.
    static var subscriptions: [String: GraphQLFieldResolve] {
        [
            "inferStream": resolve { (_: Void, args, loader) in
                let input = try InferenceRequest(args["input"])
                return try await loader.inference.start(input.request, on: try await loader.lineage(input.spec), by: loader.caller)
            },
            "evaluationProgress": resolve { (_: Void, args, loader) in
                loader.services.evaluations.progress(args["id"].string ?? "", visibleTo: loader.caller.principal)
            },
        ]
    }

    /// Object types whose every field has a resolver; `SchemaFileTests` checks none is missed.
    static var resolvers: [String: [String: GraphQLFieldResolve]] {
        [
            "Query": [
                "model": resolve { (_: Void, args, loader) in
                    let name = args["name"].string ?? ""
                    return try await loader.read { try $0.model(named: name) }
                },
                "models": resolve { (_: Void, _, loader) in try await loader.read { try $0.models() } },
                "modelRevision": resolve { (_: Void, args, loader) in
                    try await loader.lineage(args["id"].string ?? "")
                },
                "repository": resolve { (_: Void, _, loader) in try await loader.read { try RepositoryStatus($0) } },
                "transfers": resolve { (_: Void, _, loader) in loader.artifacts.transfers },
                "loadedModels": resolve { (_: Void, _, loader) in await loader.inference.loadedModels() },
                "inference": resolve { (_: Void, args, loader) in try await loader.record(args["id"].string ?? "") },
                "compare": resolve { (_: Void, args, loader) in
                    let a = args["a"].string ?? ""
                    let b = args["b"].string ?? ""
                    return try await loader.read { try $0.compare(a, b) }
                },
                "dataset": resolve { (_: Void, args, loader) in
                    let path = args["path"].string ?? ""
                    let md5 = args["md5"].string
                    return try await loader.read { try $0.datasetUses(path: path, md5: md5) }
                },
                "inferences": resolve { (_: Void, args, loader) in
                    try await loader.inferences(filter: args["filter"], first: args["first"].int ?? 20, after: args["after"].string)
                },
                "evaluation": resolve { (_: Void, args, loader) in
                    try await Evaluator(services: loader.services).load(args["id"].string ?? "", caller: loader.caller)
                },
                "evaluations": resolve { (_: Void, args, loader) in
                    var filter = EvaluationFilter(model: args["model"].string, dataset: args["dataset"].string)
                    if let spec = args["revision"].string { filter.revision = try await loader.lineage(spec).id }
                    return try await Evaluator(services: loader.services).list(filter, first: args["first"].int ?? 20, caller: loader.caller)
                },
                "compareEvaluations": resolve { (_: Void, args, loader) in
                    try await Evaluator(services: loader.services).compare(args["a"].string ?? "", args["b"].string ?? "", caller: loader.caller)
                },
                "treeHead": resolve { (_: Void, args, loader) in
                    try await loader.services.tree?.head(size: args["size"].int.map(Int64.init))
                },
                "consistencyProof": resolve { (_: Void, args, loader) in
                    try await loader.services.tree?.consistencyProof(from: Int64(args["from"].int ?? 0), to: Int64(args["to"].int ?? 0))
                },
            ],
            "Mutation": [
                "refresh": resolve { (_: Void, _, loader) in
                    try await loader.services.refresher.refresh()
                    return try await loader.read { try RepositoryStatus($0) }
                },
                "pull": resolve { (_: Void, args, loader) in
                    try await loader.artifacts.pull(try await loader.lineage(args["id"].string ?? ""))
                },
                "infer": resolve { (_: Void, args, loader) in
                    let input = try InferenceRequest(args["input"])
                    return try await loader.inference.run(input.request, on: try await loader.lineage(input.spec), by: loader.caller)
                },
                "replay": resolve { (_: Void, args, loader) in
                    var against: ModelLineage?
                    if let spec = args["against"].string { against = try await loader.lineage(spec) }
                    return try await loader.inference.replay(id: args["id"].string ?? "", against: against, by: loader.caller)
                },
                "replayMany": resolve { (_: Void, args, loader) in
                    let against = try await loader.lineage(args["against"].string ?? "")
                    let filter = try await loader.inferenceFilter(args["filter"])
                    return try await loader.inference.replayMany(filter, against: against, sample: args["sample"].int ?? 10, by: loader.caller)
                },
                "evaluate": resolve { (_: Void, args, loader) in
                    let input = args["input"]
                    let scorers = try (input["scorers"].array?.compactMap(\.string) ?? ["exact"]).map { spec in
                        do { return try Scorer(parsing: spec) } catch { throw ServingError(.badUserInput, "\(error)") }
                    }
                    guard let dataset = input["dataset"].string, !scorers.isEmpty else {
                        throw ServingError(.badUserInput, "dataset and at least one scorer are required")
                    }
                    let concurrency = input["concurrency"].int ?? 4
                    guard (1...16).contains(concurrency) else { throw ServingError(.badUserInput, "concurrency must be between 1 and 16") }
                    var sampling = try InferenceRequest.sampling(
                        input["sampling"], defaults: SamplingParameters(temperature: 0, seed: 0, maxTokens: 64))
                    if case .dictionary = input["constraint"] { sampling.constraint = try InferenceRequest.constraint(input["constraint"]) }
                    let revision = try await loader.lineage(input["modelRevisionID"].string ?? "")
                    return try await Evaluator(services: loader.services).run(
                        revision, dataset: dataset, datasetRevision: input["datasetRevision"].string, sampling: sampling, scorers: scorers,
                        concurrency: concurrency, fresh: input["fresh"].bool ?? false,
                        judgeTemplate: input["judgeTemplate"].string ?? Scorer.defaultJudgeTemplate, caller: loader.caller)
                },
                "promote": resolve { (_: Void, args, loader) in
                    let input = args["input"]
                    let gate = input["requireEvaluation"]
                    let thresholds = (gate["failUnder"].array ?? []).map {
                        Evaluator.Threshold(scorer: $0["scorer"].string ?? "", minimum: $0["min"].double ?? .infinity)
                    }
                    return try await Evaluator(services: loader.services).promote(
                        model: input["model"].string ?? "", version: input["version"].string, stage: input["stage"].string,
                        evaluation: gate["id"].string ?? "", thresholds: thresholds, caller: loader.caller)
                },
                "signTreeHead": resolve { (_: Void, _, loader) in
                    guard let tree = loader.services.tree else {
                        throw ServingError(.failedPrecondition, "the ledger has no tree: it needs the ledger on and receipts (ledger-text store)")
                    }
                    return try await tree.signHead()
                },
                "cancelEvaluation": resolve { (_: Void, args, loader) in
                    loader.services.evaluations.cancel(args["id"].string ?? "", by: loader.caller.principal)
                },
                "loadModel": resolve { (_: Void, args, loader) in
                    try await loader.inference.load(try await loader.lineage(args["id"].string ?? ""))
                },
                "unloadModel": resolve { (_: Void, args, loader) in
                    try await loader.inference.unload(try await loader.lineage(args["id"].string ?? ""))
                },
            ],
            "Evaluation": [
                "id": field { (result: EvaluationResult) in result.id },
                "modelRevision": field { (result: EvaluationResult) in result.revision },
                "dataset": field { (result: EvaluationResult) in result },
                "reused": field { (result: EvaluationResult) in result.reused },
                "status": field { (result: EvaluationResult) in result.status.rawValue.uppercased() },
                "createdAt": field { (result: EvaluationResult) in
                    Signature(name: "", email: "", date: result.createdAt, offsetMinutes: 0).iso8601
                },
                "sampling": field { (result: EvaluationResult) in
                    let encoder = JSONEncoder()
                    encoder.outputFormatting = .sortedKeys
                    return (try? encoder.encode(result.sampling)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
                },
                "total": field { (result: EvaluationResult) in result.total },
                "done": resolve { (result: EvaluationResult, _, loader) in
                    loader.services.evaluations.run(result.id)?.done ?? result.items.count
                },
                "failed": field { (result: EvaluationResult) in result.items.filter { $0.error != nil }.count },
                "progress": resolve { (result: EvaluationResult, _, loader) in
                    loader.services.evaluations.run(result.id, visibleTo: loader.caller.principal)?.progress
                },
                "scores": field { (result: EvaluationResult) in result.summaries },
                "items": field { (result: EvaluationResult) in
                    result.items.map { ScoredItem(item: $0, scorers: result.scorers.map(\.description)) }
                },
                "badLines": field { (result: EvaluationResult) in result.lineErrors },
            ],
            "EvaluationProgress": [
                "id": field { (progress: EvaluationTracker.Progress) in progress.id },
                "total": field { (progress: EvaluationTracker.Progress) in progress.total },
                "done": field { (progress: EvaluationTracker.Progress) in progress.done },
                "failed": field { (progress: EvaluationTracker.Progress) in progress.failed },
                "tokens": field { (progress: EvaluationTracker.Progress) in progress.tokens },
                "secondsLeft": field { (progress: EvaluationTracker.Progress) in progress.secondsLeft },
                "cancelled": field { (progress: EvaluationTracker.Progress) in progress.cancelled },
                "finished": field { (progress: EvaluationTracker.Progress) in progress.finished },
            ],
            "Promotion": [
                "tags": field { (promotion: Evaluator.Promotion) in promotion.tags },
                "modelRevision": field { (promotion: Evaluator.Promotion) in promotion.revision },
                "evaluation": field { (promotion: Evaluator.Promotion) in promotion.evaluation },
                "model": resolve { (promotion: Evaluator.Promotion, _, loader) in
                    let name = promotion.revision.model.name
                    return try await loader.read { try $0.model(named: name) }
                },
            ],
            "TreeHead": [
                "size": field { (head: LedgerTreeHead) in head.size },
                "rootHash": field { (head: LedgerTreeHead) in head.root.hexString },
                "signedAt": field { (head: LedgerTreeHead) in head.createdAt.formatted(.iso8601) },
                "envelope": field { (head: LedgerTreeHead) in head.envelope },
            ],
            "InclusionProof": [
                "position": field { (proof: LedgerTree.InclusionProof) in proof.position },
                "leafIndex": field { (proof: LedgerTree.InclusionProof) in proof.position - 1 },
                "leafHash": field { (proof: LedgerTree.InclusionProof) in proof.leafHash.hexString },
                "hashes": field { (proof: LedgerTree.InclusionProof) in proof.hashes.map(\.hexString) },
                "treeHead": field { (proof: LedgerTree.InclusionProof) in proof.head },
            ],
            "ConsistencyProof": [
                "from": field { (proof: LedgerTree.ConsistencyProof) in proof.from },
                "to": field { (proof: LedgerTree.ConsistencyProof) in proof.to },
                "hashes": field { (proof: LedgerTree.ConsistencyProof) in proof.hashes.map(\.hexString) },
            ],
            "EvaluationComparison": [
                "a": field { (comparison: EvaluationComparison) in comparison.a },
                "b": field { (comparison: EvaluationComparison) in comparison.b },
                "scores": field { (comparison: EvaluationComparison) in comparison.scores },
                "items": resolve { (comparison: EvaluationComparison, args, _) in
                    guard let change = args["change"].string else { return comparison.items }
                    guard let wanted = EvaluationComparison.Change(rawValue: change.lowercased()) else {
                        throw ServingError(.badUserInput, "change is REGRESSED, IMPROVED or CHANGED (got \(change))")
                    }
                    return comparison.items.filter { $0.change == wanted }
                },
                "unchanged": field { (comparison: EvaluationComparison) in comparison.unchanged },
                "unmatched": field { (comparison: EvaluationComparison) in comparison.unmatched },
                "lineage": field { (comparison: EvaluationComparison) in comparison.lineage },
            ],
            "ScorerDelta": [
                "scorer": field { (delta: EvaluationComparison.ScorerDelta) in delta.scorer },
                "a": field { (delta: EvaluationComparison.ScorerDelta) in delta.a },
                "b": field { (delta: EvaluationComparison.ScorerDelta) in delta.b },
                "delta": field { (delta: EvaluationComparison.ScorerDelta) in delta.delta },
            ],
            "EvaluationItemComparison": [
                "id": field { (item: EvaluationComparison.Item) in item.a.item.id },
                "line": field { (item: EvaluationComparison.Item) in item.a.item.line },
                "change": field { (item: EvaluationComparison.Item) in item.change.rawValue.uppercased() },
                "a": field { (item: EvaluationComparison.Item) in ScoredItem(item: item.a, scorers: item.scorersA) },
                "b": field { (item: EvaluationComparison.Item) in ScoredItem(item: item.b, scorers: item.scorersB) },
                "firstDifference": field { (item: EvaluationComparison.Item) in item.firstDifference },
            ],
            "TokenDifference": [
                "index": field { (difference: EvaluationComparison.TokenDifference) in difference.index },
                "a": field { (difference: EvaluationComparison.TokenDifference) in difference.a.map { Int($0) } },
                "b": field { (difference: EvaluationComparison.TokenDifference) in difference.b.map { Int($0) } },
            ],
            "EvaluationDataset": [
                "path": field { (result: EvaluationResult) in result.dataset },
                "commit": field { (result: EvaluationResult) in result.datasetCommit },
                "md5": field { (result: EvaluationResult) in result.datasetMD5 },
            ],
            "ScorerSummary": [
                "scorer": field { (summary: ScorerSummary) in summary.scorer },
                "mean": field { (summary: ScorerSummary) in summary.mean },
                "count": field { (summary: ScorerSummary) in summary.count },
                "failures": field { (summary: ScorerSummary) in summary.failures },
            ],
            "EvaluationItemResult": [
                "id": field { (scored: ScoredItem) in scored.item.item.id },
                "line": field { (scored: ScoredItem) in scored.item.item.line },
                "inferenceID": field { (scored: ScoredItem) in scored.item.inferenceID },
                "output": field { (scored: ScoredItem) in scored.item.output },
                "finishReason": field { (scored: ScoredItem) in scored.item.finishReason },
                "error": field { (scored: ScoredItem) in scored.item.error },
                "scores": field { (scored: ScoredItem) in zip(scored.scorers, scored.item.scores).map { ItemScore(scorer: $0, value: $1) } },
            ],
            "ItemScore": [
                "scorer": field { (score: ItemScore) in score.scorer },
                "value": field { (score: ItemScore) in score.value },
            ],
            "EvaluationBadLine": [
                "line": field { (error: EvaluationSet.LineError) in error.line },
                "reason": field { (error: EvaluationSet.LineError) in error.reason },
            ],
            "RevisionDiff": [
                "a": field { (diff: LineageDiff) in diff.a },
                "b": field { (diff: LineageDiff) in diff.b },
                "commits": field { (diff: LineageDiff) in diff.commits },
                "related": field { (diff: LineageDiff) in diff.related },
                "datasets": field { (diff: LineageDiff) in diff.datasets },
                "parameters": field { (diff: LineageDiff) in diff.parameters },
                "code": field { (diff: LineageDiff) in diff.code },
                "stagesAdded": field { (diff: LineageDiff) in diff.stagesAdded },
                "stagesRemoved": field { (diff: LineageDiff) in diff.stagesRemoved },
                "artifactChanged": field { (diff: LineageDiff) in diff.artifactChanged },
            ],
            "DatasetChange": [
                "path": field { (change: LineageDiff.Change<DatasetInfo>) in change.path },
                "change": field { (change: LineageDiff.Change<DatasetInfo>) in change.kind },
                "before": field { (change: LineageDiff.Change<DatasetInfo>) in change.before },
                "after": field { (change: LineageDiff.Change<DatasetInfo>) in change.after },
            ],
            "ParameterChange": [
                "file": field { (change: LineageDiff.ParameterChange) in change.file },
                "key": field { (change: LineageDiff.ParameterChange) in change.key },
                "before": field { (change: LineageDiff.ParameterChange) in change.before },
                "after": field { (change: LineageDiff.ParameterChange) in change.after },
            ],
            "CodeChange": [
                "path": field { (change: LineageDiff.Change<DependencyInfo>) in change.path },
                "change": field { (change: LineageDiff.Change<DependencyInfo>) in change.kind },
                "before": field { (change: LineageDiff.Change<DependencyInfo>) in change.before?.md5 },
                "after": field { (change: LineageDiff.Change<DependencyInfo>) in change.after?.md5 },
            ],
            "DatasetUse": [
                "modelRevision": field { (use: DatasetUse) in use.revision },
                "stage": field { (use: DatasetUse) in use.stage },
                "md5": field { (use: DatasetUse) in use.md5 },
            ],
            "ReplayBatch": [
                "identical": field { (batch: InferenceService.ReplayBatch) in batch.identical },
                "differing": field { (batch: InferenceService.ReplayBatch) in batch.differing },
                "failed": field { (batch: InferenceService.ReplayBatch) in batch.failed },
                "items": field { (batch: InferenceService.ReplayBatch) in batch.items },
            ],
            "ReplayItem": [
                "id": field { (item: InferenceService.ReplayBatch.Item) in item.id },
                "identical": field { (item: InferenceService.ReplayBatch.Item) in try? item.outcome.get().identical },
                "firstDifference": field { (item: InferenceService.ReplayBatch.Item) in (try? item.outcome.get())?.firstDifference },
                "error": field { (item: InferenceService.ReplayBatch.Item) in
                    if case .failure(let error) = item.outcome { "\(error.code.rawValue): \(error.message)" } else { nil }
                },
                "replay": field { (item: InferenceService.ReplayBatch.Item) in try? item.outcome.get() },
            ],
            "PullPayload": [
                "modelRevision": field { (pulled: RevisionArtifacts.Pulled) in pulled.revision },
                "downloadedObjects": field { (pulled: RevisionArtifacts.Pulled) in pulled.downloadedObjects },
                "downloadedBytes": field { (pulled: RevisionArtifacts.Pulled) in pulled.downloadedBytes },
                "cached": field { (_: RevisionArtifacts.Pulled) in true },
            ],
            "InferenceEvent": [
                "token": field { (event: InferenceService.Event) in
                    if case .token(let text) = event { text } else { nil }
                },
                "payload": field { (event: InferenceService.Event) in
                    if case .payload(let answer) = event { answer } else { nil }
                },
            ],
            "InferenceConnection": [
                "edges": field { (page: InferencePage) in page.records },
                "pageInfo": field { (page: InferencePage) in page },
            ],
            "InferenceEdge": [
                "cursor": field { (record: InferenceRecord) in record.id },
                "node": field { (record: InferenceRecord) in record },
            ],
            "PageInfo": [
                "hasNextPage": field { (page: InferencePage) in page.hasMore },
                "endCursor": field { (page: InferencePage) in page.records.last?.id },
            ],
            "Inference": [
                "id": field { (record: InferenceRecord) in record.id },
                "receipt": field { (record: InferenceRecord) in record.receipt },
                "inclusionProof": resolve { (record: InferenceRecord, _, loader) in
                    guard let position = record.position else { return nil as LedgerTree.InclusionProof? }
                    return try await loader.services.tree?.inclusionProof(position: position)
                },
                "createdAt": field { (record: InferenceRecord) in Signature(name: "", email: "", date: record.createdAt, offsetMinutes: 0).iso8601 },
                "modelRevision": resolve { (record: InferenceRecord, _, loader) in try await loader.lineage(record.revision) },
                "prompt": field { (record: InferenceRecord) in record.input },
                "result": field { (record: InferenceRecord) in record.output },
                "seed": field { (record: InferenceRecord) in record.seed },
                "status": field { (record: InferenceRecord) in record.status.rawValue },
                "error": field { (record: InferenceRecord) in record.error },
                "finishReason": field { (record: InferenceRecord) in record.finishReason },
                "caller": field { (record: InferenceRecord) in record.caller },
                "artifactMD5": field { (record: InferenceRecord) in record.artifactMD5 },
                "artifactSHA256": field { (record: InferenceRecord) in record.artifactSHA256 },
                "signature": field { (record: InferenceRecord) in WeightsSignatureView(record) },
                "engine": field { (record: InferenceRecord) in record.engine },
                "engineFacts": field { (record: InferenceRecord) in EngineFacts(json: record.engine) },
                "sampling": field { (record: InferenceRecord) in record.sampling },
                "lineage": field { (record: InferenceRecord) in record.lineage },
                "usage": field { (record: InferenceRecord) in RecordedUsage(prompt: record.promptTokens, completion: record.completionTokens) },
                "traceID": field { (record: InferenceRecord) in record.traceID },
            ],
            "ReplayPayload": [
                "original": field { (replay: InferenceService.Replay) in replay.original },
                "replay": field { (replay: InferenceService.Replay) in replay.replay },
                "identical": field { (replay: InferenceService.Replay) in replay.identical },
                "firstDifference": field { (replay: InferenceService.Replay) in replay.firstDifference },
                "sameEngine": field { (replay: InferenceService.Replay) in replay.sameEngine },
                "guaranteed": field { (replay: InferenceService.Replay) in replay.guaranteed },
            ],
            "EngineFacts": [
                "build": field { (facts: EngineFacts) in facts.build },
                "server": field { (facts: EngineFacts) in facts.server },
                "cpu": field { (facts: EngineFacts) in facts.cpu },
                "threads": field { (facts: EngineFacts) in facts.threads },
                "batch": field { (facts: EngineFacts) in facts.batch },
                "ubatch": field { (facts: EngineFacts) in facts.ubatch },
                "prefillChunk": field { (facts: EngineFacts) in facts.prefillChunk },
                "flashAttention": field { (facts: EngineFacts) in facts.flashAttention },
                "mode": field { (facts: EngineFacts) in facts.mode.rawValue },
                "prefixCache": field { (facts: EngineFacts) in facts.prefixCache },
                "worker": field { (facts: EngineFacts) in facts.worker },
                "external": field { (facts: EngineFacts) in facts.external },
                "tiledMatmul": field { (facts: EngineFacts) in facts.tiledMatmul },
                "devices": field { (facts: EngineFacts) in facts.devices },
                "offloadKV": field { (facts: EngineFacts) in facts.offloadKV },
                "gpuLayers": field { (facts: EngineFacts) in facts.gpuLayers },
                "repack": field { (facts: EngineFacts) in facts.repack },
                "batchInvariant": field { (facts: EngineFacts) in facts.batchInvariant },
            ],
            "InferencePayload": [
                "id": field { (answer: InferenceAnswer) in answer.id },
                "result": field { (answer: InferenceAnswer) in answer.summary.text },
                "receipt": field { (answer: InferenceAnswer) in answer.receipt },
                "finishReason": field { (answer: InferenceAnswer) in answer.summary.finishReason.rawValue },
                "modelRevision": field { (answer: InferenceAnswer) in answer.revision },
                "usage": field { (answer: InferenceAnswer) in
                    RecordedUsage(prompt: answer.summary.promptTokenCount, completion: answer.summary.completionTokenCount)
                },
                "seed": field { (answer: InferenceAnswer) in Int64(answer.summary.seed) },
                "timings": field { (answer: InferenceAnswer) in answer.summary },
                "tokens": field { (answer: InferenceAnswer) in answer.summary.logprobs },
                "content": field { (answer: InferenceAnswer) in answer.summary.message?.content },
                "toolCalls": field { (answer: InferenceAnswer) in answer.summary.message?.toolCalls },
            ],
            "ToolCall": [
                "id": field { (call: ToolCall) in call.id },
                "name": field { (call: ToolCall) in call.name },
                "arguments": field { (call: ToolCall) in call.arguments },
            ],
            "TokenLogprob": [
                "id": field { (token: TokenLogprob) in Int(token.chosen.token) },
                "text": field { (token: TokenLogprob) in token.chosen.text },
                "bytes": field { (token: TokenLogprob) in token.chosen.bytes.map(Int.init) },
                "logprob": field { (token: TokenLogprob) in token.chosen.logprob },
                "top": field { (token: TokenLogprob) in token.top },
            ],
            "TokenAlternative": [
                "id": field { (token: TokenLogprob.Alternative) in Int(token.token) },
                "text": field { (token: TokenLogprob.Alternative) in token.text },
                "bytes": field { (token: TokenLogprob.Alternative) in token.bytes.map(Int.init) },
                "logprob": field { (token: TokenLogprob.Alternative) in token.logprob },
            ],
            "Usage": [
                "promptTokens": field { (usage: RecordedUsage) in usage.prompt },
                "completionTokens": field { (usage: RecordedUsage) in usage.completion },
            ],
            "Timings": [
                "queuedMs": field { (summary: GenerationSummary) in summary.queuedMs },
                "timeToFirstTokenMs": field { (summary: GenerationSummary) in summary.timeToFirstTokenMs },
                "totalMs": field { (summary: GenerationSummary) in summary.totalMs },
                "tokensPerSecond": field { (summary: GenerationSummary) in summary.tokensPerSecond },
                "cachedPromptTokens": field { (summary: GenerationSummary) in summary.cachedPromptTokens },
            ],
            "LoadedModel": [
                "md5": field { (model: ModelManager.Status) in model.md5 },
                "revisions": field { (model: ModelManager.Status) in model.revisions },
                "memoryBytes": field { (model: ModelManager.Status) in model.memoryBytes },
                "memory": field { (model: ModelManager.Status) in model.memory.devices },
                "slots": field { (model: ModelManager.Status) in model.slots },
                "activeSlots": field { (model: ModelManager.Status) in model.activeSlots },
                "queueDepth": field { (model: ModelManager.Status) in model.queueDepth },
                "worker": field { (model: ModelManager.Status) in model.worker },
                "lastUsedAt": field { (model: ModelManager.Status) in Signature(name: "", email: "", date: model.lastUsed, offsetMinutes: 0).iso8601
                },
            ],
            "DeviceMemory": [
                "device": field { (device: ModelMemory.Device) in device.name },
                "description": field { (device: ModelMemory.Device) in device.description },
                "gpu": field { (device: ModelMemory.Device) in device.isGPU },
                "weightsBytes": field { (device: ModelMemory.Device) in device.weights },
                "contextBytes": field { (device: ModelMemory.Device) in device.context },
                "computeBytes": field { (device: ModelMemory.Device) in device.compute },
                "prefixCacheBytes": field { (device: ModelMemory.Device) in device.prefixCache },
                "metadataBytes": field { (device: ModelMemory.Device) in device.metadata },
                "totalBytes": field { (device: ModelMemory.Device) in device.total },
            ],
            "Transfer": [
                "id": field { (transfer: TransferProgress) in transfer.label },
                "expectedBytes": field { (transfer: TransferProgress) in transfer.expectedBytes },
                "receivedBytes": field { (transfer: TransferProgress) in transfer.receivedBytes },
                "downloadedObjects": field { (transfer: TransferProgress) in transfer.downloadedObjects },
            ],
            "Model": [
                "id": field { (model: ModelDeclaration) in model.name },
                "name": field { (model: ModelDeclaration) in model.name },
                "description": field { (model: ModelDeclaration) in model.description },
                "path": field { (model: ModelDeclaration) in model.path },
                "revisions": resolve { (model: ModelDeclaration, _, loader) in
                    // One trip to the thread pool for the whole history.
                    try await loader.read { service in
                        try service.revisions(of: model.name).map { commit throws in try service.lineage(model: model.name, at: commit) }
                    }
                },
                "latest": resolve { (model: ModelDeclaration, _, loader) in try await loader.lineage(model.name) },
                "versions": resolve { (model: ModelDeclaration, _, loader) in
                    try await loader.read { try $0.versions(of: model.name).map(\.name) }
                },
                "stages": resolve { (model: ModelDeclaration, _, loader) in try await loader.read { try $0.registry().stages(of: model.name) } },
            ],
            "ModelRevision": [
                "id": field { (revision: ModelLineage) in revision.id },
                "model": field { (revision: ModelLineage) in revision.model },
                "commit": field { (revision: ModelLineage) in revision.commit },
                "createdAt": field { (revision: ModelLineage) in revision.commit.author.iso8601 },
                "author": field { (revision: ModelLineage) in revision.commit.author.name },
                "message": field { (revision: ModelLineage) in revision.commit.message },
                "artifact": field { (revision: ModelLineage) in RevisionArtifact(revision: revision) },
                "stage": field { (revision: ModelLineage) in revision.stage },
                "pipeline": field { (revision: ModelLineage) in revision.pipeline },
                "dataset": field { (revision: ModelLineage) in revision.datasets.first },
                "datasets": field { (revision: ModelLineage) in revision.datasets },
                "parameters": field { (revision: ModelLineage) in revision.parameters },
                "code": field { (revision: ModelLineage) in revision.code },
                "changedFiles": resolve { (revision: ModelLineage, _, loader) in
                    try await loader.read { try $0.changedFiles(in: revision.commit.sha) }
                },
            ],
            "Commit": [
                "sha": field { (commit: CommitInfo) in commit.sha },
                "author": field { (commit: CommitInfo) in commit.author.name },
                "email": field { (commit: CommitInfo) in commit.author.email },
                "date": field { (commit: CommitInfo) in commit.author.iso8601 },
                "message": field { (commit: CommitInfo) in commit.message },
            ],
            "Artifact": [
                "path": field { (artifact: RevisionArtifact) in artifact.info.path },
                "md5": resolve { (artifact: RevisionArtifact, _, loader) in await loader.artifacts.md5(of: artifact.info) },
                "size": field { (artifact: RevisionArtifact) in artifact.info.size },
                "nfiles": field { (artifact: RevisionArtifact) in artifact.info.nfiles },
                "origin": field { (artifact: RevisionArtifact) in artifact.info.origin.kind },
                "sha256": field { (artifact: RevisionArtifact) in artifact.info.sha256 },
                "blob": field { (artifact: RevisionArtifact) in artifact.info.origin.blob },
                "cached": resolve { (artifact: RevisionArtifact, _, loader) in await loader.artifacts.isCached(artifact.info) },
                "signature": resolve { (artifact: RevisionArtifact, _, loader) in
                    WeightsSignatureView(loader.artifacts.provenance(of: artifact.revision), signature: artifact.info.signature)
                },
            ],
            "WeightsSignature": [
                "status": field { (view: WeightsSignatureView) in view.status },
                "file": field { (view: WeightsSignatureView) in view.file },
                "method": field { (view: WeightsSignatureView) in view.method },
                "signer": field { (view: WeightsSignatureView) in view.signer },
                "reason": field { (view: WeightsSignatureView) in view.reason },
                "sha256": field { (view: WeightsSignatureView) in view.sha256 },
            ],
            "DatasetRevision": [
                "id": field { (dataset: DatasetInfo) in "\(dataset.path)@\(dataset.md5)" },
                "path": field { (dataset: DatasetInfo) in dataset.path },
                "md5": field { (dataset: DatasetInfo) in dataset.md5 },
                "size": field { (dataset: DatasetInfo) in dataset.size },
                "nfiles": field { (dataset: DatasetInfo) in dataset.nfiles },
                "commit": field { (dataset: DatasetInfo) in dataset.commit },
                "source": field { (dataset: DatasetInfo) in dataset.source },
                "usedBy": resolve { (dataset: DatasetInfo, _, loader) in
                    try await loader.read { service in
                        var seen = Set<String>()
                        return try service.datasetUses(path: dataset.path, md5: dataset.md5).map(\.revision).filter { seen.insert($0.id).inserted }
                    }
                },
            ],
            "ImportSource": [
                "url": field { (source: ImportInfo) in Redaction.urlCredentials(in: source.url) },
                "path": field { (source: ImportInfo) in source.path },
                "rev": field { (source: ImportInfo) in source.rev },
            ],
            "Parameter": [
                "file": field { (parameter: ParameterInfo) in parameter.file },
                "key": field { (parameter: ParameterInfo) in parameter.key },
                "value": field { (parameter: ParameterInfo) in parameter.value },
            ],
            "Dependency": [
                "path": field { (dependency: DependencyInfo) in dependency.path },
                "md5": field { (dependency: DependencyInfo) in dependency.md5 },
            ],
            "PipelineStage": [
                "name": field { (stage: StageInfo) in stage.name },
                "cmd": field { (stage: StageInfo) in stage.cmd },
                "deps": field { (stage: StageInfo) in stage.deps },
                "outs": field { (stage: StageInfo) in stage.outs },
                "parameters": field { (stage: StageInfo) in stage.parameters },
            ],
            "RepositoryStatus": [
                "source": field { (status: RepositoryStatus) in status.source },
                "defaultBranch": field { (status: RepositoryStatus) in status.defaultBranch },
                "head": field { (status: RepositoryStatus) in status.head },
                "models": field { (status: RepositoryStatus) in status.models },
            ],
        ]
    }

    /// A resolver that reads a property of its parent value.
    static func field<Source: Sendable>(_ read: @escaping @Sendable (Source) -> (any Sendable)?) -> GraphQLFieldResolve {
        { source, _, _, info in
            guard let parent = source as? Source else {
                throw ServingError(.internalError, "\(info.parentType).\(info.fieldName) got an unexpected parent")
            }
            return read(parent)
        }
    }

    /// A resolver that asks a service, through the request's loader.
    static func resolve<Source: Sendable>(
        _ body: @escaping @Sendable (Source, Map, RequestLoader) async throws -> (any Sendable)?
    ) -> GraphQLFieldResolve {
        { source, args, context, info in
            guard let loader = context as? RequestLoader else {
                throw ServingError(.internalError, "no request context")
            }
            // Root fields have no parent value: they are declared with `Void`.
            guard let parent = Source.self == Void.self ? () as? Source : source as? Source else {
                throw ServingError(.internalError, "\(info.parentType).\(info.fieldName) got an unexpected parent")
            }
            return try await body(parent, args, loader)
        }
    }
}

/// What `repository` and `refresh` report.
struct RepositoryStatus: Sendable {
    let source: String
    let defaultBranch: String
    let head: String
    let models: Int

    init(_ service: LineageService) throws {
        source = Redaction.urlCredentials(in: service.repository.source ?? service.repository.path)
        defaultBranch = try service.repository.defaultBranch()
        head = try service.head()
        models = try service.models().count
    }
}

/// Token counts, from a live answer or a record.
struct RecordedUsage: Sendable {
    let prompt: Int
    let completion: Int
}

/// One page of `inferences`.
struct InferencePage: Sendable {
    let records: [InferenceRecord]
    let hasMore: Bool
}

/// An evaluation's item with the names of the scorers its scores follow.
struct ScoredItem: Sendable {
    let item: EvaluationResult.Item
    let scorers: [String]
}

/// One scorer's score of one item.
struct ItemScore: Sendable {
    let scorer: String
    let value: Double?
}
