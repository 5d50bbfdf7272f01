public import Crypto
public import Foundation

/// A signed tree head: the size and root of the ledger's Merkle tree at a moment, signed with the
/// server's key in a DSSE envelope. Its payload is canonical JSON (sorted keys):
/// `{"rootHash": hex, "signer": key id, "size": n, "time": ISO-8601}`.
public struct TreeHead: Sendable, Hashable {
    public static let payloadType = "application/vnd.pedigree.tree-head+json"

    public let size: Int64
    public let rootHash: Data
    /// Whole seconds, UTC.
    public let time: Date
    /// The DSSE envelope's JSON.
    public let envelope: String

    public var rootHex: String { rootHash.hexString }

    /// Signs the head of a tree of `size` leaves with root `root`.
    public static func sign(size: Int64, root: Data, time: Date = Date(), with key: ReceiptKey) throws -> TreeHead {
        let seconds = Date(timeIntervalSince1970: time.timeIntervalSince1970.rounded(.down))
        let payload = Payload(
            rootHash: root.hexString, signer: key.keyID, size: size,
            time: seconds.formatted(.iso8601))
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let envelope = try DSSEEnvelope.sign(try encoder.encode(payload), type: payloadType, with: key)
        return TreeHead(size: size, rootHash: root, time: seconds, envelope: envelope.json)
    }

    /// The head in a stored or published envelope, its signature checked with `keys`.
    public init(envelope json: String, trusting keys: [Curve25519.Signing.PublicKey]) throws {
        let envelope = try DSSEEnvelope(json: Data(json.utf8))
        guard envelope.payloadType == Self.payloadType else { throw TrustError.envelope("not a tree head (\(envelope.payloadType))") }
        try envelope.verify(with: keys)
        guard let payload = try? JSONDecoder().decode(Payload.self, from: envelope.payload), payload.size >= 0,
            let root = Data(hex: payload.rootHash), root.count == 32,
            let time = try? Date(payload.time, strategy: .iso8601)
        else { throw TrustError.envelope("a tree head's payload is not {rootHash, signer, size, time}") }
        self.init(size: payload.size, rootHash: root, time: time, envelope: json)
    }

    public init(size: Int64, rootHash: Data, time: Date, envelope: String) {
        self.size = size
        self.rootHash = rootHash
        self.time = time
        self.envelope = envelope
    }

    struct Payload: Codable {
        let rootHash: String
        let signer: String
        let size: Int64
        let time: String
    }
}

extension Data {
    /// The bytes in lowercase hex.
    public var hexString: String {
        let digits = Array("0123456789abcdef".utf8)
        var text = [UInt8]()
        text.reserveCapacity(count * 2)
        for byte in self {
            text.append(digits[Int(byte >> 4)])
            text.append(digits[Int(byte & 0xF)])
        }
        return String(decoding: text, as: UTF8.self)
    }

    /// Bytes from lowercase or uppercase hex; nil for anything else.
    public init?(hex: String) {
        let digits = Array(hex.utf8)
        guard digits.count % 2 == 0 else { return nil }
        var bytes = [UInt8]()
        bytes.reserveCapacity(digits.count / 2)
        func value(_ digit: UInt8) -> UInt8? {
            switch digit {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit - UInt8(ascii: "A") + 10
            default: nil
            }
        }
        var index = 0
        while index < digits.count {
            guard let high = value(digits[index]), let low = value(digits[index + 1]) else { return nil }
            bytes.append(high << 4 | low)
            index += 2
        }
        self.init(bytes)
    }
}
