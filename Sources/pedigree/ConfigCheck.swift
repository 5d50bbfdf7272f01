import ArgumentParser
import Serving

struct ConfigCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "config", abstract: "Work with the configuration.", subcommands: [Check.self])

    struct Check: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Validate the configuration (file, PEDIGREE_* variables, flags) and print the effective values, secrets redacted.")

        @Argument(help: "A YAML configuration file (the same as --config).")
        var file: String?

        @OptionGroup var common: CommonOptions
        @OptionGroup var server: ServerOptions
        @OptionGroup var artifacts: ArtifactOptions
        @OptionGroup var inference: InferenceOptions
        @OptionGroup var ledger: LedgerOptions
        @OptionGroup var access: AccessOptions

        func run() async throws {
            var common = self.common
            if let file {
                guard common.config == nil || common.config == file else { throw ValidationError("give the file once: as the argument or --config") }
                common.config = file
            }
            let loaded = try await loadConfiguration(common, [server, artifacts, inference, ledger, access], requireRepo: false, quiet: true)
            print(loaded.rendered())
        }
    }
}
