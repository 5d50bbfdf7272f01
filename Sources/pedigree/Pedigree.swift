import ArgumentParser
import Foundation
import Serving

/// The `pedigree` command: one file per subcommand, each only parsing its arguments, building
/// the services from the configuration, and printing what they answer.
@main
struct Pedigree: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "A reproducible model-serving gateway over a Git + DVC repository.",
        subcommands: [
            Serve.self, Worker.self, Models.self, LineageCommand.self, Diff.self, Pull.self, Infer.self, Eval.self, Promote.self, Replay.self,
            Receipt.self, Verify.self, VerifyWeights.self, ReceiptKeyCommand.self,
            LedgerCommand.self,
            Keys.self,
            ConfigCommand.self,
            Schema.self,
        ]
    )

    /// Every file the process creates (ledger, keys, salt, cache) is private from its first
    /// moment; the configuration flags are taken out of the command line (the key table's), the
    /// rest is parsed by ArgumentParser, and the command runs as ArgumentParser would run it. A
    /// command's help ends with the configuration flags it takes.
    static func main() async {
        PrivateFiles.restrictNewFiles()
        let split: ConfigurationArguments.Split
        switch ConfigurationArguments.parsed {
        case .success(let parsed): split = parsed
        case .failure(let error): fail(error.message)
        }
        do {
            var command = try parseAsRoot(split.rest)
            let groups = (type(of: command) as? any ConfiguredCommand.Type)?.configurationGroups ?? []
            let allowed = Set(ConfigurationKey.keys(of: groups))
            if let stray = split.given.first(where: { !allowed.contains($0) }) {
                let path = (["pedigree"] + commandPath(of: type(of: command))).joined(separator: " ")
                fail(
                    "--\(stray.flag) is not an option of `\(path)`; \(stray.environmentName) or `\(stray.name):` in the --config file sets it for every command"
                )
            }
            if var command = command as? any AsyncParsableCommand {
                try await command.run()
            } else {
                try command.run()
            }
        } catch {
            if exitCode(for: error) == .success, let groups = helpTarget(split.rest)?.configurationGroups {
                print(withConfigurationUsage(fullMessage(for: error)))
                print("\n" + ConfigurationKey.helpSection(for: groups))
                Foundation.exit(0)
            }
            exit(withError: error)
        }
    }

    /// The configured command a help request names (`pedigree serve --help`, `pedigree help keys create`).
    private static func helpTarget(_ arguments: [String]) -> (any ConfiguredCommand.Type)? {
        var command: any ParsableCommand.Type = Pedigree.self
        for argument in arguments where !argument.hasPrefix("-") {
            if argument == "help", command == Pedigree.self { continue }
            guard let next = command.configuration.subcommands.first(where: { $0._commandName == argument }) else { break }
            command = next
        }
        return command as? any ConfiguredCommand.Type
    }

    /// ArgumentParser's help with `[<configuration flags>]` at the end of its usage.
    private static func withConfigurationUsage(_ help: String) -> String {
        var lines = help.components(separatedBy: "\n")
        guard let start = lines.firstIndex(where: { $0.hasPrefix("USAGE: ") }) else { return help }
        let end = lines[start...].firstIndex(where: \.isEmpty).map { $0 - 1 } ?? lines.count - 1
        lines[end] += " [<configuration flags>]"
        return lines.joined(separator: "\n")
    }

    /// The subcommand names that lead to `command` (`["keys", "create"]`).
    private static func commandPath(of command: any ParsableCommand.Type) -> [String] {
        func find(_ node: any ParsableCommand.Type, _ path: [String]) -> [String]? {
            if node == command { return path }
            return node.configuration.subcommands.lazy.compactMap { find($0, path + [$0._commandName]) }.first
        }
        return find(Pedigree.self, []) ?? []
    }

    /// Every command that takes configuration flags: its path (`keys create`) and groups.
    static func configuredCommands() -> [(path: String, groups: [ConfigurationKey.Group])] {
        func walk(_ command: any ParsableCommand.Type, _ path: [String]) -> [(path: String, groups: [ConfigurationKey.Group])] {
            let own = (command as? any ConfiguredCommand.Type).map { [(path.joined(separator: " "), $0.configurationGroups)] } ?? []
            return own + command.configuration.subcommands.flatMap { walk($0, path + [$0._commandName]) }
        }
        return walk(Pedigree.self, [])
    }

    private static func fail(_ message: String) -> Never {
        FileHandle.standardError.write(Data("error: \(message)\n".utf8))
        Foundation.exit(2)
    }
}
