import ArgumentParser
import Foundation
import Serving

struct ConfigCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "config", abstract: "Work with the configuration.", subcommands: [Check.self, Example.self, KeysTable.self])

    struct Check: AsyncParsableCommand, ConfiguredCommand {
        static let configurationGroups: [ConfigurationKey.Group] = ConfigurationKey.Group.allCases

        static let configuration = CommandConfiguration(
            abstract: "Validate the configuration (file, PEDIGREE_* variables, flags) and print the effective values, secrets redacted.")

        @Argument(help: "A YAML configuration file (the same as --config).")
        var file: String?

        @OptionGroup var common: CommonOptions

        func run() async throws {
            var common = self.common
            if let file {
                guard common.config == nil || common.config == file else { throw ValidationError("give the file once: as the argument or --config") }
                common.config = file
            }
            let loaded = try await loadConfiguration(common, requireRepo: false, quiet: true)
            print(loaded.rendered())
        }
    }

    struct Example: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print pedigree.example.yaml: every key with its help, at its default or as a commented-out example (from the key table).")

        func run() async throws {
            print(ConfigurationKey.exampleFile(), terminator: "")
        }
    }

    struct KeysTable: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "keys",
            abstract: "Print the key table as JSON: each key's name, flag, variable, kind, default, groups and the commands that take its flag.")

        func run() async throws {
            let commands = Pedigree.configuredCommands()
            let table = ConfigurationKey.tableJSON().map { entry -> [String: Any] in
                var entry = entry
                let groups = Set((entry["groups"] as? [String]) ?? [])
                entry["commands"] = commands.filter { !groups.isDisjoint(with: $0.groups.map(\.rawValue)) }.map(\.path)
                return entry
            }
            let data = try JSONSerialization.data(withJSONObject: table, options: [.prettyPrinted, .sortedKeys])
            print(String(decoding: data, as: UTF8.self))
        }
    }
}
