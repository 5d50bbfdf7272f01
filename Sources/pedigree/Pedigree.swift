import ArgumentParser
import Serving

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

    /// Every file the process creates (ledger, keys, salt, cache) is private from its first
    /// moment; then the command runs as ArgumentParser would run it.
    static func main() async {
        PrivateFiles.restrictNewFiles()
        do {
            var command = try parseAsRoot()
            if var command = command as? any AsyncParsableCommand {
                try await command.run()
            } else {
                try command.run()
            }
        } catch {
            exit(withError: error)
        }
    }
}
