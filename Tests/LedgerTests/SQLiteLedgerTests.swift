import Foundation
import Testing

@testable import Ledger

struct SQLiteLedgerTests {
    static func record(_ id: String, model: String = "m", revision: String = "m@abc", caller: String? = nil, at date: Date = Date())
        -> InferenceRecord
    {
        InferenceRecord(
            id: id, createdAt: date, caller: caller, status: .completed, error: nil, model: model, revision: revision, commit: "abc",
            artifactMD5: "d41d8cd98f00b204e9800998ecf8427e", lineage: "{}", engine: "test", sampling: "{}", seed: 7, inputKind: .prompt,
            input: "hi", output: "there", finishReason: "length", promptTokens: 1, completionTokens: 1, completionTokenIDs: "[1]",
            timeToFirstTokenMs: 1, totalMs: 2)
    }

    static func temporaryLedger() throws -> (SQLiteLedger, URL) {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("ledger-\(UUID().uuidString)")
        return (try SQLiteLedger(path: folder.appendingPathComponent("ledger.sqlite").path), folder)
    }

    @Test func idsSortByCreationTime() {
        let early = RecordID.make(at: Date(timeIntervalSince1970: 1_000))
        let late = RecordID.make(at: Date(timeIntervalSince1970: 2_000))
        #expect(early < late && RecordID.isValid(early) && !RecordID.isValid("nope"))
    }

    @Test func recordsRoundTripAndPageNewestFirst() async throws {
        let (ledger, folder) = try Self.temporaryLedger()
        defer { try? FileManager.default.removeItem(at: folder) }
        let base = Date(timeIntervalSince1970: 1_700_000_000)
        let ids = (0..<5).map { RecordID.make(at: base.addingTimeInterval(Double($0))) }
        for (index, id) in ids.enumerated() {
            try await ledger.record(Self.record(id, model: index.isMultiple(of: 2) ? "a" : "b", at: base.addingTimeInterval(Double(index))))
        }
        let stored = try #require(try await ledger.inference(id: ids[0]))
        var expected = Self.record(ids[0], model: "a", at: base)
        expected.position = 1  // the first in the ledger's sequence
        #expect(stored == expected)
        #expect(try await ledger.records(afterPosition: 2, limit: 10).map(\.position) == [3, 4, 5])
        let page = try await ledger.inferences(InferenceFilter(model: "a"), first: 2, after: nil)
        #expect(page.records.map(\.id) == [ids[4], ids[2]] && page.hasMore)
        let next = try await ledger.inferences(InferenceFilter(model: "a"), first: 2, after: page.records.last?.id)
        #expect(next.records.map(\.id) == [ids[0]] && !next.hasMore)
        let window = try await ledger.inferences(
            InferenceFilter(since: base.addingTimeInterval(1), until: base.addingTimeInterval(3)), first: 10, after: nil)
        #expect(window.records.map(\.id) == [ids[2], ids[1]])
        var exported: [String] = []
        try await ledger.export(since: nil, until: nil, batch: 2) { exported += $0.map(\.id) }
        #expect(exported == ids)
        #expect(try await ledger.applyRetention(maxAge: nil, maxRows: 3) == 2)
        #expect(try await ledger.inference(id: ids[0]) == nil)
        #expect(try await ledger.inferences(InferenceFilter(), first: 10, after: nil).records.count == 3)
        // Retention takes a prefix of the sequence and says where what is left begins.
        #expect(try await ledger.sequence() == LedgerSequence(last: 5, floor: 2, legacy: 0, unpositioned: 0))
        #expect(try await ledger.records(afterPosition: 0, limit: 10).map(\.position) == [3, 4, 5])
    }

    @Test func duplicateIDsAreRefused() async throws {
        let (ledger, folder) = try Self.temporaryLedger()
        defer { try? FileManager.default.removeItem(at: folder) }
        let id = RecordID.make()
        try await ledger.record(Self.record(id))
        await #expect(throws: (any Error).self) { try await ledger.record(Self.record(id)) }
    }

    @Test func privacyDigestIsMarked() {
        let digest = InferenceRecord.digest("secret prompt")
        #expect(digest.hasPrefix("sha256:") && digest.count == 71 && !digest.contains("secret"))
    }
}
