/// What is known of a revision's weights beyond the md5 its commit names: their SHA-256, and the
/// check of the signature beside them (an OpenSSF Model Signing bundle). Made where the weights
/// are loaded, carried by every generation's summary, recorded with every inference and signed
/// into its receipt.
public struct WeightsProvenance: Sendable, Hashable, Codable {
    public enum Status: String, Sendable, Hashable, Codable, CaseIterable {
        /// The signature verifies with a signer trusted for the model and signs these bytes.
        case verified
        /// No signature beside the weights.
        case unsigned
        /// A signature that does not verify, signs other bytes, or whose signer is not trusted
        /// for the model (`reason` says which): loaded only under `unsigned-weights: warn`.
        case unverified
    }

    /// The weights file's SHA-256 (hex).
    public let sha256: String
    public let status: Status
    /// `key` or `certificate`, when verified.
    public let method: String?
    /// The key's id (`sha256:` of its DER) or the signing certificate's subject, when verified.
    public let signer: String?
    /// The signature file's path in the repository.
    public let file: String?
    /// Why the signature did not verify.
    public let reason: String?

    public init(sha256: String, status: Status, method: String? = nil, signer: String? = nil, file: String? = nil, reason: String? = nil) {
        self.sha256 = sha256
        self.status = status
        self.method = method
        self.signer = signer
        self.file = file
        self.reason = reason
    }
}
