public import Access
public import ArtifactStore
public import Crypto
public import Foundation
import GitStore
public import Inference
public import Ledger
public import Lineage
public import Logging
public import ServiceLifecycle
public import Trust
import UnixSignals

/// The services of one Pedigree process, built once from the configuration and passed to the
/// edges (HTTP, CLI) explicitly. No service reaches another through a third: each is handed what
/// it uses here.
public struct Services: Sendable {
    public let configuration: ServingConfiguration
    public let lineage: LineageService
    public let artifacts: RevisionArtifacts
    public let models: ModelManager
    /// The inference workers generations go to; nil: this process generates.
    public let workers: WorkerPool?
    public let recorder: InferenceRecorder
    public let inference: InferenceService
    public let refresher: RepositoryRefresher
    public let state: ServingState
    /// The ledger's Merkle tree (nil without a ledger or receipts).
    public let tree: LedgerTree?
    /// The evaluations running in this process.
    public let evaluations: EvaluationTracker
    /// API keys: who is asking, what they may do, their quotas.
    public let access: Authenticator
    /// Metrics (swift-metrics into one Prometheus registry).
    public let telemetry: Telemetry
    public let logger: Logger

    /// Mirrors the repository (fetching it when `fetch`), opens the artifact cache, the model
    /// manager and the ledger, in that order.
    public static func open(
        _ configuration: ServingConfiguration, fetch: Bool = true, telemetry: Telemetry = Telemetry(), logger: Logger
    ) throws -> Services {
        PrivateFiles.narrow(PrivateFiles.kept(by: configuration), logger: logger)
        let lineage = try openLineage(configuration, fetch: fetch, logger: logger)
        let artifacts = try openArtifacts(configuration, lineage: lineage, logger: logger)
        let models = ModelManager(configuration: configuration.models, logger: logger)
        let ledger = try openLedger(configuration.ledgerURL, password: try configuration.ledgerPassword(), logger: logger)
        let recorder = InferenceRecorder(
            ledger: ledger, policy: configuration.ledgerFailure,
            storeText: configuration.ledgerStoreText, salt: configuration.ledgerStoreText ? Data() : try ledgerSalt(configuration),
            // Under the privacy setting a stored receipt's plain digests would let short texts be
            // found by hashing guesses: no receipts there (yet).
            receiptKey: ledger == nil || !configuration.ledgerStoreText ? nil : try receiptKey(configuration), logger: logger)
        let tree = recorder.ledger.flatMap { ledger in recorder.receiptKey.map { LedgerTree(ledger: ledger, key: $0, logger: logger) } }
        let state = ServingState()
        let workers = try openWorkers(configuration, models: models, artifacts: artifacts, logger: logger)
        let backend = try openBackend(
            configuration, local: workers ?? LocalBackend(models: models, artifacts: artifacts), models: models, logger: logger)
        let inference = InferenceService(
            lineage: lineage, artifacts: artifacts, models: models, backend: backend, recorder: recorder, state: state,
            maxGenerationsPerRequest: configuration.maxGenerationsPerRequest, logger: logger)
        return Services(
            configuration: configuration, lineage: lineage, artifacts: artifacts, models: models, workers: workers, recorder: recorder,
            inference: inference,
            refresher: RepositoryRefresher(lineage: lineage, timeout: configuration.refreshTimeout, logger: logger), state: state, tree: tree,
            evaluations: EvaluationTracker(), access: openAccess(configuration), telemetry: telemetry, logger: logger)
    }

    /// The worker pool of `workers`, with the token of `worker-token-file`; nil without workers.
    /// The gateway checks the weights' signature itself (with its copy of the weights) before a
    /// generation or load goes to a worker.
    public static func openWorkers(
        _ configuration: ServingConfiguration, models: ModelManager, artifacts: RevisionArtifacts, logger: Logger
    ) throws -> WorkerPool? {
        guard !configuration.workers.isEmpty || configuration.workersDNS != nil else { return nil }
        return WorkerPool(
            urls: configuration.workers, dns: configuration.workersDNS, token: try configuration.workerToken(), facts: models.engineFacts,
            validate: { try models.validated($0) }, admit: { try await artifacts.admit($0) }, logger: logger)
    }

