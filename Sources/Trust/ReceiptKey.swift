public import Crypto
public import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// The server's Ed25519 key for signing receipts: 32 raw bytes in a file of mode 0600, made on
/// first use. Its id is the SHA-256 of the raw public key, in hex (what a DSSE signature's
/// `keyid` names, and what the published key list is keyed by).
public struct ReceiptKey: Sendable {
    /// The signing key, made once (expanding it costs as much as a signature).
    private let signing: SigningKey
    /// `sha256(raw public key)`, hex.
    public let keyID: String
    public let publicKeyBytes: Data

    /// The signing key.
    public func signingKey() throws -> Curve25519.Signing.PrivateKey { signing.key }

    public var publicKey: Curve25519.Signing.PublicKey {
        // Valid by construction: the bytes came from a public key.
        (try? Curve25519.Signing.PublicKey(rawRepresentation: publicKeyBytes)) ?? Curve25519.Signing.PrivateKey().publicKey
    }

    public static func keyID(of key: Curve25519.Signing.PublicKey) -> String {
        Data(SHA256.hash(data: key.rawRepresentation)).hexString
    }

    public init(_ privateKey: Curve25519.Signing.PrivateKey) {
        signing = SigningKey(key: privateKey)
        publicKeyBytes = privateKey.publicKey.rawRepresentation
        keyID = Self.keyID(of: privateKey.publicKey)
    }

    /// The key in `path`; `TrustError.key` when it is absent, unreadable or not a key. Never makes one.
    public static func open(at path: String) throws -> ReceiptKey {
        guard let data = FileManager.default.contents(atPath: path) else { throw TrustError.key("\(path) cannot be read") }
        guard data.count == 32, let key = try? Curve25519.Signing.PrivateKey(rawRepresentation: data) else {
            throw TrustError.key("\(path) does not hold an Ed25519 private key (32 raw bytes)")
        }
        return ReceiptKey(key)
    }

    /// The key in `path`, made there when (and only when) no file is there: created exclusively
    /// (mode 0600), so of two processes starting at once one writes it and the other reads it; a
    /// file that exists but cannot be read, or is not a key, is refused, never replaced.
    public static func openOrCreate(at path: String) throws -> ReceiptKey {
        let folder = (path as NSString).deletingLastPathComponent
        try FileManager.default.createDirectory(atPath: folder.isEmpty ? "." : folder, withIntermediateDirectories: true)
        let key = Curve25519.Signing.PrivateKey()
        let descriptor = Glibc.open(path, O_CREAT | O_EXCL | O_WRONLY, 0o600)
        if descriptor >= 0 {
            let bytes = key.rawRepresentation
            let written = bytes.withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
            let synced = fsync(descriptor)
            close(descriptor)
            guard written == bytes.count, synced == 0 else {
                unlink(path)
                throw TrustError.key("\(path) cannot be written")
            }
            return ReceiptKey(key)
        }
        guard errno == EEXIST else { throw TrustError.key("\(path) cannot be created (errno \(errno))") }
        // Another process may be writing it this instant: give it a moment to finish.
        for _ in 0..<50 {
            if let data = FileManager.default.contents(atPath: path), data.count >= 32 { break }
            usleep(20_000)
        }
        return try open(at: path)
    }

    /// The public keys `rotate` retired from `path` (`PATH.retired`: one hex public key a line),
    /// newest first; none when the file is absent.
    public static func retired(at path: String) throws -> [Curve25519.Signing.PublicKey] {
        guard let data = FileManager.default.contents(atPath: path + ".retired") else { return [] }
        return try String(decoding: data, as: UTF8.self).split(whereSeparator: \.isNewline).reversed().map { line in
            guard let raw = Data(hex: line.trimmingCharacters(in: .whitespaces)),
                let key = try? Curve25519.Signing.PublicKey(rawRepresentation: raw)
            else { throw TrustError.key("\(path).retired holds a line that is not an Ed25519 public key in hex") }
            return key
        }
    }

    /// Replaces the key in `path` with a new one: the old public key is appended to `PATH.retired`
    /// first (so what it signed still verifies), then the new key is written beside it and renamed
    /// over the old (mode 0600). Servers sign with the new key once restarted.
    public static func rotate(at path: String) throws -> (old: ReceiptKey, new: ReceiptKey) {
        let old = try open(at: path)
        let retired = path + ".retired"
        let line = Data((old.publicKeyBytes.hexString + "\n").utf8)
        if let handle = FileHandle(forWritingAtPath: retired) {
            defer { try? handle.close() }
            try handle.seekToEnd()
            try handle.write(contentsOf: line)
            try handle.synchronize()
        } else {
            guard FileManager.default.createFile(atPath: retired, contents: line, attributes: [.posixPermissions: 0o644]) else {
                throw TrustError.key("\(retired) cannot be written")
            }
        }
        let key = Curve25519.Signing.PrivateKey()
        let fresh = path + ".new"
        unlink(fresh)
        guard FileManager.default.createFile(atPath: fresh, contents: key.rawRepresentation, attributes: [.posixPermissions: 0o600]),
            rename(fresh, path) == 0
        else {
            unlink(fresh)
            throw TrustError.key("\(path) cannot be replaced")
        }
        return (old, ReceiptKey(key))
    }

    /// The public key as securesystemslib and in-toto write keys: `{keytype, scheme, keyval: {public: hex}}` with its id.
    public var published: [String: Any] { Self.published(publicKey) }

    /// A public key as securesystemslib writes it, with its id.
    public static func published(_ key: Curve25519.Signing.PublicKey) -> [String: Any] {
        [
            "keyid": keyID(of: key), "keytype": "ed25519", "scheme": "ed25519",
            "keyval": ["public": key.rawRepresentation.hexString],
        ]
    }
}

/// The private key, shared between tasks: it is never changed after it is made, and signing
/// reads it only (the key type is not marked Sendable).
private final class SigningKey: @unchecked Sendable {
    let key: Curve25519.Signing.PrivateKey
    init(key: Curve25519.Signing.PrivateKey) { self.key = key }
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
