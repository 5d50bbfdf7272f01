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
                a trusted key (--public-key, --keys, else the receipt key and those it replaced) and be the statement its row makes now. \
                Each record's leaf must be its statement's, every signed tree head must verify and be the root of the leaves \
                at its size.
                """)

        @Option(help: "A trusted Ed25519 public key, 32 bytes in hex (repeatable).")
        var publicKey: [String] = []

        @Option(help: "A file of trusted keys as GET /receipt-keys answers.")
        var keys: String?

        @Option(help: "A signed tree head kept outside the database (its DSSE envelope's JSON, as TreeHead.envelope or the log give it); repeatable.")
        var treeHead: [String] = []

        @OptionGroup var common: CommonOptions

        func run() async throws {
            let loaded = try await loadConfiguration(common, requireRepo: false, quiet: true)
            var trusted = try Verify.trustedKeys(publicKey, keys)
            if trusted.isEmpty { trusted = try orExit { try Services.receiptPublicKeys(loaded.serving) } }
            let opened = try orExit {
                try Services.openLedger(loaded.serving.ledgerURL, password: try loaded.serving.ledgerPassword(), logger: Logger(label: "pedigree"))
            }
            guard let store = opened else { throw ValidationError("the ledger is off") }
            let keys = trusted
            var external: [TreeHead] = []
            for path in treeHead {
                guard let text = FileManager.default.contents(atPath: path) else { throw ValidationError("--tree-head \(path) cannot be read") }
                do {
                    external.append(try TreeHead(envelope: String(decoding: text, as: UTF8.self), trusting: keys))
                } catch {
                    FileHandle.standardError.write(Data("FAIL tree head in \(path): \(error)\n".utf8))
                    throw ExitCode(1)
                }
            }
            let failure: String? = try await store.withBackgroundWork {
                let sequence = try await store.sequence()
                if sequence.unpositioned > sequence.legacy {
                    return "\(sequence.unpositioned) records have no position, but only \(sequence.legacy) were made before positions"
                }
                var heads: [TreeHead]
                switch try await Self.signedHeads(store, trusting: keys) {
                case .success(let verified): heads = verified
                case .failure(let problem): return problem.message
                }
                // Heads kept outside the database (a copy from the log or from GraphQL): someone
                // who can write the database can delete heads, not these.
                for head in external {
                    if let same = heads.first(where: { $0.size == head.size }) {
                        if same.rootHash != head.rootHash { return "tree head of size \(head.size): the ledger's is not the one given (a fork)" }
                    } else {
                        heads.append(head)
                    }
                }
                heads.sort { $0.size < $1.size }
                // Each record against its receipt and its leaf, every position from just past what
                // retention removed to the last one given, a page at a time across the cores.
                var expected = sequence.floor + 1
                while true {
                    let page = try await store.records(afterPosition: expected - 1, limit: 2000)
                    guard !page.isEmpty else { break }
                    let leaves = Dictionary(
                        try await store.leaves(afterPosition: expected - 1, limit: 2000).map { ($0.position, $0.hash) },
                        uniquingKeysWith: { first, _ in first })
                    var gap: Int64?
                    var checked: [InferenceRecord] = []
                    for record in page {
                        guard let position = record.position else { continue }
                        if position != expected {
                            gap = expected
                            break
                        }
                        checked.append(record)
                        expected = position + 1
                    }
                    if let failure = await Self.firstFailure(checked, leaves: leaves, trusting: keys),
                        gap.map({ failure.position < $0 }) ?? true
                    {
                        return failure.message
                    }
                    if let gap { return "position \(gap): missing (a deleted record, or one moved)" }
                }
                if expected <= sequence.last { return "position \(expected): missing (positions \(expected) to \(sequence.last) were given)" }
                let checked = expected - sequence.floor - 1
                print("verified \(checked) records\(checked > 0 ? ", positions \(sequence.floor + 1) to \(expected - 1)" : "")")
                return try await Self.verifyTree(store, heads: heads, last: sequence.last)
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
        struct Problem: Error {
            let position: Int64
            let message: String
        }

        /// The ledger's signed heads, smallest first, each verified with a trusted key and equal to
        /// its row; or what is wrong with the first that is not.
        static func signedHeads(_ store: any InferenceLedger, trusting keys: [Curve25519.Signing.PublicKey]) async throws
            -> Result<[TreeHead], Problem>
        {
            var heads: [TreeHead] = []
            for stored in try await store.treeHeads() {
                let name = "tree head of size \(stored.size)"
                guard let head = try? TreeHead(envelope: stored.envelope, trusting: keys) else {
                    return .failure(Problem(position: stored.size, message: "\(name): its signature does not verify with a trusted key"))
                }
                if head.size != stored.size || head.rootHash != stored.root {
                    return .failure(Problem(position: stored.size, message: "\(name): its row is not what its envelope signs"))
                }
                heads.append(head)
            }
            return .success(heads)
        }

        /// The first record of `records` (in position order) whose receipt or leaf is wrong, checked
        /// in parallel slices. Every receipt's signature is checked: a signed head only says which
        /// leaves the table held when it was signed, not that each was a signed statement.
        static func firstFailure(_ records: [InferenceRecord], leaves: [Int64: Data], trusting keys: [Curve25519.Signing.PublicKey]) async
            -> Problem?
        {
            let slices = max(1, min(ProcessInfo.processInfo.activeProcessorCount, records.count / 64))
            let size = (records.count + slices - 1) / slices
            // (The key type is not Sendable: each task makes its own from the bytes.)
            let raw = keys.map(\.rawRepresentation)
            return await withTaskGroup(of: Problem?.self) { group in
                for start in stride(from: 0, to: records.count, by: max(size, 1)) {
                    let slice = records[start..<min(start + size, records.count)]
                    group.addTask {
                        let keys = raw.compactMap { try? Curve25519.Signing.PublicKey(rawRepresentation: $0) }
                        for record in slice {
                            let position = record.position ?? 0
                            let (problems, leaf) = InferenceReceipt.check(record, trusting: keys)
                            if !problems.isEmpty {
                                return Problem(
                                    position: position, message: "position \(position) (inference \(record.id)): \(problems.joined(separator: "; "))")
                            }
                            if let stored = leaves[position], stored != leaf {
                                return Problem(
                                    position: position,
                                    message: "position \(position) (inference \(record.id)): its leaf in the tree is not its receipt's statement")
                            }
                        }
                        return nil
                    }
                }
                var first: Problem?
                for await problem in group {
                    if let problem, problem.position < first?.position ?? .max { first = problem }
                }
                return first
            }
        }

        /// The tree: the leaves (each record's, checked above, and those of records retention
        /// removed) must give the root each verified head signs — so a record removed, added or
        /// changed after a head was signed is seen even where the rows and the sequence were made
        /// to agree. Heads of one tree are consistent with each other by construction (one run of
        /// leaves gives every root).
        static func verifyTree(_ store: any InferenceLedger, heads: [TreeHead], last: Int64) async throws -> String? {
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
