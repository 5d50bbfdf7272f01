import Foundation
import Inference
import Ledger
import Lineage

/// A revision's weights in the schema (`Artifact`): the file, and the revision it belongs to (its
/// signature's check depends on the model and commit, not only on the bytes).
struct RevisionArtifact: Sendable {
    let revision: ModelLineage
    var info: ArtifactInfo { revision.artifact }
}

/// A signature check as GraphQL (`WeightsSignature`) and the web view show it: a revision's (made
/// when its weights loaded, or now when they are cached) or a record's (as it was kept).
struct WeightsSignatureView: Sendable, Decodable {
    /// verified, unverified, unsigned; unchecked: a signature whose weights are not fetched yet.
    let status: String
    let file: String?
    let method: String?
    let signer: String?
    let reason: String?
    var sha256: String?

    init(_ provenance: WeightsProvenance?, signature: SignatureFileInfo?) {
        status = provenance?.status.rawValue ?? (signature == nil ? WeightsProvenance.Status.unsigned.rawValue : "unchecked")
        file = provenance?.file ?? signature?.path
        method = provenance?.method
        signer = provenance?.signer
        reason = provenance?.reason
        sha256 = provenance?.sha256
    }

    /// As `record` kept it; nil in records made before checks were recorded, or that never loaded weights.
    init?(_ record: InferenceRecord) {
        guard let text = record.signature, var view = try? JSONDecoder().decode(Self.self, from: Data(text.utf8)) else { return nil }
        view.sha256 = record.artifactSHA256
        self = view
    }

    /// One line: `verified (key sha256:…) · models/x/model.gguf.sig`.
    var summary: String {
        var text = status
        if let method, let signer { text += " (\(method) \(signer))" }
        if let reason { text += ": \(reason)" }
        if let file { text += " · \(file)" }
        return text
    }
}
