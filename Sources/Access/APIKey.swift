import Crypto
public import Foundation

/// An API key as a client sends it: `pdg_<id>_<secret>`, where `id` (12 hex digits) names the
/// key in the keys file and `secret` is 32 random bytes in base64url. The server keeps only the
/// SHA-256 digest of the whole key.
public struct APIKey: Sendable, Equatable {
    public static let prefix = "pdg_"
    public let id: String
    public let text: String

    /// A new random key.
    public static func generate() -> APIKey {
        var generator = SystemRandomNumberGenerator()
        let idBytes = (0..<6).map { _ in UInt8.random(in: 0...255, using: &generator) }
        let secretBytes = (0..<32).map { _ in UInt8.random(in: 0...255, using: &generator) }
        let id = idBytes.map { String(format: "%02x", $0) }.joined()
        let secret = Data(secretBytes).base64EncodedString().replacingOccurrences(of: "+", with: "-")
            .replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
        return APIKey(id: id, text: prefix + id + "_" + secret)
    }

    /// A key from what a client sent; nil when it does not have the key's shape (so a malformed
    /// key is told apart from a wrong one without touching the keys file).
    public init?(parsing text: some StringProtocol) {
        let utf8 = text.utf8
        // pdg_ + 12 hex + _ + 43 base64url characters.
        guard utf8.count == 4 + 12 + 1 + 43, text.hasPrefix(Self.prefix) else { return nil }
        var index = 0
        for byte in utf8 {
            defer { index += 1 }
            switch index {
            case 0..<4: continue
            case 4..<16: guard (byte >= 0x30 && byte <= 0x39) || (byte >= 0x61 && byte <= 0x66) else { return nil }
            case 16: guard byte == 0x5F else { return nil }
            default:
                let isBase64URL =
                    (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A) || byte == 0x2D || byte == 0x5F
                guard isBase64URL else { return nil }
            }
        }
        let string = String(text)
        self.init(id: String(string.dropFirst(4).prefix(12)), text: string)
    }

    private init(id: String, text: String) {
        self.id = id
        self.text = text
    }

    /// The digest the keys file stores.
    public var digest: Data { Data(SHA256.hash(data: Data(text.utf8))) }
}

/// One key as the keys file stores it: never the key itself.
public struct KeyRecord: Sendable, Codable, Equatable {
    public var id: String
    public var name: String
    public var role: Role
    /// SHA-256 of the whole key, hex.
    public var sha256: String
    public var created: Date
    public var revoked: Date?
    /// Quotas of this key; unset ones take the server's defaults.
    public var limits: QuotaLimits

    public var isActive: Bool { revoked == nil }

    /// Whether `key` is this record's key (digests compared in constant time).
    func matches(_ key: APIKey) -> Bool {
        guard key.id == id else { return false }
        let given = Array(key.digest.hexString.utf8)
        let stored = Array(sha256.utf8)
        guard given.count == stored.count else { return false }
        var difference: UInt8 = 0
        for index in given.indices { difference |= given[index] ^ stored[index] }
        return difference == 0
    }
}

extension Data {
    var hexString: String {
        let digits = Array("0123456789abcdef".utf8)
        var bytes = [UInt8]()
        bytes.reserveCapacity(count * 2)
        for byte in self {
            bytes.append(digits[Int(byte >> 4)])
            bytes.append(digits[Int(byte & 0x0F)])
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
