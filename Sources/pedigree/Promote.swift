import ArgumentParser
import Foundation
import GitStore
import Lineage
import Logging
import Serving

struct Promote: AsyncParsableCommand, ConfiguredCommand {
    static let configurationGroups: [ConfigurationKey.Group] = [.common, .artifacts, .inference, .ledger]

    static let configuration = CommandConfiguration(
        abstract: "Register a version and/or assign a stage to the revision an evaluation ran on, when it passed; pushes GTO's tags.",
        discussion: """
            The evaluation (from `pedigree eval`, in this cache's ledger) must be the model's, completed with no failed item, \
            and reach every --fail-under threshold; otherwise nothing is written and the exit code is 1. The tags are the ones \
            `gto register` and `gto assign` write, pushed to the repository's Git remote.
            """)

    @Argument(help: "The model's name.")
    var model: String

    @Option(help: "The evaluation's id (as `pedigree eval` prints it).")
    var evaluation: String

    @Option(help: "SCORER=MIN: the evaluation's mean for SCORER must be at least MIN (repeatable; at least one).")
    var failUnder: [String] = []

    @Option(help: "A version to register at the evaluated commit (vX.Y.Z).")
    var version: String?

    @Option(help: "A stage to assign to the evaluated commit's version.")
    var stage: String?

    @OptionGroup var common: CommonOptions

    func run() async throws {
        let thresholds = try failUnder.map { entry in
            guard let threshold = Evaluator.Threshold(parsing: entry) else { throw ValidationError("--fail-under takes SCORER=MIN: \(entry)") }
            return threshold
        }
        let loaded = try await loadConfiguration(common, quiet: true)
        let services = try orExit { try Services.open(loaded.serving, logger: Logger(label: "pedigree")) }
        let (model, version, stage, evaluation) = (self.model, self.version, self.stage, self.evaluation)
        let promotion = try await services.withBackgroundWork {
            try await orExit {
                try await Evaluator(services: services).promote(
                    model: model, version: version, stage: stage, evaluation: evaluation, thresholds: thresholds, caller: RequestInfo())
            }
        }
        for tag in promotion.tags { print("\(tag) → \(promotion.revision.commit.sha)") }
    }
}
