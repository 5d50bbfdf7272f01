import ArgumentParser
import Evaluation
import Foundation
import Inference
import Lineage
import Logging
import Serving

struct Eval: AsyncParsableCommand, ConfiguredCommand {
    static let configurationGroups: [ConfigurationKey.Group] = [.common, .artifacts, .inference, .ledger]

    static let configuration = CommandConfiguration(
        abstract: "Evaluate a model revision on an evaluation set of the repository; exits 1 under a --fail-under threshold.",
        discussion: """
            Each line of the set (JSONL) has prompt or messages, optionally expected (a string, a list of acceptable strings, \
            or JSON) and id. Every answer is recorded in the ledger (request id eval-<evaluation id>#<item id>). \
            Scorers: exact, exact:lower,collapse,punctuation, contains[:…], regex[:PATTERN], json, schema:{JSON Schema}, numeric[:TOLERANCE], f1, judge:SPEC, \
            length, ttft, tps.
            """)

    @Argument(help: "A revision spec: name@sha, name@branch, name@v1.2.0, name#stage, name, or a bare SHA.")
    var spec: String

    @Option(help: "The evaluation set: PATH[@REV], a JSONL file tracked by Git or DVC (REV: branch, tag or commit; default branch when omitted).")
    var dataset: String

    @Option(help: "A scorer (repeatable; default exact).")
    var scorer: [String] = []

    @Option(help: "SCORER=MIN: exit 1 when that scorer's mean is below MIN (repeatable).")
    var failUnder: [String] = []

    @Option(help: "Write the scores in DVC's metrics format (JSON) to this file.")
    var metricsOut: String?

    @Option(help: "0 is greedy (the default: an evaluation is reproducible).")
    var temperature = 0.0

    @Option(help: "Constrain every answer to the JSON Schema in this file (as infer's json_schema constraint).")
    var jsonSchema: String?

    @Option(help: "The template a judge:SPEC scorer's model is asked with (a file; {prompt}, {expected}, {answer} are replaced).")
    var judgeTemplate: String?

    @Option(help: "Seed of every item's draw.")
    var seed: UInt32 = 0

    @Option(help: "Tokens to generate at most per item.")
    var maxTokens = 64

    @Option(help: "Items answered at once.")
    var concurrency = 4

    @Flag(
        help:
            "Ask every item again, under an evaluation id of its own (by default a run of the same evaluation reuses the answers an earlier run recorded)."
    )
    var fresh = false

    @Flag(help: "Print one JSON object: the summary and every item's answer and scores.")
    var json = false

    @OptionGroup var common: CommonOptions

