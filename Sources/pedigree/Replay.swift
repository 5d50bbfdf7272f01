import ArgumentParser
import Foundation
import Inference
import Ledger
import Lineage
import Logging
import Serving

struct Replay: AsyncParsableCommand, ConfiguredCommand {
    static let configurationGroups: [ConfigurationKey.Group] = [.common, .artifacts, .inference, .ledger]

    static let configuration = CommandConfiguration(
        abstract: "Run a recorded inference again (its revision, weights, input and sampling) and say whether the output is identical;"
            + " with --against, on another revision; without an id, the newest recorded inferences (--model, --since, --sample).")

    @Argument(help: "The inference id (InferencePayload.id, `pedigree infer` prints it). Without it: a batch of the newest records.")
    var id: String?

    @Option(help: "Replay on this revision instead of the recorded one (any revision spec).")
    var against: String?

    @Option(help: "Batch: only records of this model.")
    var model: String?

    @Option(help: "Batch: only records of this revision (any spec; made canonical).")
    var revision: String?

    @Option(help: "Batch: only records since this ISO-8601 date and time.")
    var since: String?

    @Option(help: "Batch: how many of the newest matching records (default 10).")
    var sample = 10

    @Flag(help: "Print JSON.")
    var json = false

    @OptionGroup var common: CommonOptions

    func validate() throws {
        if id == nil, against == nil { throw ValidationError("give an inference id, or --against REV for a batch") }
        if id != nil, model != nil || since != nil || revision != nil {
            throw ValidationError("--model, --revision and --since select a batch: leave out the id")
        }
    }

    func run() async throws {
        let loaded = try await loadConfiguration(common, quiet: true)
        let services = try orExit { try Services.open(loaded.serving, logger: Logger(label: "pedigree")) }
        let revision = try against.map { spec in try orExit { try services.lineage.lineage(spec) } }
        let caller = RequestInfo(caller: "replay")
        if let id {
            let outcome = try await services.withBackgroundWork {
                try await orExit { try await services.inference.replay(id: id, against: revision, by: caller) }
            }
            report(outcome)
            if !outcome.identical { throw ExitCode(3) }
            return
        }
        guard let revision else { return }
        var since: Date?
        if let text = self.since {
            guard let date = ISO8601DateFormatter().date(from: text) else { throw ValidationError("--since must be an ISO-8601 date and time") }
            since = date
        }
        let recorded = try self.revision.map { spec in try orExit { try services.lineage.lineage(spec).id } }
        let filter = InferenceFilter(model: model, revision: recorded, since: since)
        let sample = self.sample
        let batch = try await services.withBackgroundWork {
            try await orExit { try await services.inference.replayMany(filter, against: revision, sample: sample, by: caller) }
        }
        if json {
            print(try encodeJSON(BatchOutput(batch, against: revision.id)))
        } else {
            print(
                "replayed \(batch.items.count) against \(revision.id): \(batch.identical) identical, \(batch.differing) differ, \(batch.failed) failed"
            )
            print(["ID".padding(toLength: 28, withPad: " ", startingAt: 0), "RESULT"].joined())
            for item in batch.items {
                let result: String
                switch item.outcome {
                case .success(let replay): result = replay.identical ? "identical" : "differs at token \(replay.firstDifference ?? 0)"
                case .failure(let error): result = "failed: \(error.code.rawValue): \(error.message)"
                }
                print(item.id.padding(toLength: 28, withPad: " ", startingAt: 0) + result)
            }
        }
        if batch.differing + batch.failed > 0 { throw ExitCode(3) }
    }

    private func report(_ outcome: InferenceService.Replay) {
        if json {
            print(
                (try? encodeJSON(
                    ReplayOutput(
                        original: outcome.original.id, replay: outcome.replay.id, revision: outcome.replay.revision.id,
                        recordedRevision: outcome.original.revision, identical: outcome.identical, firstDifference: outcome.firstDifference,
                        output: outcome.replay.summary.text))) ?? "{}")
        } else {
            print(outcome.replay.summary.text)
            let verdict = outcome.identical ? "identical" : "differs from token \(outcome.firstDifference ?? 0)"
            FileHandle.standardError.write(
                Data("[replay \(outcome.replay.id) of \(outcome.original.id) on \(outcome.replay.revision.id): \(verdict)]\n".utf8))
        }
    }

    struct ReplayOutput: Encodable {
        let original: String
        let replay: String
        let revision: String
        let recordedRevision: String
        let identical: Bool
        let firstDifference: Int?
        let output: String
    }

    struct BatchOutput: Encodable {
        struct Item: Encodable {
            let id: String
            let identical: Bool?
            let firstDifference: Int?
            let replay: String?
            let error: String?
        }
        let against: String
        let identical: Int
        let differing: Int
        let failed: Int
        let items: [Item]

        init(_ batch: InferenceService.ReplayBatch, against: String) {
            self.against = against
            identical = batch.identical
            differing = batch.differing
            failed = batch.failed
            items = batch.items.map { item in
                switch item.outcome {
                case .success(let replay):
                    Item(id: item.id, identical: replay.identical, firstDifference: replay.firstDifference, replay: replay.replay.id, error: nil)
                case .failure(let error):
                    Item(id: item.id, identical: nil, firstDifference: nil, replay: nil, error: "\(error.code.rawValue): \(error.message)")
                }
            }
        }
    }
}
