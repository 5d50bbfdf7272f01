import Foundation
import Ledger
import Testing

@testable import Serving

/// A receipt's statement is written by hand (member by member, on every answer's path); the bytes
/// must be what `JSONEncoder` makes of the statement as a type — the format receipts signed so far
/// have. Records of every shape (optionals absent and present, strings with every escape, the
/// lineage, sampling and signature as the recorder stores them) are compared byte for byte.
struct ReceiptStatementTests {
    struct Statement: Encodable {
        struct Subject: Encodable {
            let name: String
            let digest: [String: String]
        }
        let type = InferenceReceipt.statementType
        let subject: [Subject]
        let predicateType = InferenceReceipt.predicateType
        let predicate: Predicate

        enum CodingKeys: String, CodingKey {
            case type = "_type"
            case subject, predicateType, predicate
        }
    }

    struct Predicate: Encodable {
        struct Artifact: Encodable {
            let md5: String
            let sha256: String?
            let signature: JSONFragment?
        }
        struct Input: Encodable {
            let kind: String
            let sha256: String
        }
        struct Usage: Encodable {
            let promptTokens: Int
            let completionTokens: Int
        }
        let inference: String
        let position: Int64?
        let createdAt: String
        let status: String
        let error: String?
        let model: String
        let revision: String
        let commit: String
        let artifact: Artifact
        let lineage: JSONFragment
        let input: Input
        let sampling: JSONFragment
        let seed: Int64
        let engine: String
        let finishReason: String
        let usage: Usage
        let caller: String?
        let callerKey: String?
        let requestID: String?
        let signer: String
    }

    /// The statement as the Encodable types make it.
    static func reference(_ record: InferenceRecord, text: String, tokens: [Int32], input: String, signer: String) throws -> Data {
        let tokenJSON = try JSONEncoder().encode(tokens)
        func hex(_ data: Data) -> String { InferenceReceipt.hex(data) }
        let statement = Statement(
            subject: [
                .init(name: "output", digest: ["sha256": hex(Data(text.utf8))]),
                .init(name: "output-token-ids", digest: ["sha256": hex(tokenJSON)]),
            ],
            predicate: Predicate(
                inference: record.id, position: record.position, createdAt: record.createdAt.formatted(.iso8601), status: record.status.rawValue,
                error: record.error, model: record.model, revision: record.revision, commit: record.commit,
                artifact: .init(md5: record.artifactMD5, sha256: record.artifactSHA256, signature: record.signature.map(JSONFragment.init)),
                lineage: JSONFragment(record.lineage), input: .init(kind: record.inputKind.rawValue, sha256: hex(Data(input.utf8))),
                sampling: JSONFragment(record.sampling), seed: record.seed, engine: record.engine, finishReason: record.finishReason,
                usage: .init(promptTokens: record.promptTokens, completionTokens: record.completionTokens), caller: record.caller,
                callerKey: record.callerKey, requestID: record.requestID, signer: signer))
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return try encoder.encode(statement)
    }

    struct Sampling: Encodable {
        let temperature: Double
        let topP: Double
        let seed: Int
        let stop: [String]
    }

    /// Times around the edges of the calendar: the epoch, month and year ends, a leap day, the last second of 9999.
    static let dates: [Date] = [0, 951_782_399.999, 1_764_000_000, 1_767_225_599, 1_709_164_800, 4_102_444_799.5, 253_402_300_799].map {
        Date(timeIntervalSince1970: $0)
    }

    /// Strings that need every escape JSON has, and some that need none.
    static let texts: [String] = {
        var controls = ""
        for value in 0..<0x20 { controls.unicodeScalars.append(Unicode.Scalar(value)!) }
        return ["", "plain", controls, "quote \" backslash \\ slash / é \u{2028} 😀 \u{7f}", "models/tiny-llama/model.gguf", "line\nbreak\ttab"]
    }()

    @Test func handWrittenStatementsEqualTheEncodedOnes() throws {
        var generator = SystemRandomNumberGenerator()
        let recorder = JSONEncoder()
        recorder.outputFormatting = [.sortedKeys]  // as InferenceRecorder stores lineage, sampling and signature
        func stored(_ value: some Encodable) throws -> String { String(decoding: try recorder.encode(value), as: UTF8.self) }
        for round in 0..<400 {
            func text() -> String { Self.texts.randomElement(using: &generator)! }
            func maybe(_ value: String) -> String? { Bool.random(using: &generator) ? value : nil }
            let lineage = try stored([
                "code": [["md5": "0f", "path": "src/train.py"]], "datasets": [["md5": "ab", "path": text()]],
                "parameters": [["file": "params.yaml", "key": "tiny.seed", "value": text()]],
            ])
            let sampling = try stored(Sampling(temperature: [0.7, 0, 1e-5, 1.25, 1e21][round % 5], topP: 0.95, seed: round, stop: [text()]))
            let signature = try stored([
                "file": "models/m/model.gguf.sig", "method": "certificate", "signer": "O=Demo,CN=\(text())", "status": "verified",
            ])
            var record = InferenceRecord(
                id: "01K\(round)", createdAt: Self.dates[round % Self.dates.count] + Double(round * 7) / 1000, caller: maybe(text()),
                status: [.completed, .cancelled, .failed][round % 3], error: maybe(text()), model: "tiny-llama", revision: "tiny-llama@\(round)",
                commit: String(repeating: "a", count: 40), artifactMD5: "d41d8cd98f00b204e9800998ecf8427e", lineage: lineage,
                engine: #"{"build":"b1","cpu":"AVX2 \#(text())"}"#, sampling: sampling, seed: Int64(round) - 200,
                inputKind: Bool.random(using: &generator) ? .prompt : .messages, input: text(), output: text(), finishReason: "stop",
                promptTokens: round, completionTokens: round * 3, completionTokenIDs: "[]", timeToFirstTokenMs: 1, totalMs: 2,
                requestID: maybe(text()), callerKey: maybe("k_\(round)"), position: round % 4 == 0 ? nil : Int64(round),
                artifactSHA256: maybe(String(repeating: "e", count: 64)), signature: round % 5 == 0 ? "not json \(text())" : maybe(signature))
            if round % 7 == 0 { record.lineage = "{}" }
            let tokens = (0..<(round % 9)).map { _ in Int32.random(in: -5...50_000, using: &generator) }
            let (answer, input) = (text(), text())
            let made = try InferenceReceipt.statement(record, text: answer, tokens: tokens, input: input, signer: "signer-\(round)")
            let expected = try Self.reference(record, text: answer, tokens: tokens, input: input, signer: "signer-\(round)")
            if let position = record.position {
                // Made before the write with the position left open, then placed: the same bytes.
                let pending = try InferenceReceipt.prepare(record, text: answer, tokens: tokens, input: input, signer: "signer-\(round)")
                #expect(pending.payload(at: position) == made, "round \(round): the position placed")
            }
            #expect(made == expected, "round \(round):\n\(String(decoding: made, as: UTF8.self))\n\(String(decoding: expected, as: UTF8.self))")
        }
    }
}
