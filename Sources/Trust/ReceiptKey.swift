public import Crypto
public import Foundation

/// The server's Ed25519 key for signing receipts: 32 raw bytes in a file of mode 0600, made on
/// first use. Its id is the SHA-256 of the raw public key, in hex (what a DSSE signature's
/// `keyid` names, and what the published key list is keyed by).
public struct ReceiptKey: Sendable {
    /// The private key's 32 raw bytes (the key type is not Sendable; it is remade to sign).
    private let raw: Data
    /// `sha256(raw public key)`, hex.
    public let keyID: String

    public var privateKey: Curve25519.Signing.PrivateKey {
        // Valid by construction: `raw` came from a private key.
        (try? Curve25519.Signing.PrivateKey(rawRepresentation: raw)) ?? Curve25519.Signing.PrivateKey()
    }

    public var publicKey: Curve25519.Signing.PublicKey { privateKey.publicKey }

    public static func keyID(of key: Curve25519.Signing.PublicKey) -> String {
        SHA256.hash(data: key.rawRepresentation).map { String(format: "%02x", $0) }.joined()
    }

    public init(_ privateKey: Curve25519.Signing.PrivateKey) {
        raw = privateKey.rawRepresentation
        keyID = Self.keyID(of: privateKey.publicKey)
    }

    /// The key in `path`, or a new one written there (mode 0600, through a temporary file renamed
    /// into place, so a crash never leaves half a key). A file that is not 32 bytes is refused.
    public static func openOrCreate(at path: String) throws -> ReceiptKey {
        if let data = FileManager.default.contents(atPath: path) {
            guard data.count == 32, let key = try? Curve25519.Signing.PrivateKey(rawRepresentation: data) else {
                throw TrustError.key("\(path) does not hold an Ed25519 private key (32 raw bytes)")
            }
            return ReceiptKey(key)
        }
        let key = Curve25519.Signing.PrivateKey()
        let folder = (path as NSString).deletingLastPathComponent
        try FileManager.default.createDirectory(atPath: folder.isEmpty ? "." : folder, withIntermediateDirectories: true)
        let staging = path + ".partial-\(ProcessInfo.processInfo.processIdentifier)"
        guard FileManager.default.createFile(atPath: staging, contents: key.rawRepresentation, attributes: [.posixPermissions: 0o600]) else {
            throw TrustError.key("\(path) cannot be written")
        }
        if rename(staging, path) != 0 {
            try? FileManager.default.removeItem(atPath: staging)
            // Another process may have made it first: use theirs.
            return try openOrCreate(at: path)
        }
        return ReceiptKey(key)
    }

    /// The public key as securesystemslib and in-toto write keys: `{keytype, scheme, keyval: {public: hex}}` with its id.
    public var published: [String: Any] {
        [
            "keyid": keyID, "keytype": "ed25519", "scheme": "ed25519",
            "keyval": ["public": publicKey.rawRepresentation.map { String(format: "%02x", $0) }.joined()],
        ]
    }
}

/// Why a key, an envelope or a receipt is not what it should be.
public enum TrustError: Error, Sendable, CustomStringConvertible {
    case key(String)
    case envelope(String)
    case signature(String)

    public var description: String {
        switch self {
        case .key(let message), .envelope(let message), .signature(let message): message
        }
    }
}
