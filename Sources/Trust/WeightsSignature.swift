import Crypto
public import Foundation
import SwiftASN1
@_spi(FixedExpiryValidationTime) import X509

/// OpenSSF Model Signing (`model-signing`, v1.0 signatures): a Sigstore bundle (v0.3 JSON) whose
/// DSSE envelope holds an in-toto Statement of the model's file digests, signed with an
/// elliptic-curve key. Checked offline, by either method the package signs with:
///
/// - `key`: the signature verifies with one of the public keys the operator trusts;
/// - `certificate`: the bundle's chain (signing certificate first) leads to a CA the operator
///   trusts (RFC 5280, at the signing certificate's start of validity, as model-signing checks),
///   the signing certificate may sign (key usage digitalSignature or extended key usage
///   codeSigning), and its key verifies the signature.
///
/// Then the statement must be a model-signing statement, its root digest the SHA-256 of its
/// resources' digests in order, and the file's own SHA-256 the digest it names for it.
public enum ModelSigning {
    public static let predicateType = "https://model_signing/signature/v1.0"
    /// The longest certificate chain a bundle may carry (signing certificate included).
    static let maxChain = 5
    /// The largest signature file read.
    public static let maxBundle = 1 << 20

    /// Whom the operator trusts.
    public struct TrustedSigners: Sendable {
        /// Public keys (P-256, P-384, P-521) for the key method.
        public var keys: [PublicKey]
        /// CA certificates for the certificate method.
        var roots: [Certificate] = []

        public init(keys: [PublicKey] = []) { self.keys = keys }

        /// Adds what `other` trusts.
        public mutating func add(_ other: TrustedSigners) {
            keys += other.keys
            roots += other.roots
        }

        /// How many CA certificates are trusted.
        public var caCount: Int { roots.count }

        /// Keys and certificates from a PEM file: "cannot be read", or what its text lacks (see
        /// `init(pem:)`), as `TrustError.key`.
        public init(contentsOfFile path: String) throws {
            guard let data = FileManager.default.contents(atPath: path) else { throw TrustError.key("cannot be read") }
            do {
                try self.init(pem: String(decoding: data, as: UTF8.self))
            } catch let error as TrustError {
                throw error
            } catch {
                throw TrustError.key("\(error)")
            }
        }

        /// Keys and certificates from PEM text (any number of `PUBLIC KEY` and `CERTIFICATE` blocks).
        public init(pem: String) throws {
            self.init()
            let documents = try PEMDocument.parseMultiple(pemString: pem)
            for document in documents {
                switch document.discriminator {
                case "PUBLIC KEY": keys.append(try PublicKey(der: document.derBytes))
                case "CERTIFICATE": roots.append(try Certificate(derEncoded: document.derBytes))
                default: throw TrustError.key("a \(document.discriminator) block is neither a PUBLIC KEY nor a CERTIFICATE")
                }
            }
        }
    }

    /// An elliptic-curve public key (what model-signing signs with), hashed as model-signing hashes
    /// for its curve: SHA-256, SHA-384, SHA-512. Kept as its DER SubjectPublicKeyInfo (the key
    /// types are not Sendable).
    public struct PublicKey: Sendable, Hashable {
        enum Curve: Sendable, Hashable { case p256, p384, p521 }
        let curve: Curve
        public let der: Data

        public init(der bytes: [UInt8]) throws {
            if let key = try? P256.Signing.PublicKey(derRepresentation: bytes) {
                (curve, der) = (.p256, key.derRepresentation)
            } else if let key = try? P384.Signing.PublicKey(derRepresentation: bytes) {
                (curve, der) = (.p384, key.derRepresentation)
            } else if let key = try? P521.Signing.PublicKey(derRepresentation: bytes) {
                (curve, der) = (.p521, key.derRepresentation)
            } else {
                throw TrustError.key("not a P-256, P-384 or P-521 public key")
            }
        }

        init?(_ key: Certificate.PublicKey) {
            if let key = P256.Signing.PublicKey(key) {
                (curve, der) = (.p256, key.derRepresentation)
            } else if let key = P384.Signing.PublicKey(key) {
                (curve, der) = (.p384, key.derRepresentation)
            } else if let key = P521.Signing.PublicKey(key) {
                (curve, der) = (.p521, key.derRepresentation)
            } else {
                return nil
            }
        }

