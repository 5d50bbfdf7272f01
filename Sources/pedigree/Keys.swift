import Access
import ArgumentParser
import Foundation
import Serving

/// `pedigree keys create|list|revoke`: the keys file of the cache folder (or `--keys-file`).
/// The server reads the same file and notices changes at once.
struct Keys: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Create, list and revoke API keys (the keys file keeps only their SHA-256 digests).",
        subcommands: [Create.self, List.self, Revoke.self])

    struct Create: AsyncParsableCommand, ConfiguredCommand {
        static let configurationGroups: [ConfigurationKey.Group] = [.common, .access]

        static let configuration = CommandConfiguration(
            abstract: "Create a key; the key is printed once, as the last line, and kept nowhere.")

        @Option(help: "The key's name: recorded as the caller of its inferences (letters, digits, '.', '_', '-').")
        var name: String

        @Option(help: "read (models, lineage), infer (+ generate, own inferences), audit (+ every inference), admin (everything).")
        var role: String

        @Option(help: "Requests per minute (default: key-requests-per-minute, else no limit).")
        var requestsPerMinute: Int?

        @Option(help: "Generated tokens per minute (default: key-tokens-per-minute, else no limit).")
        var tokensPerMinute: Int?

        @Option(help: "Generations at once (default: key-concurrent-generations, else no limit).")
        var concurrentGenerations: Int?

        @OptionGroup var common: CommonOptions

        func run() async throws {
            guard let role = Role(rawValue: role) else {
                throw ValidationError("--role must be one of \(Role.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            for (flag, value) in [
                ("requests-per-minute", requestsPerMinute), ("tokens-per-minute", tokensPerMinute), ("concurrent-generations", concurrentGenerations),
            ] {
                if let value, value < 1 { throw ValidationError("--\(flag) must be at least 1") }
            }
            let file = try await keysFile(common)
            let (record, key) = try orExit {
                try file.create(
                    name: name, role: role,
                    limits: QuotaLimits(
                        requestsPerMinute: requestsPerMinute, tokensPerMinute: tokensPerMinute, concurrentGenerations: concurrentGenerations))
            }
            print("created key \(record.id) '\(record.name)' with role \(record.role.rawValue) in \(file.url.path)")
            print("it is shown once; send it as 'Authorization: Bearer <key>':")
            print(key.text)
        }
    }

    struct List: AsyncParsableCommand, ConfiguredCommand {
        static let configurationGroups: [ConfigurationKey.Group] = [.common, .access]

        static let configuration = CommandConfiguration(abstract: "List the keys (names, roles, quotas; never the keys).")

        @Flag(help: "Print JSON.")
        var json = false

        @OptionGroup var common: CommonOptions

        func run() async throws {
            let file = try await keysFile(common)
            let keys = try orExit { try file.load() }
            if json {
                print(try encodeJSON(keys.map(KeyRow.init)))
                return
            }
            let formatter = ISO8601DateFormatter()
            let rows = keys.map { key in
                [
                    key.id, key.name, key.role.rawValue, formatter.string(from: key.created), key.revoked.map(formatter.string(from:)) ?? "active",
                    [
                        key.limits.requestsPerMinute.map { "\($0) req/min" }, key.limits.tokensPerMinute.map { "\($0) tok/min" },
                        key.limits.concurrentGenerations.map { "\($0) at once" },
                    ].compactMap { $0 }.joined(separator: ", "),
                ]
            }
            print(table(["ID", "NAME", "ROLE", "CREATED", "REVOKED", "QUOTAS"], rows))
        }
    }

    struct Revoke: AsyncParsableCommand, ConfiguredCommand {
        static let configurationGroups: [ConfigurationKey.Group] = [.common, .access]

        static let configuration = CommandConfiguration(abstract: "Revoke a key by name or id; a running server refuses it at once.")

        @Argument(help: "The key's name or id.")
        var key: String

        @OptionGroup var common: CommonOptions

        func run() async throws {
            let file = try await keysFile(common)
            let record = try orExit { try file.revoke(key) }
            print("revoked key \(record.id) '\(record.name)'")
        }
    }
}

/// A key as `keys list --json` shows it.
private struct KeyRow: Encodable {
    let id: String
    let name: String
    let role: String
    let created: Date
    let revoked: Date?
    let limits: QuotaLimits
    init(_ record: KeyRecord) {
        id = record.id
        name = record.name
        role = record.role.rawValue
        created = record.created
        revoked = record.revoked
        limits = record.limits
    }
}

/// The keys file the configuration names (`keys-file`, else `<cache>/keys.json`).
private func keysFile(_ common: CommonOptions) async throws -> KeyFile {
    try await loadConfiguration(common, requireRepo: false, quiet: true).serving.keys
}

/// Columns padded to their widest cell.
private func table(_ header: [String], _ rows: [[String]]) -> String {
    let all = [header] + rows
    let widths = header.indices.map { column in all.map { $0[column].count }.max() ?? 0 }
    return all.map { row in
        row.enumerated().map { column, cell in column == row.count - 1 ? cell : cell.padding(toLength: widths[column], withPad: " ", startingAt: 0) }
            .joined(separator: "  ")
    }.joined(separator: "\n")
}
