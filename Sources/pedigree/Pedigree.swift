import ArgumentParser

/// The `pedigree` command: one file per subcommand, each only parsing its arguments, building
/// the services from the configuration, and printing what they answer.
@main
struct Pedigree: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "A reproducible model-serving gateway over a Git + DVC repository.",
        subcommands: [
            Serve.self, Worker.self, Models.self, LineageCommand.self, Diff.self, Pull.self, Infer.self, Replay.self, LedgerCommand.self, Keys.self,
            ConfigCommand.self,
            Schema.self,
        ]
    )
}
