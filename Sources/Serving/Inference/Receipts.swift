public import Crypto
public import Foundation
import Inference
public import Ledger
public import Trust

/// A recorded inference's receipt: an in-toto Statement (v1) in a DSSE envelope signed with the
/// server's Ed25519 key. The subjects are the SHA-256 digests of the answer's text and of its
/// token ids (as JSON); the predicate says what made it: the canonical revision, commit and
/// weights' md5, the lineage, the digest of the exact input, the sampling with its seed, the
/// engine facts, the time, the calling key's id, the record's ledger position and the server's
/// key id. Made inside the ledger's write (once the position is known), from the answer as generated, so it proves the text to whoever holds it even when the
/// ledger keeps only digests.
public enum InferenceReceipt {
    public static let statementType = "https://in-toto.io/Statement/v1"
    public static let predicateType = "https://pedigree.dev/attestation/inference/v1"

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
        struct Artifact: Encodable { let md5: String }
        struct Input: Encodable {
            let kind: String
            let sha256: String
        }
        struct Usage: Encodable {
            let promptTokens: Int
            let completionTokens: Int
        }
        let inference: String
        /// The record's place in the ledger's sequence: a receipt signs where it stands.
        let position: Int64?
        let createdAt: String
        let status: String
        let error: String?
        let model: String
        let revision: String
        let commit: String
        let artifact: Artifact
        /// The lineage as the record holds it (pipeline, datasets, parameters, code).
        let lineage: RawJSON
        let input: Input
        let sampling: RawJSON
        let seed: Int64
        let engine: String
        let finishReason: String
        let usage: Usage
        let callerKey: String?
        let requestID: String?
        let signer: String
    }

    /// JSON text embedded as JSON (not as a string).
    struct RawJSON: Encodable {
        let value: JSONFragment
        init(_ text: String) { value = JSONFragment(text) }
        func encode(to encoder: any Encoder) throws { try value.encode(to: encoder) }
    }

    static func hex(_ data: some DataProtocol) -> String { SHA256.hash(data: Data(data)).map { String(format: "%02x", $0) }.joined() }

    /// The statement of `record`, whose answer was `text` with `tokens` and whose input was
    /// `input` (the texts as generated and sent, before any privacy digest).
    static func statement(_ record: InferenceRecord, text: String, tokens: [Int32], input: String, signer: String) throws -> Data {
        let tokenJSON = try JSONEncoder().encode(tokens)
        let statement = Statement(
            subject: [
                .init(name: "output", digest: ["sha256": hex(Data(text.utf8))]),
                .init(name: "output-token-ids", digest: ["sha256": hex(tokenJSON)]),
            ],
            predicate: Predicate(
                inference: record.id, position: record.position, createdAt: ISO8601DateFormatter().string(from: record.createdAt),
                status: record.status.rawValue,
                error: record.error, model: record.model, revision: record.revision, commit: record.commit,
                artifact: .init(md5: record.artifactMD5), lineage: RawJSON(record.lineage),
                input: .init(kind: record.inputKind.rawValue, sha256: hex(Data(input.utf8))), sampling: RawJSON(record.sampling),
                seed: record.seed, engine: record.engine, finishReason: record.finishReason,
                usage: .init(promptTokens: record.promptTokens, completionTokens: record.completionTokens), callerKey: record.callerKey,
                requestID: record.requestID, signer: signer))
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return try encoder.encode(statement)
    }

    /// The signed receipt (a DSSE envelope's JSON) of `record`.
    public static func sign(_ record: InferenceRecord, text: String, tokens: [Int32], input: String, with key: ReceiptKey) throws -> String {
        let payload = try statement(record, text: text, tokens: tokens, input: input, signer: key.keyID)
        return try DSSEEnvelope.sign(payload, with: key).json
    }
}

