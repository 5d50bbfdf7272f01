import ArgumentParser
import Foundation
import Ledger
import Logging
import Serving
import Trust

struct LedgerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ledger", abstract: "Work with the inference ledger.", subcommands: [Export.self, VerifyLedger.self])

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

    struct VerifyLedger: AsyncParsableCommand, ConfiguredCommand {
        static let configurationGroups: [ConfigurationKey.Group] = [.common, .ledger]

        static let configuration = CommandConfiguration(
            commandName: "verify",
            abstract: "Check every record against its signed receipt, in ledger order; exits 1 naming the first bad position.",
            discussion: """
                Positions must run from just past what retention removed to the last one given (a missing one is a deleted \
                record), no record may lack one but those made before positions, and each record's receipt must verify with \
                a trusted key (--public-key, --keys, else this cache's receipt key) and be the statement its row makes now.
                """)

        @Option(help: "A trusted Ed25519 public key, 32 bytes in hex (repeatable).")
        var publicKey: [String] = []

        @Option(help: "A file of trusted keys as GET /receipt-keys answers.")
        var keys: String?

        @OptionGroup var common: CommonOptions

        func run() async throws {
            let loaded = try await loadConfiguration(common, requireRepo: false, quiet: true)
            var trusted = try Verify.trustedKeys(publicKey, keys)
            if trusted.isEmpty { trusted.append(try orExit { try Services.receiptKey(loaded.serving, create: false) }.publicKey) }
            let opened = try orExit {
                try Services.openLedger(loaded.serving.ledgerURL, password: try loaded.serving.ledgerPassword(), logger: Logger(label: "pedigree"))
            }
            guard let store = opened else { throw ValidationError("the ledger is off") }
            let keys = trusted
            let failure: String? = try await store.withBackgroundWork {
                let sequence = try await store.sequence()
                if sequence.unpositioned > sequence.legacy {
                    return "\(sequence.unpositioned) records have no position, but only \(sequence.legacy) were made before positions"
                }
                // Every position from just past what retention removed to the last one given.
                var expected = sequence.floor + 1
                while true {
                    let page = try await store.records(afterPosition: expected - 1, limit: 1000)
                    guard !page.isEmpty else { break }
                    for record in page {
                        guard let position = record.position else { continue }
                        if position != expected { return "position \(expected): missing (a deleted record, or one moved)" }
                        let problems = InferenceReceipt.problems(of: record, trusting: keys)
                        if !problems.isEmpty { return "position \(position) (inference \(record.id)): \(problems.joined(separator: "; "))" }
                        expected = position + 1
                    }
                }
                if expected <= sequence.last { return "position \(expected): missing (positions \(expected) to \(sequence.last) were given)" }
                let checked = expected - sequence.floor - 1
                print("verified \(checked) records\(checked > 0 ? ", positions \(sequence.floor + 1) to \(expected - 1)" : "")")
                return nil
            }
            if let failure {
                FileHandle.standardError.write(Data("FAIL \(failure)\n".utf8))
                throw ExitCode(1)
            }
        }
    }
}