    /// Where generations run: the external backends declared, in front of `local` (this process
    /// or the workers).
    static func openBackend(_ configuration: ServingConfiguration, local: any GenerationBackend, models: ModelManager, logger: Logger) throws
        -> any GenerationBackend
    {
        guard !configuration.externalBackends.isEmpty else { return local }
        return try ExternalBackends(
            configuration.externalBackends, fallback: local, generationTimeout: configuration.models.generationTimeout,
            validate: { try models.validated($0) }, logger: logger)
    }

    /// The deployment's salt for the ledger's digests: `ledger-salt-file`, else `ledger-salt` in
    /// the cache folder, made (32 random bytes, mode 0600) when missing. Replicas sharing a ledger
    /// share the file.
    public static func ledgerSalt(_ configuration: ServingConfiguration) throws -> Data {
        let path = configuration.ledgerSaltFile ?? configuration.cache.appendingPathComponent("ledger-salt").path
        if let existing = FileManager.default.contents(atPath: path) {
            guard existing.count >= 16 else { throw ConfigurationError("ledger-salt-file: \(path) holds fewer than 16 bytes") }
            return existing
        }
        var generator = SystemRandomNumberGenerator()
        let salt = Data((0..<32).map { _ in UInt8.random(in: 0...255, using: &generator) })
        try FileManager.default.createDirectory(at: URL(fileURLWithPath: path).deletingLastPathComponent(), withIntermediateDirectories: true)
        guard FileManager.default.createFile(atPath: path, contents: salt, attributes: [.posixPermissions: 0o600]) else {
            throw ConfigurationError("ledger-salt-file: \(path) cannot be written")
        }
        return salt
    }

    /// The server's receipt key: `receipt-key-file`, else `receipt-key` in the cache folder, made
    /// (Ed25519, mode 0600) when missing — unless `create` is false (a verifier reads keys, never
    /// makes one).
    public static func receiptKey(_ configuration: ServingConfiguration, create: Bool = true) throws -> ReceiptKey {
        let path = configuration.receiptKeyPath
        do {
            return try create ? ReceiptKey.openOrCreate(at: path) : ReceiptKey.open(at: path)
        } catch {
            throw ConfigurationError("receipt key: \(error)")
        }
    }

    /// The public keys this deployment's receipts and tree heads verify with: the receipt key's and
    /// those it replaced (`pedigree receipt-key rotate`), newest first.
    public static func receiptPublicKeys(_ configuration: ServingConfiguration) throws -> [Curve25519.Signing.PublicKey] {
        let current = try receiptKey(configuration, create: false).publicKey
        do {
            return [current] + (try ReceiptKey.retired(at: configuration.receiptKeyPath))
        } catch {
            throw ConfigurationError("receipt key: \(error)")
        }
    }

    /// The keys of the configuration's keys file. A server on a non-loopback address always
    /// requires a key unless `insecure-no-auth` says otherwise.
    public static func openAccess(_ configuration: ServingConfiguration) -> Authenticator {
        Authenticator(
            file: configuration.keys, required: !configuration.listensOnLoopbackOnly && !configuration.insecureNoAuth,
            defaults: configuration.keyLimits)
    }

    /// The repository's lineage service over a mirror in the cache (cloned when absent).
    public static func openLineage(_ configuration: ServingConfiguration, fetch: Bool = true, logger: Logger) throws -> LineageService {
        let repo = configuration.repo
        let source = FileManager.default.fileExists(atPath: repo) ? URL(fileURLWithPath: repo).standardizedFileURL.path : repo
        let repository = try GitRepository.mirror(source: source, into: configuration.cache.appendingPathComponent("git"))
        if fetch { try repository.fetch(timeout: configuration.refreshTimeout) }
        return LineageService(repository: repository, logger: logger)
    }

