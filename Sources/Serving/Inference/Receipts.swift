public import Crypto
import DVCKit
public import Foundation
import Inference
public import Ledger
import Synchronization
public import Trust

/// A recorded inference's receipt: an in-toto Statement (v1) in a DSSE envelope signed with the
/// server's Ed25519 key. The subjects are the SHA-256 digests of the answer's text and of its
/// token ids (as JSON); the predicate says what made it: the canonical revision, commit and
/// weights' md5, the lineage, the digest of the exact input, the sampling with its seed, the
/// engine facts, the time, the calling key's id, the record's ledger position and the server's
/// key id. Made before the ledger's write and signed inside it (once the position is known), from
/// the answer as generated, so it proves the text to whoever holds it even when the ledger keeps
/// only digests.
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
        struct Artifact: Encodable {
            let md5: String
            /// The weights' SHA-256 and their signature's check, as recorded (absent when the
            /// weights never loaded, and in older records).
            let sha256: String?
            let signature: RawJSON?
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
        let caller: String?
        let callerKey: String?
        let requestID: String?
        let signer: String
    }

    /// JSON text embedded as JSON (not as a string).
    struct RawJSON: Encodable {
        let value: JSONFragment
        init(_ text: String) { value = JSONFragment.parsed(text) }
        func encode(to encoder: any Encoder) throws { try value.encode(to: encoder) }
    }

    static func hex(_ data: some DataProtocol) -> String { DVCHash.hexString(SHA256.hash(data: Data(data))) }

    /// The statement of `record`, whose answer was `text` with `tokens` and whose input was
    /// `input` (the texts as generated and sent, before any privacy digest).
    /// `inputDigest`: the input's SHA-256 when only that is known (a failed request's excerpt).
    static func statement(_ record: InferenceRecord, text: String, tokens: [Int32], input: String, signer: String, inputDigest: String? = nil)
        throws -> Data
    {
        let tokenJSON = try JSONEncoder().encode(tokens)
        let statement = Statement(
            subject: [
                .init(name: "output", digest: ["sha256": hex(Data(text.utf8))]),
                .init(name: "output-token-ids", digest: ["sha256": hex(tokenJSON)]),
            ],
            predicate: Predicate(
                inference: record.id, position: record.position, createdAt: record.createdAt.formatted(.iso8601),
                status: record.status.rawValue,
                error: record.error, model: record.model, revision: record.revision, commit: record.commit,
                artifact: .init(md5: record.artifactMD5, sha256: record.artifactSHA256, signature: record.signature.map(RawJSON.init)),
                lineage: RawJSON(record.lineage),
                input: .init(kind: record.inputKind.rawValue, sha256: inputDigest ?? hex(Data(input.utf8))), sampling: RawJSON(record.sampling),
                seed: record.seed, engine: record.engine, finishReason: record.finishReason,
                usage: .init(promptTokens: record.promptTokens, completionTokens: record.completionTokens), caller: record.caller,
                callerKey: record.callerKey,
                requestID: record.requestID, signer: signer))
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return try encoder.encode(statement)
    }

    /// A statement made before the ledger's write, waiting only for its position: the bytes
    /// before and after the position's digits. Encoding, digests and formatting happen outside the
    /// write; inside it, the position is spliced in, the payload signed and its leaf hashed.
    public struct PendingStatement: Sendable {
        let head: Data
        let tail: Data

        /// The statement's bytes with `position`: what `statement` makes for the record at it.
        public func payload(at position: Int64) -> Data { head + Data(String(position).utf8) + tail }
    }

    /// Stands in for the position while the statement is encoded (no other key is `position`, and
    /// a string's quotes are escaped, so `"position":` occurs once).
    static let placeholderPosition: Int64 = 7_777_777_777_777_777_777

    /// The statement of `record` (see `statement`) with its position left open.
    public static func prepare(_ record: InferenceRecord, text: String, tokens: [Int32], input: String, signer: String) throws -> PendingStatement {
        var placed = record
        placed.position = placeholderPosition
        let bytes = try statement(placed, text: text, tokens: tokens, input: input, signer: signer)
        let marker = Data("\"position\":\(placeholderPosition)".utf8)
        guard let range = bytes.firstRange(of: marker), bytes[range.upperBound...].firstRange(of: marker) == nil else {
            throw TrustError.envelope("the statement's position cannot be placed")
        }
        let digits = range.lowerBound + marker.count - String(placeholderPosition).utf8.count
        return PendingStatement(head: Data(bytes[..<digits]), tail: Data(bytes[range.upperBound...]))
    }

    /// The seal of a record written with `pending`: the statement at its position, signed with
    /// `key` (no receipt when signing fails: the record is kept, and `ledger verify` names it),
    /// and its leaf in the ledger's Merkle tree (`SHA-256(0x00 ‖ SHA-256(statement))`).
    public static func seal(_ pending: PendingStatement?, position: Int64?, with key: ReceiptKey) -> (LedgerSeal, (any Error)?) {
        guard let pending, let position else { return (LedgerSeal(receipt: nil, leaf: MerkleTree.leafHash(Data())), nil) }
        let payload = pending.payload(at: position)
        let leaf = leafHash(ofStatement: payload)
        do {
            return (LedgerSeal(receipt: try DSSEEnvelope.sign(payload, with: key).json, leaf: leaf), nil)
        } catch {
            return (LedgerSeal(receipt: nil, leaf: leaf), error)
        }
    }

    /// The leaf of a record's receipt (its statement's; the leaf of empty data without one).
    public static func leafHash(of record: InferenceRecord) -> Data {
        guard let statement = record.receipt.flatMap({ try? DSSEEnvelope(json: Data($0.utf8)).payload }) else {
            return MerkleTree.leafHash(Data())
        }
        return leafHash(ofStatement: statement)
    }

    /// A statement's leaf in the ledger's Merkle tree: the leaf hash of the statement's SHA-256.
    public static func leafHash(ofStatement payload: Data) -> Data { MerkleTree.leafHash(Data(SHA256.hash(data: payload))) }

    /// The signed receipt (a DSSE envelope's JSON) of `record`.
    public static func sign(_ record: InferenceRecord, text: String, tokens: [Int32], input: String, with key: ReceiptKey) throws -> String {
        let payload = try statement(record, text: text, tokens: tokens, input: input, signer: key.keyID)
        return try DSSEEnvelope.sign(payload, with: key).json
    }
}

