import ArgumentParser
import Crypto
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
                // Each record against its receipt and its leaf, every position from just past what
                // retention removed to the last one given.
                var expected = sequence.floor + 1
                while true {
                    let page = try await store.records(afterPosition: expected - 1, limit: 1000)
                    guard !page.isEmpty else { break }
                    let leaves = Dictionary(
                        try await store.leaves(afterPosition: expected - 1, limit: 1000).map { ($0.position, $0.hash) },
                        uniquingKeysWith: { first, _ in first })
                    for record in page {
                        guard let position = record.position else { continue }
                        if position != expected { return "position \(expected): missing (a deleted record, or one moved)" }
                        let problems = InferenceReceipt.problems(of: record, trusting: keys)
                        if !problems.isEmpty { return "position \(position) (inference \(record.id)): \(problems.joined(separator: "; "))" }
                        if let leaf = leaves[position], leaf != InferenceReceipt.leafHash(of: record) {
                            return "position \(position) (inference \(record.id)): its leaf in the tree is not its receipt's statement"
                        }
                        expected = position + 1
                    }
                }
                if expected <= sequence.last { return "position \(expected): missing (positions \(expected) to \(sequence.last) were given)" }
                let checked = expected - sequence.floor - 1
                print("verified \(checked) records\(checked > 0 ? ", positions \(sequence.floor + 1) to \(expected - 1)" : "")")
                return try await Self.verifyTree(store, last: sequence.last, trusting: keys)
            }
            if let failure {
                FileHandle.standardError.write(Data("FAIL \(failure)\n".utf8))
                throw ExitCode(1)
            }
        }

        /// The tree: every signed head must verify with a trusted key, and the leaves (each
        /// record's, checked above, and those of records retention removed) must give the root
        /// each head signs — so a record removed, added or changed after a head was signed is seen
        /// even where the rows and the sequence were made to agree. Heads of one tree are
        /// consistent with each other by construction (one run of leaves gives every root).
        static func verifyTree(_ store: any InferenceLedger, last: Int64, trusting keys: [Curve25519.Signing.PublicKey]) async throws -> String? {
            var heads: [TreeHead] = []
            for stored in try await store.treeHeads() {
                guard let head = try? TreeHead(envelope: stored.envelope, trusting: keys) else {
                    return "tree head of size \(stored.size): its signature does not verify with a trusted key"
                }
                if head.size != stored.size || head.rootHash != stored.root {
                    return "tree head of size \(stored.size): its row is not what its envelope signs"
                }
                heads.append(head)
            }
            guard let newest = heads.last else {
                print("no signed tree head yet")
                return nil
            }
            if newest.size > last {
                return "position \(last + 1): missing (the tree head of size \(newest.size), signed \(newest.time.formatted(.iso8601)), holds it)"
            }
            var frontier = MerkleFrontier()
            var pending = heads[...]
            while let head = pending.first {
                let page = try await store.leaves(afterPosition: Int64(frontier.size), limit: 10_000)
                let before = frontier.size
                for leaf in page {
                    guard leaf.position == Int64(frontier.size) + 1 else { break }
                    frontier.append(leaf.hash)
                    if let head = pending.first, Int64(frontier.size) == head.size {
                        if frontier.root != head.rootHash {
                            return
                                "tree head of size \(head.size): the leaves of positions 1 to \(head.size) give another root (one was changed, added or removed after it was signed)"
                        }
                        pending.removeFirst()
                    }
                }
                if frontier.size == before {
                    return "position \(frontier.size + 1): no leaf in the tree (the tree head of size \(head.size) holds one)"
                }
            }
            print("tree: \(heads.count) signed heads verified, the newest of size \(newest.size) (root \(newest.rootHex))")
            return nil
        }
    }
}
