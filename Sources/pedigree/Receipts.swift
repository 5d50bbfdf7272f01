import ArgumentParser
import Crypto
import DVCKit
import Foundation
import GitStore
import Ledger
import Lineage
import Logging
import Serving
import Trust

struct Receipt: AsyncParsableCommand, ConfiguredCommand {
    static let configurationGroups: [ConfigurationKey.Group] = [.common, .ledger]

    static let configuration = CommandConfiguration(
        abstract: "Print a recorded inference's signed receipt (a DSSE envelope of an in-toto statement).")

    @Argument(help: "The inference's id.")
    var id: String

    @OptionGroup var common: CommonOptions

    func run() async throws {
        let loaded = try await loadConfiguration(common, requireRepo: false, quiet: true)
        let opened = try orExit {
            try Services.openLedger(loaded.serving.ledgerURL, password: try loaded.serving.ledgerPassword(), logger: Logger(label: "pedigree"))
        }
        guard let store = opened else { throw ValidationError("the ledger is off") }
        let id = self.id
        let record = try await store.withBackgroundWork { try await store.inference(id: id) }
        guard let record else { throw ValidationError("no inference \(id) in the ledger") }
        guard let receipt = record.receipt else { throw ValidationError("inference \(id) was recorded without a receipt") }
        print(receipt)
    }
}

struct Verify: AsyncParsableCommand, ConfiguredCommand {
    static let configurationGroups: [ConfigurationKey.Group] = [.common, .artifacts]

    static let configuration = CommandConfiguration(
        abstract: "Check a receipt offline: its signature, and with --repo that its commit names the weights it says.",
        discussion: """
            Trusted keys: --public-key (hex, repeatable), --keys (the JSON of GET /receipt-keys), else this cache's own \
            receipt key. --output checks that a text is the answer the receipt signs. Exits 1 when anything does not hold.
            """)

    @Argument(help: "The receipt (a file; - for standard input).")
    var receipt: String

    @Option(help: "A trusted Ed25519 public key, 32 bytes in hex (repeatable).")
    var publicKey: [String] = []

    @Option(help: "A file of trusted keys as GET /receipt-keys answers.")
    var keys: String?

    @Option(help: "A file holding the answer's text: it must be what the receipt signs.")
    var output: String?

    @Option(help: "A file holding the exact input (the prompt, or the messages as JSON): it must be what the receipt signs.")
    var input: String?

    @OptionGroup var common: CommonOptions

    func run() async throws {
        let data = receipt == "-" ? FileHandle.standardInput.readDataToEndOfFile() : FileManager.default.contents(atPath: receipt)
        guard let data else { throw ValidationError("\(receipt) cannot be read") }
        let envelope = try orExit { try DSSEEnvelope(json: data) }
        var trusted = try Self.trustedKeys(publicKey, keys)
        let loaded = try await loadConfiguration(common, requireRepo: false, quiet: true)
        if trusted.isEmpty { trusted = try orExit { try Services.receiptPublicKeys(loaded.serving) } }
        var failures: [String] = []
        do {
            let signers = try envelope.verify(with: trusted)
            print("signature: verified (key \(signers.joined(separator: ", ")))")
        } catch {
            failures.append("signature: \(error)")
        }
        guard envelope.payloadType == DSSEEnvelope.inTotoType,
            let statement = try? JSONSerialization.jsonObject(with: envelope.payload) as? [String: Any],
            statement["_type"] as? String == InferenceReceipt.statementType,
            statement["predicateType"] as? String == InferenceReceipt.predicateType,
            let predicate = statement["predicate"] as? [String: Any], let subjects = statement["subject"] as? [[String: Any]]
        else {
            failures.append("statement: not a Pedigree inference statement")
            return try report(failures)
        }
        let revision = predicate["revision"] as? String ?? ""
        let artifact = predicate["artifact"] as? [String: Any] ?? [:]
        let md5 = artifact["md5"] as? String ?? ""
        let signature = artifact["signature"] as? [String: Any]
        print(
            "inference: \(predicate["inference"] as? String ?? "?") at \(predicate["createdAt"] as? String ?? "?"), ledger position \((predicate["position"] as? NSNumber).map { "\($0)" } ?? "none")"
        )
        print("revision: \(revision) (weights md5 \(md5)), seed \((predicate["seed"] as? NSNumber).map { "\($0)" } ?? "?")")
        if let sha256 = artifact["sha256"] as? String {
            let check = signature.map { check in
                [check["status"], check["method"], check["signer"], check["file"], check["reason"]].compactMap { $0 as? String }.joined(
                    separator: ", ")
            }
            print("weights: sha256 \(sha256), signature \(check ?? "not recorded")")
        }
        print("signed by: \(predicate["signer"] as? String ?? "?")")
        if let input {
            guard let bytes = FileManager.default.contents(atPath: input) else { throw ValidationError("\(input) cannot be read") }
            let digest = DVCHash.hexString(SHA256.hash(data: bytes))
            if (predicate["input"] as? [String: Any])?["sha256"] as? String == digest {
                print("input: the signed input")
            } else {
                failures.append("input: not the input the receipt signs")
            }
        }
        if let output {
            guard let text = FileManager.default.contents(atPath: output) else { throw ValidationError("\(output) cannot be read") }
            let digest = DVCHash.hexString(SHA256.hash(data: text))
            let signed = subjects.first { $0["name"] as? String == "output" }.flatMap { ($0["digest"] as? [String: Any])?["sha256"] as? String }
            if signed == digest { print("output: the signed answer") } else { failures.append("output: not the answer the receipt signs") }
        }
        if !loaded.serving.repo.isEmpty {
            let services = try orExit { try Services.open(loaded.serving, logger: Logger(label: "pedigree")) }
            do {
                let lineage = try services.lineage.lineage(revision)
                // A Git LFS pointer names the weights by SHA-256 (their md5 is learnt when fetched).
                let named =
                    lineage.artifact.origin == .lfs
                    ? lineage.artifact.sha256 != nil && lineage.artifact.sha256 == artifact["sha256"] as? String : lineage.artifact.md5 == md5
                if named, lineage.commit.sha == predicate["commit"] as? String,
                    signature?["file"] as? String == nil || signature?["file"] as? String == lineage.artifact.signature?.path
                {
                    print(
                        "repository: \(lineage.commit.sha.prefix(12)) names weights md5 \(md5)"
                            + (lineage.artifact.signature.map { " and their signature \($0.path)" } ?? ""))
                } else {
                    failures.append(
                        lineage.artifact.origin == .lfs
                            ? "repository: \(revision) names weights sha256 \(lineage.artifact.sha256 ?? "?"), not those the receipt signs"
                            : "repository: \(revision) names weights md5 \(lineage.artifact.md5), not \(md5)")
                }
            } catch {
                failures.append("repository: \(revision) does not resolve (\(error))")
            }
        }
        try report(failures)
    }