    func run() async throws {
        let scorers = try (scorer.isEmpty ? ["exact"] : scorer).map { spec in
            do { return try Scorer(parsing: spec) } catch { throw ValidationError("\(error)") }
        }
        let thresholds = try failUnder.map { entry in
            guard let threshold = Evaluator.Threshold(parsing: entry), scorers.map(\.description).contains(threshold.scorer) else {
                throw ValidationError("--fail-under takes SCORER=MIN for a scorer given with --scorer: \(entry)")
            }
            return threshold
        }
        let (path, rev) = dataset.lastIndex(of: "@").map { (String(dataset[..<$0]), String(dataset[dataset.index(after: $0)...])) } ?? (dataset, nil)
        let loaded = try await loadConfiguration(common, quiet: true)
        let services = try orExit { try Services.open(loaded.serving, logger: Logger(label: "pedigree")) }
        let revision = try orExit { try services.lineage.lineage(spec) }
        var sampling = SamplingParameters(temperature: temperature, seed: seed, maxTokens: maxTokens)
        sampling.seed = seed
        if let jsonSchema {
            do {
                let schema = try JSONSerialization.jsonObject(with: try Data(contentsOf: URL(fileURLWithPath: jsonSchema)))
                sampling.constraint = try Constraint.jsonSchema(schema, name: nil)
            } catch {
                throw ValidationError("--json-schema \(jsonSchema): \(error)")
            }
        }
        var template = Scorer.defaultJudgeTemplate
        if let judgeTemplate {
            guard let text = try? String(contentsOfFile: judgeTemplate, encoding: .utf8) else {
                throw ValidationError("--judge-template \(judgeTemplate) cannot be read")
            }
            template = text
        }
        let concurrency = self.concurrency
        let fresh = self.fresh
        let quiet = json
        let started = ContinuousClock.now
        let result = try await services.withBackgroundWork {
            try await orExit {
                try await Evaluator(services: services).run(
                    revision, dataset: path, datasetRevision: rev, sampling: sampling, scorers: scorers, concurrency: concurrency,
                    fresh: fresh, judgeTemplate: template
                ) { done, total in
                    if !quiet { FileHandle.standardError.write(Data(Self.progressLine(done: done, total: total, started: started).utf8)) }
                }
            }
        }
        if !quiet, isatty(2) == 1 { FileHandle.standardError.write(Data("\n".utf8)) }
        if let metricsOut {
            let data = try JSONSerialization.data(withJSONObject: result.metrics, options: [.prettyPrinted, .sortedKeys])
            try data.write(to: URL(fileURLWithPath: metricsOut))
        }
        let summaries = result.summaries
        if json {
            let data = try JSONSerialization.data(withJSONObject: Self.report(result), options: [.sortedKeys])
            print(String(decoding: data, as: UTF8.self))
        } else {
            print("evaluation \(result.id): \(result.revision.id) on \(result.dataset)@\(result.datasetCommit.prefix(12)) (md5 \(result.datasetMD5))")
            print(
                "\(result.items.count) items (\(result.reused) answered by an earlier run), \(result.items.filter { $0.error != nil }.count) failed, \(result.lineErrors.count) bad lines"
            )
            for error in result.lineErrors { print("  \(error)") }
            for summary in summaries {
                let mean = summary.mean.map { String(format: "%.4f", $0) } ?? "—"
                print("\(summary.scorer.padding(toLength: 24, withPad: " ", startingAt: 0)) \(mean)  (\(summary.count) scored)")
            }
        }
        let misses = try Evaluator.misses(thresholds, in: result)
        for miss in misses { FileHandle.standardError.write(Data("FAIL \(miss)\n".utf8)) }
        if !misses.isEmpty { throw ExitCode(1) }
    }

    /// The progress bar on standard error: items done of the set, and the time left at the pace so
    /// far (a terminal redraws the line; elsewhere each update is a line of its own).
    static func progressLine(done: Int, total: Int, started: ContinuousClock.Instant) -> String {
        let fraction = total > 0 ? min(1, Double(done) / Double(total)) : 1
        let filled = Int(fraction * 30)
        let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: 30 - filled)
        let elapsed = (ContinuousClock.now - started) / .seconds(1)
        let left = done > 0 && done < total ? " \(Int((elapsed / Double(done) * Double(total - done)).rounded()))s left" : ""
        let line = "[\(bar)] \(done)/\(total) items\(left)"
        return isatty(2) == 1 ? "\r\(line)   " : line + "\n"
    }

    /// The `--json` report.
    static func report(_ result: EvaluationResult) -> [String: Any] {
        let names = result.scorers.map(\.description)
        return [
            "id": result.id, "revision": result.revision.id, "dataset": result.dataset, "dataset_commit": result.datasetCommit,
            "dataset_md5": result.datasetMD5, "reused": result.reused,
            "sampling": ["temperature": result.sampling.temperature, "seed": Int(result.sampling.seed), "max_tokens": result.sampling.maxTokens],
            "scores": Dictionary(uniqueKeysWithValues: result.summaries.map { ($0.scorer, $0.mean ?? NSNull()) as (String, Any) }),
            "items": result.items.map { item -> [String: Any] in
                [
                    "id": item.item.id, "line": item.item.line, "inference_id": item.inferenceID ?? NSNull(), "output": item.output ?? NSNull(),
                    "finish_reason": item.finishReason ?? NSNull(), "error": item.error ?? NSNull(),
                    "scores": Dictionary(uniqueKeysWithValues: zip(names, item.scores).map { ($0, $1 ?? NSNull()) as (String, Any) }),
                ]
            },
            "bad_lines": result.lineErrors.map { ["line": $0.line, "reason": $0.reason] },
        ]
    }
}
