import ArgumentParser
import Foundation
import Inference
import Ledger
import Logging
import Serving

struct Replay: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a recorded inference again (its revision, weights, input and sampling) and say whether the output is identical.")

    @Argument(help: "The inference id (InferencePayload.id, `pedigree infer` prints it).")
    var id: String

    @Flag(help: "Print JSON.")
    var json = false

    @OptionGroup var common: CommonOptions
    @OptionGroup var artifacts: ArtifactOptions
    @OptionGroup var inference: InferenceOptions
    @OptionGroup var ledger: LedgerOptions

    func run() async throws {
        let loaded = try await loadConfiguration(common, [artifacts, inference, ledger], quiet: true)
        let services = try orExit { try Services.open(loaded.serving, logger: Logger(label: "pedigree")) }
        let id = self.id
        let outcome = try await services.withBackgroundWork {
            try await orExit { try await services.inference.replay(id: id, by: RequestInfo(caller: "replay")) }
        }
        if json {
            print(
                try encodeJSON(
                    ReplayOutput(
                        original: outcome.original.id, replay: outcome.replay.id, revision: outcome.original.revision,
                        identical: outcome.identical, firstDifference: outcome.firstDifference, output: outcome.replay.summary.text)))
        } else {
            print(outcome.replay.summary.text)
            let verdict = outcome.identical ? "identical" : "differs from token \(outcome.firstDifference ?? 0)"
            FileHandle.standardError.write(
                Data("[replay \(outcome.replay.id) of \(outcome.original.id) on \(outcome.original.revision): \(verdict)]\n".utf8))
        }
        if !outcome.identical { throw ExitCode(3) }
    }

    struct ReplayOutput: Encodable {
        let original: String
        let replay: String
        let revision: String
        let identical: Bool
        let firstDifference: Int?
        let output: String
    }
}