    private func report(_ failures: [String]) throws {
        for failure in failures { FileHandle.standardError.write(Data("FAIL \(failure)\n".utf8)) }
        if !failures.isEmpty { throw ExitCode(1) }
    }

    /// The keys given as hex (`--public-key`) and in a key list (`--keys`, as GET /receipt-keys answers).
    static func trustedKeys(_ hexKeys: [String], _ file: String?) throws -> [Curve25519.Signing.PublicKey] {
        var trusted: [Curve25519.Signing.PublicKey] = []
        for hex in hexKeys {
            guard let raw = Data(hex: hex), let key = try? Curve25519.Signing.PublicKey(rawRepresentation: raw) else {
                throw ValidationError("--public-key takes an Ed25519 public key in hex (64 digits): \(hex)")
            }
            trusted.append(key)
        }
        if let file {
            guard let text = FileManager.default.contents(atPath: file),
                let list = (try? JSONSerialization.jsonObject(with: text) as? [String: Any])?["keys"] as? [[String: Any]]
            else { throw ValidationError("--keys \(file) is not a key list (GET /receipt-keys)") }
            for entry in list {
                if let hex = (entry["keyval"] as? [String: Any])?["public"] as? String, let raw = Data(hex: hex),
                    let key = try? Curve25519.Signing.PublicKey(rawRepresentation: raw)
                {
                    trusted.append(key)
                }
            }
        }
        return trusted
    }
}

/// `pedigree receipt-key show|rotate`: the key receipts and tree heads are signed with.
struct ReceiptKeyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "receipt-key", abstract: "Show or rotate the key receipts and tree heads are signed with.",
        subcommands: [Show.self, Rotate.self])

    struct Show: AsyncParsableCommand, ConfiguredCommand {
        static let configurationGroups: [ConfigurationKey.Group] = [.common, .ledger]
        static let configuration = CommandConfiguration(
            abstract: "Print the public keys receipts verify with, as GET /receipt-keys does: the key in use, then retired ones.")

        @OptionGroup var common: CommonOptions

        func run() async throws {
            let loaded = try await loadConfiguration(common, requireRepo: false, quiet: true)
            let keys = try orExit { try Services.receiptPublicKeys(loaded.serving) }
            let data = try JSONSerialization.data(withJSONObject: ["keys": keys.map(ReceiptKey.published)], options: [.sortedKeys])
            print(String(decoding: data, as: UTF8.self))
        }
    }

    struct Rotate: AsyncParsableCommand, ConfiguredCommand {
        static let configurationGroups: [ConfigurationKey.Group] = [.common, .ledger]
        static let configuration = CommandConfiguration(
            abstract: "Make a new receipt key; the old public key stays published and trusted (FILE.retired).",
            discussion: "Servers sign with the new key once restarted; what the old one signed still verifies.")

        @OptionGroup var common: CommonOptions

        func run() async throws {
            let loaded = try await loadConfiguration(common, requireRepo: false, quiet: true)
            let path = loaded.serving.receiptKeyPath
            let (old, new) = try orExit { () throws -> (ReceiptKey, ReceiptKey) in
                do { return try ReceiptKey.rotate(at: path) } catch { throw ConfigurationError("receipt key: \(error)") }
            }
            print("retired \(old.keyID)")
            print("now \(new.keyID)")
        }
    }
}