/// Any JSON value, decoded from text and encoded back as JSON.
indirect enum JSONFragment: Encodable {
    case null
    case bool(Bool)
    case number(Double)
    case integer(Int64)
    case string(String)
    case array([JSONFragment])
    case object([String: JSONFragment])

    init(_ text: String) {
        guard let object = try? JSONSerialization.jsonObject(with: Data(text.utf8), options: [.fragmentsAllowed]) else {
            self = .string(text)
            return
        }
        self = Self.from(object)
    }

    static func from(_ value: Any) -> JSONFragment {
        switch value {
        case is NSNull: return .null
        case let number as NSNumber where String(cString: number.objCType) == "c": return .bool(number.boolValue)
        case let number as NSNumber:
            let double = number.doubleValue
            if double == double.rounded(), abs(double) < 9e15 { return .integer(number.int64Value) }
            return .number(double)
        case let text as String: return .string(text)
        case let list as [Any]: return .array(list.map(from))
        case let object as [String: Any]: return .object(object.mapValues(from))
        default: return .null
        }
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .null: try container.encodeNil()
        case .bool(let value): try container.encode(value)
        case .number(let value): try container.encode(value)
        case .integer(let value): try container.encode(value)
        case .string(let value): try container.encode(value)
        case .array(let values): try container.encode(values)
        case .object(let values): try container.encode(values)
        }
    }
}

extension InferenceReceipt {
    /// What is wrong with a stored record against its receipt, checked with `keys` (empty when
    /// nothing): the receipt must verify with one of them and sign this record — its id, its
    /// position, its answer and token ids, its input, revision, commit, weights, sampling, seed,
    /// status and engine as the row holds them now. An edited row, a receipt moved to another
    /// position, a row without a receipt: each is named.
    public static func problems(of record: InferenceRecord, trusting keys: [Curve25519.Signing.PublicKey]) -> [String] {
        guard let text = record.receipt else { return ["no receipt"] }
        let envelope: DSSEEnvelope
        do {
            envelope = try DSSEEnvelope(json: Data(text.utf8))
            try envelope.verify(with: keys)
        } catch {
            return ["receipt: \(error)"]
        }
        guard let statement = try? JSONSerialization.jsonObject(with: envelope.payload) as? [String: Any],
            let predicate = statement["predicate"] as? [String: Any], let subjects = statement["subject"] as? [[String: Any]]
        else { return ["receipt: not an inference statement"] }
        func subject(_ name: String) -> String? {
            subjects.first { $0["name"] as? String == name }.flatMap { ($0["digest"] as? [String: Any])?["sha256"] as? String }
        }
        func json(_ text: String) -> NSObject? {
            (try? JSONSerialization.jsonObject(with: Data(text.utf8), options: [.fragmentsAllowed])) as? NSObject
        }
        var problems: [String] = []
        func expect(_ field: String, _ signed: Any?, _ stored: Any?) {
            if "\(signed.map { "\($0)" } ?? "nil")" != "\(stored.map { "\($0)" } ?? "nil")" {
                problems.append("\(field) is not what its receipt signs")
            }
        }
        expect("position", (predicate["position"] as? NSNumber)?.int64Value, record.position)
        expect("id", predicate["inference"], record.id)
        expect("output", subject("output"), hex(Data(record.output.utf8)))
        expect("token ids", subject("output-token-ids"), hex(Data(record.completionTokenIDs.utf8)))
        if !record.inputIsExcerpt { expect("input", (predicate["input"] as? [String: Any])?["sha256"], hex(Data(record.input.utf8))) }
        expect("revision", predicate["revision"], record.revision)
        expect("commit", predicate["commit"], record.commit)
        expect("weights md5", (predicate["artifact"] as? [String: Any])?["md5"], record.artifactMD5)
        expect("seed", (predicate["seed"] as? NSNumber)?.int64Value, record.seed)
        expect("status", predicate["status"], record.status.rawValue)
        expect("finish reason", predicate["finishReason"], record.finishReason)
        expect("engine", predicate["engine"], record.engine)
        if let signed = predicate["sampling"] as? NSObject, json(record.sampling) != signed {
            problems.append("sampling is not what its receipt signs")
        }
        return problems
    }
}
