public import Foundation
public import Inference
public import Lineage
public import Logging
import Synchronization
public import Trust

/// What loads when a revision's weights are not verified by a signer trusted for the model.
public enum UnsignedWeightsPolicy: String, Sendable, CaseIterable {
    /// Unsigned weights load; a signature that is there must verify (else the load is refused).
    case allow
    /// Unsigned weights and failing signatures load, with a warning, recorded `unverified`.
    case warn
    /// Only verified weights load.
    case refuse
}

/// Who is trusted to sign which models: `PATTERN=FILE` entries (`FILE` alone: every model), each
/// file PEM text of public keys (key method) and CA certificates (certificate method); patterns
/// are model names with `*` wildcards.
public struct TrustedSigners: Sendable {
    struct Entry: Sendable {
        let pattern: String
        let signers: ModelSigning.TrustedSigners
    }
    let entries: [Entry]

    /// Reads every entry's file; throws naming the entry that cannot be read or parsed.
    public init(_ specs: [String]) throws {
        entries = try specs.map { spec in
            let (pattern, file) = spec.firstIndex(of: "=").map { (String(spec[..<$0]), String(spec[spec.index(after: $0)...])) } ?? ("*", spec)
            guard !pattern.isEmpty, !file.isEmpty else { throw ServingError(.badUserInput, "trusted-signers: \(spec) is not PATTERN=FILE") }
            guard let data = FileManager.default.contents(atPath: file) else {
                throw ServingError(.badUserInput, "trusted-signers: \(file) cannot be read")
            }
            do {
                return Entry(pattern: pattern, signers: try ModelSigning.TrustedSigners(pem: String(decoding: data, as: UTF8.self)))
            } catch {
                throw ServingError(.badUserInput, "trusted-signers: \(file): \(error)")
            }
        }
    }

    /// The signers of every entry whose pattern matches `model`.
    func signers(for model: String) -> ModelSigning.TrustedSigners {
        var result = ModelSigning.TrustedSigners()
        for entry in entries where Self.matches(model, entry.pattern) { result.add(entry.signers) }
        return result
    }

    /// Whether `name` matches `pattern`, whose `*` stands for any run of characters.
    static func matches(_ name: String, _ pattern: String) -> Bool {
        let parts = pattern.split(separator: "*", omittingEmptySubsequences: false)
        guard parts.count > 1 else { return name == pattern }
        var rest = Substring(name)
        guard rest.hasPrefix(parts[0]) else { return false }
        rest = rest.dropFirst(parts[0].count)
        for part in parts.dropFirst().dropLast() where !part.isEmpty {
            guard let range = rest.range(of: part) else { return false }
            rest = rest[range.upperBound...]
        }
        return rest.hasSuffix(parts[parts.count - 1])
    }
}

/// Checks a revision's weights before they are loaded: their SHA-256 (once per weights), and the
/// OpenSSF Model Signing signature beside them (once per weights and signature file) against the
/// signers trusted for the model, offline; then the policy decides. The outcome is per revision:
/// revisions sharing weights may differ in their signatures.
public final class WeightsTrust: Sendable {
    public let policy: UnsignedWeightsPolicy
    let signers: TrustedSigners
    let logger: Logger
    /// SHA-256 digests by weights md5, and checks by weights md5 and signature digest: tasks, so
    /// concurrent first loads hash and check once. A failed task (a read error) is forgotten.
    private let digests = Mutex<[String: Task<String, any Error>]>([:])
    private let checks = Mutex<[String: Task<WeightsProvenance, any Error>]>([:])

    public init(policy: UnsignedWeightsPolicy = .allow, signers: TrustedSigners, logger: Logger) {
        self.policy = policy
        self.signers = signers
        self.logger = logger
    }

    /// Reads what a check needs: the weights' local path (fetching them when not cached), a
    /// signature file's bytes.
    struct Reader: Sendable {
        let weights: @Sendable () async throws -> String
        let signature: @Sendable (SignatureFileInfo) async throws -> Data
    }

    /// The weights of `revision` as checked; `untrustedWeights` when the policy refuses them.
    /// The first call per weights and signature file reads them; later ones only look up.
    func admit(_ revision: ModelLineage, reader: Reader) async throws -> WeightsProvenance {
        let provenance = try await check(revision, reader: reader)
        switch (provenance.status, policy) {
        case (.verified, _), (.unsigned, .allow), (_, .warn): return provenance
        case (.unsigned, .refuse):
            throw ServingError(.untrustedWeights, "\(revision.id): the weights are not signed (unsigned-weights: refuse)")
        case (.unverified, _):
            throw ServingError(
                .untrustedWeights, "\(revision.id): the weights' signature \(provenance.file ?? "") does not hold: \(provenance.reason ?? "")")
        }
    }

    /// What the check of `revision`'s weights found, when it ran in this process (nil otherwise).
    public func known(_ revision: ModelLineage) async -> WeightsProvenance? {
        guard let task = checks.withLock({ $0[Self.key(revision)] }) else { return nil }
        return try? await task.value
    }

    /// The check, made once per weights and signature file. Logged when it does not verify.
    func check(_ revision: ModelLineage, reader: Reader) async throws -> WeightsProvenance {
        let key = Self.key(revision)
        let task = checks.withLock { checks in
            if let task = checks[key] { return task }
            let task = Task { [self] in try await self.run(revision, reader: reader) }
            checks[key] = task
            return task
        }
        do {
            return try await task.value
        } catch {
            checks.withLock { checks in _ = checks.removeValue(forKey: key) }
            throw error
        }
    }

    private func run(_ revision: ModelLineage, reader: Reader) async throws -> WeightsProvenance {
        let sha256 = try await digest(md5: revision.artifact.md5, path: try await reader.weights())
        guard let file = revision.artifact.signature else {
            if policy != .allow { logger.warning("unsigned weights", metadata: ["revision": "\(revision.id)", "policy": "\(policy)"]) }
            return WeightsProvenance(sha256: sha256, status: .unsigned)
        }
        let bundle = try await reader.signature(file)
        do {
            let verified = try await ModelSigning.verify(bundle: bundle, fileSHA256: sha256, trusting: signers.signers(for: revision.model.name))
            return WeightsProvenance(sha256: sha256, status: .verified, method: verified.method.rawValue, signer: verified.signer, file: file.path)
        } catch {
            logger.warning(
                "weights signature does not verify",
                metadata: ["revision": "\(revision.id)", "signature": "\(file.path)", "reason": "\(error)", "policy": "\(policy)"])
            return WeightsProvenance(sha256: sha256, status: .unverified, file: file.path, reason: "\(error)")
        }
    }

    /// The weights' SHA-256, hashed once per md5 (off the cooperative pool: a large file takes seconds).
    private func digest(md5: String, path: String) async throws -> String {
        let task = digests.withLock { digests in
            if let task = digests[md5] { return task }
            let task = Task {
                try await withCheckedThrowingContinuation { continuation in
                    DispatchQueue.global().async { continuation.resume(with: Result { try ModelSigning.sha256(ofFile: path) }) }
                }
            }
            digests[md5] = task
            return task
        }
        do {
            return try await task.value
        } catch {
            digests.withLock { digests in _ = digests.removeValue(forKey: md5) }
            throw error
        }
    }

    private static func key(_ revision: ModelLineage) -> String {
        revision.artifact.md5 + " " + (revision.artifact.signature?.digest ?? "-") + " " + revision.model.name
    }
}
