import ArgumentParser
import Foundation
import Ledger
import Logging
import Serving

struct LedgerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ledger", abstract: "Work with the inference ledger.", subcommands: [Export.self])

    struct Export: AsyncParsableCommand, ConfiguredCommand {
        static let configurationGroups: [ConfigurationKey.Group] = [.common, .ledger]

        static let configuration = CommandConfiguration(abstract: "Print recorded inferences as JSON lines, oldest first (for audits).")

        @Option(help: "From this ISO-8601 time (inclusive).")
        var since: String?

        @Option(help: "Until this ISO-8601 time (exclusive).")
        var until: String?

        @Option(help: "Output format (jsonl).")
        var format = "jsonl"

        @OptionGroup var common: CommonOptions

        func run() async throws {
            guard format == "jsonl" else { throw ValidationError("--format: jsonl") }
            func date(_ text: String?, _ name: String) throws -> Date? {
                guard let text else { return nil }
                guard let parsed = ISO8601DateFormatter().date(from: text) else {
                    throw ValidationError("\(name): an ISO-8601 time such as 2026-11-25T10:00:00Z")
                }
                return parsed
            }
            let loaded = try await loadConfiguration(common, requireRepo: false, quiet: true)
            let opened = try orExit {
                try Services.openLedger(loaded.serving.ledgerURL, password: try loaded.serving.ledgerPassword(), logger: Logger(label: "pedigree"))
            }
            guard let store = opened else { throw ValidationError("the ledger is off") }
            let (since, until) = (try date(self.since, "--since"), try date(self.until, "--until"))
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            encoder.dateEncodingStrategy = .iso8601
            try await store.withBackgroundWork {
                try await store.export(since: since, until: until, batch: 500) { records in
                    var lines = Data()
                    for record in records {
                        lines.append(try encoder.encode(record))
                        lines.append(10)
                    }
                    FileHandle.standardOutput.write(lines)
                }
            }
        }
    }
}
