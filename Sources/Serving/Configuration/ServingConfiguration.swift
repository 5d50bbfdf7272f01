public import Foundation
public import Inference
public import Ledger

/// Every knob of a Pedigree server, as plain values. The executable fills it from flags,
/// `PEDIGREE_*` variables and a YAML file (`ConfigurationLoader`); the services are built from it
/// once (`Services.open`).
public struct ServingConfiguration: Sendable {
    // Repository
    /// The Git + DVC repository: a local path or a URL.
    public var repo: String
    /// The cache folder: Git mirror, artifact objects, ledger.
    public var cache: URL
    /// Seconds between fetches of the Git remote (0: never), and the longest a fetch may run.
    public var refreshInterval: Duration = .seconds(60)
    public var refreshTimeout: Duration = .seconds(60)
    /// Secret of `POST /hooks/git` (GitHub HMAC or GitLab token); nil turns the hook off.
    public var webhookSecret: String?

    // HTTP
    public var host = "127.0.0.1"
    public var port = 8080
    /// Running generations finish up to this long after SIGTERM, then are cancelled.
    public var drainTimeout: Duration = .seconds(30)
    /// A WebSocket that sends no `connection_init` within this long is closed (4408).
    public var websocketInitTimeout: Duration = .seconds(10)
    /// Subscriptions one WebSocket may run at once.
    public var websocketMaxSubscriptions = 16
    /// A connection that sends nothing for this long (between requests, or inside a request's
    /// head or body) is closed.
    public var httpIdleTimeout: Duration = .seconds(60)
    /// The longest a GraphQL query runs (mutations are bounded by their own work: a download, a
    /// generation's `generationTimeout`).
    public var requestTimeout: Duration = .seconds(30)
    /// GraphQL documents over these are refused with QUERY_TOO_COMPLEX before they run.
    public var graphqlMaxDepth = 16
    public var graphqlMaxFields = 500
    public var graphqlMaxCost = 50_000

    // Artifacts
    /// Largest size of the artifact cache in bytes; nil for no limit.
    public var cacheBudget: Int64?
    /// Downloads that run at once.
    public var jobs = 8
    /// Re-hash every cached object on start.
    public var verifyCache = false
    /// A DVC remote to use instead of the one the repository names.
    public var remote: String?

    // Inference
    public var models = ModelManager.Configuration()
    /// Revision specs loaded on start.
    public var preload: [String] = []

    // Ledger
    /// `sqlite:PATH`, `postgres://…`, `off`; nil: `sqlite:<cache>/ledger.sqlite`.
    public var ledger: String?
    public var ledgerFailure = LedgerFailurePolicy.warn
    /// Store prompts and outputs as text (true) or as SHA-256 digests.
    public var ledgerStoreText = true
    /// Records older than this many days, and beyond the newest `ledgerMaxRows`, are deleted
    /// (hourly): the ledger is bounded unless asked otherwise.
    public var ledgerRetentionDays: Int? = 90
    public var ledgerMaxRows: Int? = 1_000_000

    public init(repo: String, cache: URL) {
        self.repo = repo
        self.cache = cache
    }

    /// The ledger's location with the default applied.
    public var ledgerURL: String { ledger ?? "sqlite:" + cache.appendingPathComponent("ledger.sqlite").path }
}
