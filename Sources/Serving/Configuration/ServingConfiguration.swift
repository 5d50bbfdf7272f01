public import Access
public import ArtifactStore
public import Foundation
public import Inference
public import Ledger

/// How the ledger keeps prompts and outputs.
public enum LedgerTextPolicy: String, Sendable, CaseIterable {
    /// As text (replayable).
    case store
    /// As HMAC-SHA256 digests with the deployment's salt (not replayable).
    case hash
}

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
    /// TLS on the listener (HTTPS and WSS on `port`); nil: plain HTTP.
    public var tls: TLSFiles?

    /// The PEM files of the listener's certificate chain and private key (read again when they change).
    public struct TLSFiles: Sendable, Equatable {
        public var certificate: String
        public var key: String
        public init(certificate: String, key: String) {
            self.certificate = certificate
            self.key = key
        }
    }
    /// Running generations finish up to this long after SIGTERM, then are cancelled.
    public var drainTimeout: Duration = .seconds(30)
    /// A WebSocket that sends no `connection_init` within this long is closed (4408).
    public var websocketInitTimeout: Duration = .seconds(10)
    /// Subscriptions one WebSocket may run at once.
    public var websocketMaxSubscriptions = 16
    /// A connection that sends nothing for this long (between requests, or inside a request's
    /// head or body) is closed.
    public var httpIdleTimeout: Duration = .seconds(60)
    /// The longest a GraphQL query runs.
    public var requestTimeout: Duration = .seconds(30)
    /// The longest a GraphQL mutation runs, all its fields together (downloads, generations,
    /// replays).
    public var mutationTimeout: Duration = .seconds(900)
    /// The most generations one request (an HTTP request, a WebSocket operation) may start:
    /// aliased `infer`s, `replayMany`'s sample. Each after the first also counts against the
    /// key's requests per minute.
    public var maxGenerationsPerRequest = 16
    /// GraphQL documents over these are refused with QUERY_TOO_COMPLEX before they run.
    public var graphqlMaxDepth = 16
    public var graphqlMaxFields = 500
    public var graphqlMaxCost = 50_000

    /// Record metrics (off: `/metrics` shows only the states read when scraped; for measuring
    /// what metrics cost).
    public var metrics = true
    /// Where traces go (OTLP over HTTP, e.g. `http://collector:4318`); nil: tracing is off.
    public var otlpEndpoint: String?

    // Access
    /// The keys file; nil: `<cache>/keys.json`.
    public var keysFile: URL?
    /// Run without keys on a non-loopback address (logged as a warning at start).
    public var insecureNoAuth = false
    /// Origins (`https://host:port`) besides the server's own that browsers may call from.
    public var allowedOrigins: [String] = []
    /// Quotas of every key that does not set its own.
    public var keyLimits = QuotaLimits()
    /// GraphiQL's built files; nil: `.deps/graphiql` under the working directory.
    public var graphiqlAssets: String?

    // Artifacts
    /// Largest size of the artifact cache in bytes; nil for no limit.
    public var cacheBudget: Int64?
    /// Downloads that run at once.
    public var jobs = 8
    /// Re-hash every cached object on start.
    public var verifyCache = false
    /// A DVC remote to use instead of the one the repository names.
    public var remote: String?
    /// Endpoints a repository's committed `.dvc/config` may send the operator's credentials to.
    public var remoteEndpoints: [String] = []
    /// A file of lines `URL USER:PASSWORD`: basic auth for the Git LFS endpoints at or under each URL.
    public var lfsCredentialsFile: String?
    /// A file holding the token a gateway sends its workers and a worker requires
    /// (`Authorization: Bearer`).
    public var workerTokenFile: String?
    /// Inference workers (`http://host:port`) the gateway sends generations to; empty: this
    /// process generates.
    public var workers: [String] = []
    /// `host:port`: a DNS name whose addresses are workers (a Kubernetes headless Service),
    /// re-resolved every few seconds.
    public var workersDNS: String?
    /// OpenAI-compatible servers, each bound to the artifact md5 it serves: generations of those
    /// weights go there.
    public var externalBackends: [ExternalBackends.Declaration] = []
    /// `pedigree worker`: the DVC remotes it fetches from, in `.dvc/config` syntax (the
    /// operator's file: its endpoints and credentials are trusted).
    public var dvcConfig: String?

    // Inference
    public var models = ModelManager.Configuration()
    /// Revision specs loaded on start.
    public var preload: [String] = []

    // Ledger
    /// `sqlite:PATH`, `postgres://…`, `off`; nil: `sqlite:<cache>/ledger.sqlite`.
    public var ledger: String?
    public var ledgerFailure = LedgerFailurePolicy.warn
    /// A file holding the PostgreSQL password (used when the URL has none; else `PGPASSWORD`).
    public var ledgerPasswordFile: String?
    /// Store prompts and outputs as text or as keyed digests (HMAC-SHA256 with the salt).
    public var ledgerText = LedgerTextPolicy.store
    /// Whether prompts and outputs are stored as text.
    public var ledgerStoreText: Bool { ledgerText == .store }
    /// The salt of those digests; nil: `<cache>/ledger-salt`, made when missing.
    public var ledgerSaltFile: String?
    /// Records older than this many days, and beyond the newest `ledgerMaxRows`, are deleted
    /// (hourly): the ledger is bounded unless asked otherwise.
    public var ledgerRetentionDays: Int? = 90
    public var ledgerMaxRows: Int? = 1_000_000
    /// The receipt key; nil: `<cache>/receipt-key`, made when missing.
    public var receiptKeyFile: String?
    /// Where the receipt key is.
    public var receiptKeyPath: String { receiptKeyFile ?? cache.appendingPathComponent("receipt-key").path }
    /// What loads when weights are not verified (unsigned, or a signature that does not hold).
    public var unsignedWeights = UnsignedWeightsPolicy.allow
    /// `PATTERN=FILE` (or `FILE`: every model): the PEM keys and CA certificates trusted to sign
    /// the models whose names match.
    public var trustedSigners: [String] = []
    /// How often a head of the ledger's Merkle tree is signed while it grows.
    public var treeHeadInterval: Duration = .seconds(10)

    public init(repo: String, cache: URL) {
        self.repo = repo
        self.cache = cache
    }

    /// The keys file with the default applied.
    public var keys: KeyFile { keysFile.map(KeyFile.init(url:)) ?? KeyFile.inCache(cache) }

    /// The token of `worker-token-file`, trimmed (what a gateway sends and a worker requires);
    /// nil when none is configured.
    public func workerToken() throws -> String? {
        guard let path = workerTokenFile else { return nil }
        guard let token = Self.trimmedText(ofFile: path) else { throw ServingError(.badUserInput, "worker-token-file \(path) cannot be read") }
        return token
    }

    /// The credentials of `lfs-credentials-file` (lines `URL USER:PASSWORD`); none without one.
    public func lfsCredentials() throws -> LFSCredentials {
        guard let path = lfsCredentialsFile else { return .none }
        guard let text = Self.trimmedText(ofFile: path) else { throw ServingError(.badUserInput, "lfs-credentials-file \(path) cannot be read") }
        do {
            return try LFSCredentials(text: text)
        } catch let error as ArtifactError {
            throw ServingError(.badUserInput, "lfs-credentials-file \(path): \(error.description)")
        }
    }

    /// A secret file's UTF-8 text without surrounding white space (a token, an API key); nil when
    /// it cannot be read.
    public static func trimmedText(ofFile path: String) -> String? {
        guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8) else { return nil }
        return text.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Whether the listen address is a loopback one (only then may a server run without keys).
    public var listensOnLoopbackOnly: Bool {
        OriginPolicy.isLoopback(host)
    }

    /// The PostgreSQL password from `ledger-password-file`, else `PGPASSWORD`; nil when neither.
    public func ledgerPassword(environment: [String: String] = ProcessInfo.processInfo.environment) throws -> String? {
        if let file = ledgerPasswordFile {
            guard let data = FileManager.default.contents(atPath: file) else {
                throw ConfigurationError("ledger-password-file: \(file) cannot be read")
            }
            var text = String(decoding: data, as: UTF8.self)
            while text.last == "\n" || text.last == "\r" { text.removeLast() }
            return text
        }
        return environment["PGPASSWORD"]
    }

    /// The ledger's location with the default applied.
    public var ledgerURL: String { ledger ?? "sqlite:" + cache.appendingPathComponent("ledger.sqlite").path }
}
