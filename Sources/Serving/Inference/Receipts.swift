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

    /// `date` as `Date.formatted(.iso8601)` writes it (UTC, whole seconds: `2026-12-07T20:44:18Z`).
    static func iso8601(_ date: Date) -> String {
        var time = time_t(floor(date.timeIntervalSince1970))
        var parts = tm()
        gmtime_r(&time, &parts)
        func two(_ value: Int32) -> String { value < 10 ? "0\(value)" : String(value) }
        let year = String(parts.tm_year + 1900)
        return String(repeating: "0", count: max(0, 4 - year.count)) + year
            + "-\(two(parts.tm_mon + 1))-\(two(parts.tm_mday))T\(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec))Z"
    }

    static func hex(_ data: some DataProtocol) -> String { DVCHash.hexString(SHA256.hash(data: Data(data))) }

    /// The statement of `record`, whose answer was `text` with `tokens` and whose input was
    /// `input` (the texts as generated and sent, before any privacy digest).
    /// `inputDigest`: the input's SHA-256 when only that is known (a failed request's excerpt).
    ///
    /// Its bytes are what `JSONEncoder` (sorted keys, slashes unescaped) makes of the statement
    /// (`_type`, `predicate`, `predicateType`, `subject`), written member by member in key order:
    /// absent optionals left out, the lineage, sampling and signature check re-encoded from the
    /// record's JSON (cached: they repeat from answer to answer). `ReceiptStatementTests` holds
    /// the Encodable statement it must equal, byte for byte.
    static func statement(_ record: InferenceRecord, text: String, tokens: [Int32], input: String, signer: String, inputDigest: String? = nil)
        throws -> Data
    {
        var tokenJSON = "["
        for (index, token) in tokens.enumerated() {
            if index > 0 { tokenJSON += "," }
            tokenJSON += String(token)
        }
        tokenJSON += "]"
        var artifact = JSONObjectText()
        artifact.member("md5", record.artifactMD5)
        artifact.member("sha256", record.artifactSHA256)
        if let signature = record.signature { artifact.member("signature", raw: JSONFragment.encoded(signature)) }
        var inputObject = JSONObjectText()
        inputObject.member("kind", record.inputKind.rawValue)
        inputObject.member("sha256", inputDigest ?? hex(Data(input.utf8)))
        var usage = JSONObjectText()
        usage.member("completionTokens", Int64(record.completionTokens))
        usage.member("promptTokens", Int64(record.promptTokens))
        var predicate = JSONObjectText()
        predicate.member("artifact", raw: artifact.json)
        predicate.member("caller", record.caller)
        predicate.member("callerKey", record.callerKey)
        predicate.member("commit", record.commit)
        predicate.member("createdAt", iso8601(record.createdAt))
        predicate.member("engine", record.engine)
        predicate.member("error", record.error)
        predicate.member("finishReason", record.finishReason)
        predicate.member("inference", record.id)
        predicate.member("input", raw: inputObject.json)
        predicate.member("lineage", raw: JSONFragment.encoded(record.lineage))
        predicate.member("model", record.model)
        predicate.member("position", record.position)
        predicate.member("requestID", record.requestID)
        predicate.member("revision", record.revision)
        predicate.member("sampling", raw: JSONFragment.encoded(record.sampling))
        predicate.member("seed", record.seed)
        predicate.member("signer", signer)
        predicate.member("status", record.status.rawValue)
        predicate.member("usage", raw: usage.json)
        func subject(_ name: String, _ digest: String) -> String {
            var object = JSONObjectText()
            object.member("digest", raw: "{\"sha256\":\(JSONText.quoted(digest))}")
            object.member("name", name)
            return object.json
        }
        var statement = JSONObjectText()
        statement.member("_type", statementType)
        statement.member("predicate", raw: predicate.json)
        statement.member("predicateType", predicateType)
        statement.member(
            "subject", raw: "[" + subject("output", hex(Data(text.utf8))) + "," + subject("output-token-ids", hex(Data(tokenJSON.utf8))) + "]")
        return Data(statement.json.utf8)
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
        let bytes = [UInt8](try statement(placed, text: text, tokens: tokens, input: input, signer: signer))
        let marker = [UInt8]("\"position\":\(placeholderPosition)".utf8)
        // Over the raw bytes: a generic search over Data took four times as long as making them.
        func find(from start: Int) -> Int? {
            bytes.withUnsafeBufferPointer { haystack -> Int? in
                marker.withUnsafeBufferPointer { needle -> Int? in
                    guard haystack.count >= needle.count else { return nil }
                    var index = start
                    while index <= haystack.count - needle.count {
                        if haystack[index] == needle[0], memcmp(haystack.baseAddress! + index, needle.baseAddress!, needle.count) == 0 {
                            return index
                        }
                        index += 1
                    }
                    return nil
                }
            }
        }
        guard let found = find(from: 0), find(from: found + marker.count) == nil else {
            throw TrustError.envelope("the statement's position cannot be placed")
        }
        let digits = found + marker.count - String(placeholderPosition).utf8.count
        return PendingStatement(head: Data(bytes[..<digits]), tail: Data(bytes[(found + marker.count)...]))
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

/// An object's JSON written member by member, as `JSONEncoder` writes it (no spaces; the caller
/// adds members in key order, leaving absent ones out).
struct JSONObjectText {
    private var text = "{"

    mutating func member(_ key: String, raw value: String) {
        if text.utf8.count > 1 { text += "," }
        text += "\"" + key + "\":" + value
    }

    mutating func member(_ key: String, _ value: String?) {
        if let value { member(key, raw: JSONText.quoted(value)) }
    }

    mutating func member(_ key: String, _ value: Int64?) {
        if let value { member(key, raw: String(value)) }
    }

    var json: String { text + "}" }
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

    /// The JSON of the last texts encoded (a revision's lineage, a sampling and a signature
    /// check repeat from answer to answer).
    private static let recent = Mutex<[String: String]>([:])

    /// The JSON text `text` parsed and encoded again as a statement encodes it (`JSONEncoder`,
    /// sorted keys, slashes unescaped); text that is not JSON becomes a JSON string.
    static func encoded(_ text: String) -> String {
        if let known = recent.withLock({ $0[text] }) { return known }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let json = (try? encoder.encode(JSONFragment(text))).map { String(decoding: $0, as: UTF8.self) } ?? JSONText.quoted(text)
        recent.withLock { cache in
            if cache.count >= 256 { cache.removeAll(keepingCapacity: true) }
            cache[text] = json
        }
        return json
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
