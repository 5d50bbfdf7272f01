/// One configuration key: the same name is the long flag (`--cache-budget`), the YAML key
/// (`cache-budget: 20G`) and, upper-cased with `_`, the environment variable
/// (`PEDIGREE_CACHE_BUDGET`).
public struct ConfigurationKey: Sendable, Hashable {
    /// What values the key takes; checked where the value enters, with the key's name in the error.
    public enum Kind: Sendable, Hashable {
        case text
        case integer(ClosedRange<Int>)
        case boolean
        /// Bytes: `123`, `500K`, `500M`, `20G`, `1T` (powers of 1024).
        case size
        /// Seconds: `30`, `30s`, `5m`, `2h`.
        case seconds(ClosedRange<Int>)
        case choice([String])
        /// Several texts: a YAML sequence, a comma-separated variable, a repeated flag.
        case list
    }

    public let name: String
    public let kind: Kind
    /// Shown redacted by `config check` (a password inside a URL is redacted in any key).
    public let secret: Bool

    init(_ name: String, _ kind: Kind, secret: Bool = false) {
        self.name = name
        self.kind = kind
        self.secret = secret
    }

    /// The environment variable that sets the key.
    public var environmentName: String {
        "PEDIGREE_" + name.uppercased().map { $0.isLetter || $0.isNumber ? String($0) : "_" }.joined()
    }
}

extension ConfigurationKey {
    public static let repo = Self("repo", .text)
    public static let cache = Self("cache", .text)
    public static let host = Self("host", .text)
    public static let port = Self("port", .integer(1...65_535))
    public static let refreshInterval = Self("refresh-interval", .seconds(0...86_400))
    public static let refreshTimeout = Self("refresh-timeout", .seconds(1...3_600))
    public static let webhookSecret = Self("webhook-secret", .text, secret: true)
    public static let drainTimeout = Self("drain-timeout", .seconds(0...3_600))
    public static let websocketInitTimeout = Self("websocket-init-timeout", .seconds(1...300))
    public static let websocketMaxSubscriptions = Self("websocket-max-subscriptions", .integer(1...10_000))
    public static let httpIdleTimeout = Self("http-idle-timeout", .seconds(1...3_600))
    public static let requestTimeout = Self("request-timeout", .seconds(1...3_600))
    public static let mutationTimeout = Self("mutation-timeout", .seconds(1...86_400))
    public static let maxGenerationsPerRequest = Self("max-generations-per-request", .integer(1...1_000))
    public static let graphqlMaxDepth = Self("graphql-max-depth", .integer(2...256))
    public static let graphqlMaxFields = Self("graphql-max-fields", .integer(1...100_000))
    public static let graphqlMaxCost = Self("graphql-max-cost", .integer(1...Int(Int32.max)))
    public static let metrics = Self("metrics", .boolean)
    public static let otlpEndpoint = Self("otlp-endpoint", .text)
    public static let keysFile = Self("keys-file", .text)
    public static let insecureNoAuth = Self("insecure-no-auth", .boolean)
    public static let tlsCertificate = Self("tls-certificate", .text)
    public static let tlsKey = Self("tls-key", .text)
    public static let allowedOrigins = Self("allowed-origins", .list)
    public static let keyRequestsPerMinute = Self("key-requests-per-minute", .integer(1...10_000_000))
    public static let keyTokensPerMinute = Self("key-tokens-per-minute", .integer(1...1_000_000_000))
    public static let keyConcurrentGenerations = Self("key-concurrent-generations", .integer(1...100_000))
    public static let graphiqlAssets = Self("graphiql-assets", .text)
    public static let cacheBudget = Self("cache-budget", .size)
    public static let jobs = Self("jobs", .integer(1...256))
    public static let verifyCache = Self("verify-cache", .boolean)
    public static let remote = Self("remote", .text)
    public static let remoteEndpoints = Self("remote-endpoints", .list)
    public static let workerTokenFile = Self("worker-token-file", .text)
    public static let dvcConfig = Self("dvc-config", .text)
    public static let workers = Self("workers", .list)
    public static let workersDNS = Self("workers-dns", .text)
    public static let externalBackends = Self("external-backends", .list)
    public static let slots = Self("slots", .integer(1...256))
    public static let queue = Self("queue", .integer(0...100_000))
    public static let contextPerSlot = Self("context-per-slot", .integer(64...1_048_576))
    public static let maxModels = Self("max-models", .integer(1...64))
    public static let memoryBudget = Self("memory-budget", .size)
    public static let maxTokensLimit = Self("max-tokens-limit", .integer(1...1_000_000))
    public static let maxPromptBytes = Self("max-prompt-bytes", .integer(1...(64 << 20)))
    public static let generationTimeout = Self("generation-timeout", .seconds(1...86_400))
    public static let keepAlive = Self("keep-alive", .seconds(0...31_536_000))
    public static let threads = Self("threads", .integer(1...1_024))
    public static let decodeMode = Self("decode-mode", .choice(["invariant", "mixed"]))
    public static let prefillChunk = Self("prefill-chunk", .integer(1...512))
    public static let flashAttention = Self("flash-attention", .boolean)
    public static let prefixCache = Self("prefix-cache", .size)
    public static let preload = Self("preload", .list)
    public static let ledger = Self("ledger", .text)
    public static let ledgerFailure = Self("ledger-failure", .choice(["warn", "fail"]))
    public static let ledgerPasswordFile = Self("ledger-password-file", .text)
    public static let ledgerText = Self("ledger-text", .choice(["store", "hash"]))
    public static let ledgerSaltFile = Self("ledger-salt-file", .text)
    public static let ledgerRetentionDays = Self("ledger-retention-days", .integer(1...36_500))
    public static let ledgerMaxRows = Self("ledger-max-rows", .integer(1...Int(Int32.max)))
    public static let logFormat = Self("log-format", .choice(["text", "json"]))
    public static let logLevel = Self("log-level", .choice(["trace", "debug", "info", "notice", "warning", "error", "critical"]))

    /// Every key, in the order `config check` prints them.
    public static let all: [ConfigurationKey] = [
        repo, cache, host, port, refreshInterval, refreshTimeout, webhookSecret, drainTimeout, websocketInitTimeout, websocketMaxSubscriptions,
        httpIdleTimeout, requestTimeout, mutationTimeout, maxGenerationsPerRequest, graphqlMaxDepth, graphqlMaxFields, graphqlMaxCost, metrics,
        otlpEndpoint, keysFile, insecureNoAuth,
        tlsCertificate, tlsKey, allowedOrigins,
        keyRequestsPerMinute, keyTokensPerMinute, keyConcurrentGenerations, graphiqlAssets, cacheBudget, jobs, verifyCache, remote, remoteEndpoints,
        workerTokenFile, dvcConfig, workers, workersDNS, externalBackends,
        slots,
        queue, contextPerSlot, maxModels, memoryBudget, maxTokensLimit, maxPromptBytes, generationTimeout, keepAlive, threads,
        decodeMode, prefillChunk, flashAttention, prefixCache, preload, ledger,
        ledgerFailure, ledgerPasswordFile,
        ledgerText, ledgerSaltFile, ledgerRetentionDays, ledgerMaxRows, logFormat, logLevel,
    ]

    /// Keys by name.
    public static let byName: [String: ConfigurationKey] = Dictionary(uniqueKeysWithValues: all.map { ($0.name, $0) })
}