        /// `sha256:` and the SHA-256 of the key's DER SubjectPublicKeyInfo, hex.
        public var id: String { "sha256:" + Data(SHA256.hash(data: der)).hexString }

        func verifies(_ signature: Data, for message: Data) -> Bool {
            switch curve {
            case .p256:
                guard let key = try? P256.Signing.PublicKey(derRepresentation: der),
                    let signature = try? P256.Signing.ECDSASignature(derRepresentation: signature)
                else { return false }
                return key.isValidSignature(signature, for: message)
            case .p384:
                guard let key = try? P384.Signing.PublicKey(derRepresentation: der),
                    let signature = try? P384.Signing.ECDSASignature(derRepresentation: signature)
                else { return false }
                return key.isValidSignature(signature, for: message)
            case .p521:
                guard let key = try? P521.Signing.PublicKey(derRepresentation: der),
                    let signature = try? P521.Signing.ECDSASignature(derRepresentation: signature)
                else { return false }
                return key.isValidSignature(signature, for: message)
            }
        }
    }

    /// What a verified signature says.
    public struct Verified: Sendable, Hashable {
        public enum Method: String, Sendable { case key, certificate }
        public let method: Method
        /// The key's id (`sha256:…` of its DER) or the signing certificate's subject.
        public let signer: String
        /// The model name the statement signs, and its files' SHA-256 digests by name (`.` for a single file).
        public let model: String
        public let files: [String: String]
    }

    /// Verifies `bundle` (the signature file's bytes) for a single-file model whose SHA-256 is
    /// `sha256` (hex), trusting `signers`. Throws `TrustError.signature` saying why not.
    public static func verify(bundle: Data, fileSHA256 sha256: String, trusting signers: TrustedSigners) async throws -> Verified {
        guard bundle.count <= maxBundle else { throw TrustError.envelope("a signature file of \(bundle.count) bytes (at most \(maxBundle))") }
        guard let object = try? JSONSerialization.jsonObject(with: bundle) as? [String: Any],
            (object["mediaType"] as? String)?.hasPrefix("application/vnd.dev.sigstore.bundle") == true,
            let envelope = object["dsseEnvelope"] as? [String: Any], let type = envelope["payloadType"] as? String,
            let payload = (envelope["payload"] as? String).flatMap({ Data(base64Encoded: $0) }),
            let signature = ((envelope["signatures"] as? [[String: Any]])?.first?["sig"] as? String).flatMap({ Data(base64Encoded: $0) }),
            let material = object["verificationMaterial"] as? [String: Any]
        else { throw TrustError.envelope("not a model-signing bundle (Sigstore bundle JSON with a DSSE envelope)") }
        let message = DSSEEnvelope.preAuthenticationEncoding(type: type, body: payload)
        let method: Verified.Method
        let signer: String
        if let chain = material["x509CertificateChain"] as? [String: Any] {
            let certificates = try (chain["certificates"] as? [[String: Any]] ?? []).map { entry -> Certificate in
                guard let raw = (entry["rawBytes"] as? String).flatMap({ Data(base64Encoded: $0) }) else {
                    throw TrustError.envelope("a certificate without rawBytes")
                }
                return try Certificate(derEncoded: Array(raw))
            }
            guard let leaf = certificates.first else { throw TrustError.envelope("an empty certificate chain") }
            // The chain search tries every order of what is offered: a few certificates at most.
            guard certificates.count <= maxChain else {
                throw TrustError.envelope("a certificate chain of \(certificates.count) certificates (at most \(maxChain))")
            }
            guard !signers.roots.isEmpty else { throw TrustError.signature("signed with a certificate, and no CA is trusted") }
            var verifier = Verifier(rootCertificates: CertificateStore(signers.roots)) {
                RFC5280Policy(fixedExpiryValidationTime: leaf.notValidBefore)
                IssuerPolicy()
            }
            guard case .validCertificate = await verifier.validate(leaf: leaf, intermediates: CertificateStore(certificates.dropFirst()))
            else { throw TrustError.signature("the signing certificate (\(leaf.subject)) does not lead to a trusted CA") }
            // As model-signing: key usage digitalSignature, or extended key usage codeSigning; and,
            // stricter, an extended key usage present must allow codeSigning (a TLS server's
            // certificate from the same CA does not sign weights).
            let usage = (try? leaf.extensions.keyUsage)??.digitalSignature == true
            let extended: ExtendedKeyUsage? = (try? leaf.extensions.extendedKeyUsage) ?? nil
            let codeSigning = extended?.contains(.codeSigning) == true
            guard usage || codeSigning, extended == nil || codeSigning else {
                throw TrustError.signature("the signing certificate (\(leaf.subject)) may not sign code")
            }
            guard let key = PublicKey(leaf.publicKey), key.verifies(signature, for: message) else {
                throw TrustError.signature("the signature does not verify with the signing certificate's key (\(leaf.subject))")
            }
            method = .certificate
            signer = "\(leaf.subject)"
        } else {
            guard let key = signers.keys.first(where: { $0.verifies(signature, for: message) }) else {
                throw TrustError.signature("the signature does not verify with a trusted key")
            }
            method = .key
            signer = key.id
        }
        // What was signed: a model-signing statement whose root digest covers its resources.
        guard type == DSSEEnvelope.inTotoType, let statement = try? JSONSerialization.jsonObject(with: payload) as? [String: Any],
            statement["_type"] as? String == "https://in-toto.io/Statement/v1", statement["predicateType"] as? String == predicateType,
            let subjects = statement["subject"] as? [[String: Any]], subjects.count == 1, let subject = subjects.first,
            let name = subject["name"] as? String,
            let root = (subject["digest"] as? [String: Any])?["sha256"] as? String,
            let resources = (statement["predicate"] as? [String: Any])?["resources"] as? [[String: Any]]
        else { throw TrustError.envelope("the signed statement is not a model-signing v1.0 statement") }
        var hasher = SHA256()
        var files: [String: String] = [:]
        for resource in resources {
            guard resource["algorithm"] as? String == "sha256", let file = resource["name"] as? String,
                let digest = resource["digest"] as? String, let bytes = Data(hex: digest), bytes.count == 32
            else { throw TrustError.envelope("a resource of the statement is not {name, sha256 digest}") }
            hasher.update(data: bytes)
            guard files.updateValue(digest.lowercased(), forKey: file) == nil else {
                throw TrustError.envelope("the statement names \(file) twice")
            }
        }
        guard Data(hasher.finalize()).hexString == root.lowercased() else {
            throw TrustError.envelope("the statement's root digest is not its resources' digest")
        }
        guard files.count == 1, let signed = files.values.first else {
            throw TrustError.signature("the signature covers \(files.count) files; a single weights file is expected")
        }
        guard signed == sha256.lowercased() else { throw TrustError.signature("the weights' SHA-256 is not the one signed") }
        return Verified(method: method, signer: signer, model: name, files: files)
    }
}