    /// The artifact cache and the DVC remotes of `lineage`'s repository.
    public static func openArtifacts(_ configuration: ServingConfiguration, lineage: LineageService, logger: Logger) throws -> RevisionArtifacts {
        let cache = try ObjectCache(
            root: configuration.cache, budget: configuration.cacheBudget, maxConcurrentDownloads: max(1, configuration.jobs),
            verify: configuration.verifyCache, logger: logger)
        let store = ArtifactStore(
            cache: cache, dvcFolder: lineage.dvcFolder, remoteOverride: configuration.remote,
            trustedEndpoints: configuration.remoteEndpoints, lfsCredentials: try configuration.lfsCredentials(), logger: logger)
        let trust = WeightsTrust(policy: configuration.unsignedWeights, signers: try TrustedSigners(configuration.trustedSigners), logger: logger)
        return RevisionArtifacts(lineage: lineage, store: store, trust: trust)
    }

    /// The ledger at `url` (`sqlite:PATH`, `postgres://…`), or nil for `off`.
    /// Its background work (`run()`) must run while it is used: a `LedgerService` in the group,
    /// or `withBackgroundWork`.
    public static func openLedger(_ url: String, password: String? = nil, logger: Logger) throws -> (any InferenceLedger)? {
        if url == "off" { return nil }
        if url.hasPrefix("sqlite:") { return try SQLiteLedger(path: String(url.dropFirst("sqlite:".count))) }
        if url.hasPrefix("postgres://") || url.hasPrefix("postgresql://") { return try PostgresLedger(url: url, password: password, logger: logger) }
        throw LedgerError.configuration("ledger: sqlite:PATH, postgres://user:password@host:port/database, or off")
    }

    /// Runs `body` with the ledger's background work beside it (commands outside a service group).
    public func withBackgroundWork<T: Sendable>(_ body: () async throws -> T) async throws -> T {
        guard let ledger = recorder.ledger else { return try await body() }
        return try await ledger.withBackgroundWork(body)
    }

    /// The long-lived work of a server, each a `Service`: the ledger (first, so it stops last,
    /// flushed), the tree-head signer, the idle-model sweeper, ledger retention, the periodic refresh and the preload
    /// list. `http` goes after them and the drain last, so that on shutdown the drain runs first
    /// while HTTP still answers.
    public func serviceGroup(http: any Service, observability: [any Service] = [], logger: Logger) -> ServiceGroup {
        // Exporters first, so they stop last and flush what the others recorded.
        var services: [any Service] = observability
        if let ledger = recorder.ledger { services.append(LedgerService(ledger: ledger)) }
        // After the ledger and before HTTP and the drain: its last head, on shutdown, holds the last answers.
        if let tree { services.append(TreeHeadSigner(tree: tree, interval: configuration.treeHeadInterval, logger: logger)) }
        services.append(ModelSweeper(models: models))
        if let workers { services.append(workers) }
        if let ledger = recorder.ledger {
            services.append(
                LedgerRetention(
                    ledger: ledger, maxAge: configuration.ledgerRetentionDays.map { .seconds($0 * 86_400) }, maxRows: configuration.ledgerMaxRows,
                    logger: logger))
        }
        services.append(PeriodicRefresh(refresher: refresher, interval: configuration.refreshInterval))
        services.append(Preload(specs: configuration.preload, lineage: lineage, inference: inference, logger: logger))
        services.append(http)
        services.append(DrainService(state: state, inference: inference, deadline: configuration.drainTimeout, logger: logger))
        var group = ServiceGroupConfiguration(services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        // A connection that outlives the drain (an idle WebSocket) must not hold the exit.
        group.maximumGracefulShutdownDuration = configuration.drainTimeout + .seconds(15)
        return ServiceGroup(configuration: group)
    }
}
