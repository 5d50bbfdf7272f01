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
            do {
                return Entry(pattern: pattern, signers: try ModelSigning.TrustedSigners(contentsOfFile: file))
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

/// Checks a revision's weights before they are loaded: their SHA-256, and the OpenSSF Model
/// Signing signature beside them against the signers trusted for the model, offline; then the
/// policy decides. The outcome is per revision (weights, signature file, model): revisions sharing
/// weights may differ in their signatures and trusted signers. A check is made once; the weights'
/// digest is kept per file as it is on disk (a file fetched again is hashed again), and confirmed
/// when the model loads.
public final class WeightsTrust: Sendable {
    public let policy: UnsignedWeightsPolicy
    let signers: TrustedSigners
    let logger: Logger

    /// What a check's outcome depends on.
    struct CheckKey: Hashable, Sendable {
        let weights: String
        let signature: String?
        let model: String

        init(_ revision: ModelLineage) {
            weights = revision.artifact.weightsKey
            signature = revision.artifact.signature?.digest
            model = revision.model.name
        }
    }

    /// A file as it is on disk: a file replaced (fetched again) is another.
    struct FileIdentity: Hashable, Sendable {
        let device: UInt64
        let inode: UInt64
        let size: UInt64
        let modified: Date

        init(_ path: String) throws {
            let attributes = try FileManager.default.attributesOfItem(atPath: path)
            guard attributes[.type] as? FileAttributeType == .typeRegular else { throw TrustError.key("the weights are not a regular file") }
            device = (attributes[.systemNumber] as? NSNumber)?.uint64Value ?? 0
            inode = (attributes[.systemFileNumber] as? NSNumber)?.uint64Value ?? 0
            size = (attributes[.size] as? NSNumber)?.uint64Value ?? 0
            modified = attributes[.modificationDate] as? Date ?? .distantPast
        }
    }

    /// Checks by key, running or made (tasks: concurrent first loads check once; a failed one is
    /// forgotten), and the ones made, which lineage reads show.
    private let checks = SharedTasks<CheckKey, WeightsProvenance>()
    private let finished = Mutex<[CheckKey: WeightsProvenance]>([:])
    /// SHA-256 digests by file, hashed one at a time off the cooperative pool.
    private let digests = SharedTasks<FileIdentity, String>()
    private let hashing = DispatchQueue(label: "pedigree.weights-sha256")

    public init(policy: UnsignedWeightsPolicy = .allow, signers: TrustedSigners, logger: Logger) {
        self.policy = policy
        self.signers = signers
        self.logger = logger
    }

    /// Reads what a check needs: the weights' local path (fetching them when not cached; pinned
    /// until `release`), a signature file's bytes (`TrustError` when it cannot be a signature).
    struct Reader: Sendable {
        let weights: @Sendable () async throws -> (path: String, release: @Sendable () async -> Void)
        let signature: @Sendable (SignatureFileInfo) async throws -> Data
    }

    /// The weights of `revision` as checked; `untrustedWeights` when the policy refuses them.
    /// The first call per weights, signature file and model reads them; later ones look up.
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

    /// The check of `revision`'s weights, when one was made in this process (nil otherwise: a
    /// lineage read neither waits for one nor starts one).
    public func known(_ revision: ModelLineage) -> WeightsProvenance? {
        finished.withLock { $0[CheckKey(revision)] }
    }

    /// Confirms, once the weights are pinned for loading, that the file at `path` is the one
    /// checked: its digest (looked up while the file is unchanged on disk) must be `provenance`'s.
    func confirm(_ provenance: WeightsProvenance, path: String, revision: ModelLineage) async throws {
        guard try await digest(of: path) == provenance.sha256 else {
            throw ServingError(.modelLoadFailed, "\(revision.id): the cached weights changed on disk after they were checked")
        }
    }

    /// The check, made once per key.
    func check(_ revision: ModelLineage, reader: Reader) async throws -> WeightsProvenance {
        let key = CheckKey(revision)
        return try await checks.value(for: key) { [self] in
            let provenance = try await run(revision, reader: reader)
            finished.withLock { $0[key] = provenance }
            return provenance
        }
    }

    private func run(_ revision: ModelLineage, reader: Reader) async throws -> WeightsProvenance {
        let weights = try await reader.weights()
        let sha256: String
        do {
            sha256 = try await digest(of: weights.path)
            await weights.release()
        } catch {
            await weights.release()
            throw error
        }
        guard let file = revision.artifact.signature else {
            if policy != .allow { logger.warning("unsigned weights", metadata: ["revision": "\(revision.id)", "policy": "\(policy)"]) }
            return WeightsProvenance(sha256: sha256, status: .unsigned)
        }
        do {
            let bundle = try await reader.signature(file)
            let verified = try await ModelSigning.verify(bundle: bundle, fileSHA256: sha256, trusting: signers.signers(for: revision.model.name))
            return WeightsProvenance(sha256: sha256, status: .verified, method: verified.method.rawValue, signer: verified.signer, file: file.path)
        } catch let error as TrustError {
            logger.warning(
                "weights signature does not verify",
                metadata: ["revision": "\(revision.id)", "signature": "\(file.path)", "reason": "\(error)", "policy": "\(policy)"])
            return WeightsProvenance(sha256: sha256, status: .unverified, file: file.path, reason: "\(error)")
        }
    }

    /// The SHA-256 of the file at `path` as it is on disk now, hashed once per file.
    func digest(of path: String) async throws -> String {
        let hashing = self.hashing
        return try await digests.value(for: try FileIdentity(path)) {
            try await withCheckedThrowingContinuation { continuation in
                hashing.async { continuation.resume(with: Result { try ModelSigning.sha256(ofFile: path) }) }
            }
        }
    }
}

/// Values made once per key by a task the askers share (concurrent first asks make one); a task
/// that fails is forgotten, so the next ask tries again.
final class SharedTasks<Key: Hashable & Sendable, Value: Sendable>: Sendable {
    private let tasks = Mutex<[Key: Task<Value, any Error>]>([:])

    func value(for key: Key, make: @escaping @Sendable () async throws -> Value) async throws -> Value {
        let task = tasks.withLock { tasks in
            if let task = tasks[key] { return task }
            let task = Task { try await make() }
            tasks[key] = task
            return task
        }
        do {
            return try await task.value
        } catch {
            tasks.withLock { tasks in if tasks[key] == task { tasks[key] = nil } }
            throw error
        }
    }
}
