import Foundation
import Inference
import Ledger
import Logging
import Testing

@testable import Serving

@Suite struct ConfigurationLoaderTests {
    private func file(_ text: String) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("pedigree-\(UUID().uuidString).yaml").path
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    @Test func flagsBeatEnvironmentBeatFileBeatDefaults() async throws {
        let path = try file("port: 9003\nslots: 7\nkeep-alive: 2m\npreload: [a@main, b#prod]\nledger-text: hash\n")
        defer { try? FileManager.default.removeItem(atPath: path) }
        let environment = ["PEDIGREE_SLOTS": "5", "PEDIGREE_JOBS": "3", "HOME": "/tmp"]
        let loaded = try await ConfigurationLoader.load(
            flags: ["port": ["9001"]], file: path, environment: environment, requireRepo: false)
        #expect(loaded.serving.port == 9001)
        #expect(loaded.serving.models.slots == 5)
        #expect(loaded.serving.jobs == 3)
        #expect(loaded.serving.models.keepAlive == .seconds(120))
        #expect(loaded.serving.preload == ["a@main", "b#prod"])
        #expect(loaded.serving.ledgerStoreText == false)
        #expect(loaded.serving.models.queueLimit == 16)  // default
        let sources = Dictionary(uniqueKeysWithValues: loaded.entries.map { ($0.key.name, $0.source.description) })
        #expect(sources["port"] == "flag --port")
        #expect(sources["slots"] == "environment PEDIGREE_SLOTS")
        #expect(sources["keep-alive"] == "file \(path)")
        #expect(sources["queue"] == "default")
    }

    @Test(arguments: [
        ("prot: 1\n", "unknown key 'prot'"),
        ("port: x\n", "port: 'x' is not an integer"),
        ("port: 0\n", "port: 0 is out of range"),
        ("slots: {a: 1}\n", "slots: expected a single value"),
        ("verify-cache: maybe\n", "verify-cache: 'maybe' is not true or false"),
        ("memory-budget: 3Q\n", "memory-budget: '3Q' is not a size"),
        ("log-format: xml\n", "log-format: 'xml' is not one of text, json"),
        ("- a\n- b\n", "the top level must be a mapping"),
    ])
    func badValuesNameTheirKey(text: String, message: String) async throws {
        let path = try file(text)
        defer { try? FileManager.default.removeItem(atPath: path) }
        await #expect {
            _ = try await ConfigurationLoader.load(flags: [:], file: path, environment: [:], requireRepo: false)
        } throws: { error in
            (error as? ConfigurationError)?.message.contains(message) == true
        }
    }

    @Test func aMissingRepositoryIsAnErrorWhenRequired() async throws {
        let empty = FileManager.default.temporaryDirectory.appendingPathComponent("pedigree-empty-\(UUID().uuidString)").path
        await #expect(throws: ConfigurationError.self) {
            _ = try await ConfigurationLoader.load(flags: ["cache": [empty]], file: nil, environment: [:], requireRepo: true)
        }
    }

    @Test func urlPasswordsAreRedacted() {
        #expect(Redaction.urlCredentials(in: "postgres://u:pw@h:5432/db") == "postgres://u:<redacted>@h:5432/db")
        #expect(Redaction.urlCredentials(in: "https://ghp_token@h/r.git") == "https://<redacted>@h/r.git")
        #expect(Redaction.urlCredentials(in: "https://h/r@v1") == "https://h/r@v1")
        #expect(Redaction.urlCredentials(in: "/srv/repo") == "/srv/repo")
    }

    @Test func everyDefaultAndExampleReadsBackAsItIsShown() throws {
        for key in ConfigurationKey.all {
            var settings = ConfigurationSettings.defaults
            if let shown = key.read(settings) {
                try key.write(&settings, shown)
                #expect(key.read(settings) == shown, "\(key.name)")
            }
            if !key.example.isEmpty {
                var settings = ConfigurationSettings.defaults
                try key.write(&settings, key.example)
                #expect(key.read(settings) == key.example, "\(key.name)")
            }
            // A key without a plain default shows an example in the file; every key has a flag somewhere.
            #expect(key.hasPlainDefault || !key.example.isEmpty, "\(key.name)")
            #expect(!key.groups.isEmpty, "\(key.name)")
        }
        #expect(Set(ConfigurationKey.all.map(\.flag)).count == ConfigurationKey.all.count)
        #expect(Set(ConfigurationKey.all.map(\.environmentName)).count == ConfigurationKey.all.count)
    }

    @Test func choicesDecodeIntoTheirEnumerations() async throws {
        let loaded = try await ConfigurationLoader.load(
            flags: ["decode-mode": ["mixed"], "ledger-failure": ["fail"], "log-format": ["json"], "log-level": ["debug"]], file: nil,
            environment: ["PEDIGREE_LEDGER_TEXT": "hash"], requireRepo: false)
        #expect(loaded.serving.models.decodeMode == .mixed)
        #expect(loaded.serving.ledgerFailure == .fail)
        #expect(loaded.serving.ledgerText == .hash)
        #expect(loaded.logFormat == .json)
        #expect(loaded.logLevel == .debug)
    }

    /// `pedigree.example.yaml` is what `pedigree config example` writes from the table.
    @Test func theCommittedExampleIsTheGeneratedOne() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let committed = try String(contentsOf: root.appendingPathComponent("pedigree.example.yaml"), encoding: .utf8)
        #expect(committed == ConfigurationKey.exampleFile(), "run: .build/debug/pedigree config example > pedigree.example.yaml")
    }

    @Test func sizes() {
        #expect(ByteSize.exact(256 << 20) == "256M")
        #expect(ByteSize.exact(1536 << 10) == "1536K")
        #expect(ByteSize.exact(100) == "100")
        #expect(ByteSize.exact(0) == "0")
        #expect(ByteSize.parse("20G") == 20 << 30)
        #expect(ByteSize.parse("500MiB") == 500 << 20)
        #expect(ByteSize.parse("123") == 123)
        #expect(ByteSize.parse("-1") == nil)
        #expect(ByteSize.parse("99999999999T") == nil)
    }
}