extension ModelSigning {
    /// A regular file's SHA-256 (hex), read through a memory map: the pages are the file's, given
    /// back when the map goes (read into buffers, a large file's pieces stayed in the allocator's
    /// arenas, resident for good).
    public static func sha256(ofFile path: String) throws -> String {
        guard (try FileManager.default.attributesOfItem(atPath: path))[.type] as? FileAttributeType == .typeRegular else {
            throw TrustError.key("the weights are not a regular file")
        }
        let mapped = try Data(contentsOf: URL(fileURLWithPath: path), options: .alwaysMapped)
        return Data(SHA256.hash(data: mapped)).hexString
    }
}

/// What model-signing's OpenSSL check adds to RFC 5280 as swift-certificates applies it: every
/// issuer with a key usage may sign certificates (keyCertSign), and only the trusted root may be a
/// version 1 certificate. It also takes on the leaf's extended key usage and subject alternative
/// names (critical in some signing certificates), which the signing check above reads.
struct IssuerPolicy: VerifierPolicy {
    let verifyingCriticalExtensions: [ASN1ObjectIdentifier] = [
        .X509ExtensionID.extendedKeyUsage, .X509ExtensionID.subjectAlternativeName,
    ]

    func chainMeetsPolicyRequirements(chain: UnverifiedCertificateChain) async -> PolicyEvaluationResult {
        for (index, certificate) in chain.enumerated().dropFirst() {
            if let usage = try? certificate.extensions.keyUsage, !usage.keyCertSign {
                return .failsToMeetPolicy(reason: "\(certificate.subject) may not sign certificates (key usage)")
            }
            if certificate.version == .v1, index != chain.count - 1 {
                return .failsToMeetPolicy(reason: "\(certificate.subject) is a version 1 certificate but not the root")
            }
        }
        return .meetsPolicy
    }
}
