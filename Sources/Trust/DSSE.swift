public import Crypto
public import Foundation

/// A DSSE envelope (Dead Simple Signing Envelope, v1): a payload, its type, and signatures over
/// the pre-authentication encoding `PAE(type, payload)`, as in-toto attestations carry them.
public struct DSSEEnvelope: Sendable, Hashable {
    public struct Signature: Sendable, Hashable {
        public let keyID: String
        public let signature: Data
    }

    public let payloadType: String
    public let payload: Data
    public let signatures: [Signature]

    /// The in-toto payload type.
    public static let inTotoType = "application/vnd.in-toto+json"

    /// `DSSEv1 <len(type)> <type> <len(body)> <body>`, lengths as ASCII decimals of byte counts.
    public static func preAuthenticationEncoding(type: String, body: Data) -> Data {
        var data = Data("DSSEv1 \(type.utf8.count) \(type) \(body.count) ".utf8)
        data.append(body)
        return data
    }

    /// `payload` of `type` signed with `key`.
    public static func sign(_ payload: Data, type: String = inTotoType, with key: ReceiptKey) throws -> DSSEEnvelope {
        let signature = try key.signingKey().signature(for: preAuthenticationEncoding(type: type, body: payload))
        return DSSEEnvelope(payloadType: type, payload: payload, signatures: [Signature(keyID: key.keyID, signature: Data(signature))])
    }

    /// The key ids of the signatures that verify with one of `keys` (by id); throws when none does.
    @discardableResult
    public func verify(with keys: [Curve25519.Signing.PublicKey]) throws -> [String] {
        let byID = Dictionary(keys.map { (ReceiptKey.keyID(of: $0), $0) }, uniquingKeysWith: { first, _ in first })
        let message = Self.preAuthenticationEncoding(type: payloadType, body: payload)
        let good = signatures.filter { signature in
            byID[signature.keyID].map { $0.isValidSignature(signature.signature, for: message) } ?? false
        }.map(\.keyID)
        guard !good.isEmpty else {
            let named = signatures.map(\.keyID).joined(separator: ", ")
            throw TrustError.signature("no signature verifies with a trusted key (signed by: \(named.isEmpty ? "nobody" : named))")
        }
        return good
    }

    /// The envelope as JSON: `{"payload": base64, "payloadType", "signatures": [{"keyid", "sig": base64}]}`
    /// (keys sorted; written directly: it is on every answer's path).
    public var json: String {
        var text = #"{"payload":""# + payload.base64EncodedString() + #"","payloadType":"# + JSONText.quoted(payloadType) + #","signatures":["#
        for (index, signature) in signatures.enumerated() {
            if index > 0 { text += "," }
            text += #"{"keyid":"# + JSONText.quoted(signature.keyID) + #","sig":""# + signature.signature.base64EncodedString() + #""}"#
        }
        return text + "]}"
    }

    public init(payloadType: String, payload: Data, signatures: [Signature]) {
        self.payloadType = payloadType
        self.payload = payload
        self.signatures = signatures
    }

    /// Reads an envelope's JSON; `TrustError.envelope` for anything else.
    public init(json: Data) throws {
        guard let object = try? JSONSerialization.jsonObject(with: json) as? [String: Any],
            let type = object["payloadType"] as? String, let encoded = object["payload"] as? String,
            let payload = Data(base64Encoded: encoded), let list = object["signatures"] as? [[String: Any]]
        else { throw TrustError.envelope("not a DSSE envelope (payload, payloadType, signatures)") }
        var signatures: [Signature] = []
        for entry in list {
            guard let sig = (entry["sig"] as? String).flatMap({ Data(base64Encoded: $0) }) else {
                throw TrustError.envelope("a signature without a base64 sig")
            }
            signatures.append(Signature(keyID: entry["keyid"] as? String ?? "", signature: sig))
        }
        self.init(payloadType: type, payload: payload, signatures: signatures)
    }
}

/// JSON written by hand where it is on a hot path (a receipt's envelope and statement, a streamed
/// token event).
public enum JSONText {
    /// `value` as a JSON string literal, escaped exactly as `JSONEncoder` escapes it (slashes
    /// left alone): quotes, backslashes, `\b \f \n \r \t`, other control characters as `\u00xx`.
    public static func quoted(_ value: String) -> String {
        // Most strings (ids, digests, paths) need no escape: copied whole.
        if !value.utf8.contains(where: { $0 < 0x20 || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\") }) { return "\"" + value + "\"" }
        // Byte by byte: every byte to escape is ASCII, and UTF-8 sequences pass through whole.
        let hex = Array("0123456789abcdef".utf8)
        var bytes: [UInt8] = [UInt8(ascii: "\"")]
        bytes.reserveCapacity(value.utf8.count + 16)
        for byte in value.utf8 {
            switch byte {
            case UInt8(ascii: "\""): bytes += [UInt8(ascii: "\\"), byte]
            case UInt8(ascii: "\\"): bytes += [UInt8(ascii: "\\"), byte]
            case 0x0A: bytes += [UInt8(ascii: "\\"), UInt8(ascii: "n")]
            case 0x0D: bytes += [UInt8(ascii: "\\"), UInt8(ascii: "r")]
            case 0x09: bytes += [UInt8(ascii: "\\"), UInt8(ascii: "t")]
            case 0x08: bytes += [UInt8(ascii: "\\"), UInt8(ascii: "b")]
            case 0x0C: bytes += [UInt8(ascii: "\\"), UInt8(ascii: "f")]
            case 0..<0x20: bytes += Array("\\u00".utf8) + [hex[Int(byte >> 4)], hex[Int(byte & 0xF)]]
            default: bytes.append(byte)
            }
        }
        bytes.append(UInt8(ascii: "\""))
        return String(decoding: bytes, as: UTF8.self)
    }
}
