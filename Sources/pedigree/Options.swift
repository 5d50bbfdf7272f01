import ArgumentParser
import Foundation
import Logging
import Serving

/// The configuration file. Every other configuration flag comes from the key table
/// (`ConfigurationKey.all`): `ConfigurationArguments` takes them out of the command line before
/// ArgumentParser reads the rest, and a command's help lists those of its groups.
struct CommonOptions: ParsableArguments {
    @Option(help: "A YAML configuration file (its keys are the CONFIGURATION flags' names).")
    var config: String?
}

/// A command that takes the configuration keys of these groups as flags.
protocol ConfiguredCommand {
    static var configurationGroups: [ConfigurationKey.Group] { get }
}

/// The configuration flags of the command line: every `--FLAG VALUE`, `--FLAG=VALUE` (and a
/// boolean's bare `--FLAG`) that names a key of the table, up to a `--`. What is left goes to
/// ArgumentParser.
enum ConfigurationArguments {
    struct Split: Sendable {
        /// Values by key name (a list key's repeated flags in order; else the last).
        var flags: [String: [String]] = [:]
        /// The keys given, in the order first given.
        var given: [ConfigurationKey] = []
        var rest: [String] = []
    }

    /// This process's command line, split once.
    static let parsed = Result { () throws(ConfigurationError) in try split(Array(CommandLine.arguments.dropFirst())) }

    static func split(_ arguments: [String]) throws(ConfigurationError) -> Split {
        var split = Split()
        var index = 0
        while index < arguments.count {
            let argument = arguments[index]
            index += 1
            if argument == "--" {
                split.rest += arguments[(index - 1)...]
                break
            }
            guard argument.hasPrefix("--") else {
                split.rest.append(argument)
                continue
            }
            let body = argument.dropFirst(2)
            let name = body.prefix { $0 != "=" }
            guard let key = ConfigurationKey.byFlag[String(name)] else {
                split.rest.append(argument)
                continue
            }
            let value: String
            if name.count < body.count {
                value = String(body.dropFirst(name.count + 1))
            } else if key.kind == .boolean {
                // A bare boolean flag means true; a following `true` or `false` is its value (not
                // yes, 1 or on: those may be a positional argument).
                if index < arguments.count, ["true", "false"].contains(arguments[index].lowercased()) {
                    value = arguments[index]
                    index += 1
                } else {
                    value = "true"
                }
            } else {
                guard index < arguments.count else { throw ConfigurationError("--\(key.flag) needs a value (\(key.valueName))") }
                value = arguments[index]
                index += 1
            }
            if key.kind == .list {
                split.flags[key.name, default: []].append(value)
            } else {
                split.flags[key.name] = [value]
            }
            if !split.given.contains(key) { split.given.append(key) }
        }
        return split
    }
}

/// Loads the configuration from the command line's configuration flags and the `--config` file,
/// and bootstraps logging with it. A bad configuration prints the key's error and exits with
/// status 2.
func loadConfiguration(_ common: CommonOptions, requireRepo: Bool = true, quiet: Bool = false) async throws -> LoadedConfiguration {
    do {
        let flags = try ConfigurationArguments.parsed.get().flags
        let loaded = try await ConfigurationLoader.load(flags: flags, file: common.config, requireRepo: requireRepo)
        // Commands that print results keep the log to warnings unless asked for more.
        let levelSet = loaded.entries.contains { $0.key.name == "log-level" && $0.source != .default }
        let level = quiet && !levelSet ? .warning : loaded.logLevel
        LogOutput.bootstrap(format: loaded.logFormat, level: level)
        return loaded
    } catch let error as ConfigurationError {
        FileHandle.standardError.write(Data("error: configuration: \(error.message)\n".utf8))
        throw ExitCode(2)
    }
}