/// Any JSON value, decoded from text and encoded back as JSON.
indirect enum JSONFragment: Encodable, Sendable {
    case null
    case bool(Bool)
    case number(Double)
    case integer(Int64)
    case string(String)
    case array([JSONFragment])
    case object([String: JSONFragment])

    /// The last texts parsed (a revision's lineage and a sampling repeat from answer to answer).
    private static let recent = Mutex<[String: JSONFragment]>([:])

    /// `JSONFragment(text)`, from the recent ones when it was parsed lately.
    static func parsed(_ text: String) -> JSONFragment {
        if let known = recent.withLock({ $0[text] }) { return known }
        let fragment = JSONFragment(text)
        recent.withLock { cache in
            if cache.count >= 256 { cache.removeAll(keepingCapacity: true) }
            cache[text] = fragment
        }
        return fragment
    }

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
    /// nothing): the receipt must verify with one of them and be, byte for byte, the statement
    /// this row makes now — every field it signs (id, position, time, status, error, model,
    /// revision, commit, weights, lineage, input, sampling, seed, engine, finish reason, token
    /// counts, caller, request id) and the digests of its answer and token ids. What differs is named.
    public static func problems(of record: InferenceRecord, trusting keys: [Curve25519.Signing.PublicKey]) -> [String] {
        check(record, trusting: keys).problems
    }

    /// `problems(of:trusting:)`, and the record's leaf when there are none (its statement's).
    public static func check(_ record: InferenceRecord, trusting keys: [Curve25519.Signing.PublicKey]) -> (problems: [String], leaf: Data?) {
        guard let text = record.receipt else { return (["no receipt"], nil) }
        let envelope: DSSEEnvelope
        let signer: String
        do {
            envelope = try DSSEEnvelope(json: Data(text.utf8))
            signer = try envelope.verify(with: keys)[0]
        } catch {
            return (["receipt: \(error)"], nil)
        }
        guard let tokens = try? JSONDecoder().decode([Int32].self, from: Data(record.completionTokenIDs.utf8)) else {
            return (["token ids are not a list of token ids"], nil)
        }
        // A failed request keeps an excerpt of a long input, ending in the whole input's digest.
        var inputDigest: String?
        if record.inputIsExcerpt, let range = record.input.range(of: "sha256:", options: .backwards) {
            inputDigest = String(record.input[range.upperBound...].prefix(64))
        }
        guard
            let expected = try? statement(
                record, text: record.output, tokens: tokens, input: record.input, signer: signer, inputDigest: inputDigest)
        else { return (["the row cannot be made into a statement"], nil) }
        if expected == envelope.payload { return ([], leafHash(ofStatement: expected)) }
        // Name what differs: each subject and each predicate field, compared as canonical JSON.
        guard let signed = try? JSONSerialization.jsonObject(with: envelope.payload) as? [String: Any],
            let made = try? JSONSerialization.jsonObject(with: expected) as? [String: Any]
        else { return (["receipt: not an inference statement"], nil) }
        func canonical(_ value: Any?) -> Data? {
            value.flatMap { try? JSONSerialization.data(withJSONObject: $0, options: [.sortedKeys, .fragmentsAllowed]) }
        }
        var problems: [String] = []
        let signedSubjects = signed["subject"] as? [[String: Any]] ?? []
        for subject in made["subject"] as? [[String: Any]] ?? [] {
            let name = subject["name"] as? String ?? "?"
            let other = signedSubjects.first { $0["name"] as? String == name }
            if canonical(other?["digest"]) != canonical(subject["digest"]) { problems.append("\(name) is not what its receipt signs") }
        }
        let signedPredicate = signed["predicate"] as? [String: Any] ?? [:]
        let madePredicate = made["predicate"] as? [String: Any] ?? [:]
        for key in Set(signedPredicate.keys).union(madePredicate.keys).sorted()
        where canonical(signedPredicate[key]) != canonical(madePredicate[key]) {
            problems.append("\(key) is not what its receipt signs")
        }
        if canonical(signed["_type"]) != canonical(made["_type"]) || canonical(signed["predicateType"]) != canonical(made["predicateType"]) {
            problems.append("the receipt is not an inference statement")
        }
        return (problems.isEmpty ? ["the receipt's statement is not the one this row makes"] : problems, nil)
    }
}
