import ArgumentParser
import Foundation
import Logging
import Serving

/// Flags are one source of the configuration (flags > `PEDIGREE_*` > `--config` file >
/// defaults): every option here is optional, named as its configuration key, and only what the
/// user typed reaches the loader.
protocol ConfigurationFlags {
    /// The values typed, by configuration key.
    var values: [String: [String]] { get }
}

/// Collects the options that were given.
struct FlagValues {
    var values: [String: [String]] = [:]
    mutating func add(_ key: ConfigurationKey, _ value: (some CustomStringConvertible)?) {
        if let value { values[key.name] = [value.description] }
    }
    mutating func add(_ key: ConfigurationKey, list: [String]) {
        if !list.isEmpty { values[key.name] = list }
    }
}

/// The configuration file, logging, and the repository every command reads.
struct CommonOptions: ParsableArguments, ConfigurationFlags {
    @Option(help: "A YAML configuration file (keys are these options' names).")
    var config: String?

    @Option(help: "The Git + DVC repository: a local path or a URL. Default: $PEDIGREE_REPO, else the one repository mirrored in the cache.")
    var repo: String?

    @Option(help: "Cache folder (repository mirror, artifacts, ledger). Default: $PEDIGREE_CACHE or ~/.cache/pedigree.")
    var cache: String?

    @Option(help: "Log lines as text or json.")
    var logFormat: String?

    @Option(help: "Least severe log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: String?

    @Option(help: "Longest a fetch of the Git remote may run, in seconds.")
    var refreshTimeout: String?

    var values: [String: [String]] {
        var flags = FlagValues()
        flags.add(.repo, repo)
        flags.add(.cache, cache)
        flags.add(.logFormat, logFormat)
        flags.add(.logLevel, logLevel)
        flags.add(.refreshTimeout, refreshTimeout)
        return flags.values
    }
}

/// Options of the commands that fetch artifacts.
struct ArtifactOptions: ParsableArguments, ConfigurationFlags {
    @Option(help: "Largest size of the artifact cache (e.g. 500M, 20G); least recently used objects are evicted. Default: no limit.")
    var cacheBudget: String?

    @Option(help: "Downloads that run at once (default 8).")
    var jobs: Int?

    @Flag(help: "Also check the md5 of every cached object on start (slow for large caches).")
    var verifyCache = false

    @Option(
        name: .customLong("remote-endpoint"),
        help: "An S3/HTTP endpoint (scheme://host:port) the repository's committed .dvc/config may send your credentials to (repeat for several).")
    var remoteEndpoints: [String] = []

    var values: [String: [String]] {
        var flags = FlagValues()
        flags.add(.cacheBudget, cacheBudget)
        flags.add(.jobs, jobs)
        if verifyCache { flags.add(.verifyCache, "true") }
        flags.add(.remoteEndpoints, list: remoteEndpoints)
        return flags.values
    }
}

/// Options of the commands that run models.
struct InferenceOptions: ParsableArguments, ConfigurationFlags {
    @Option(help: "Requests decoded together per model (continuous batching; default 4).")
    var slots: Int?

    @Option(help: "Requests that may wait for a slot; beyond them the answer is OVERLOADED (default 16).")
    var queue: Int?

    @Option(help: "Tokens of context per slot, prompt plus generated (default 2048).")
    var contextPerSlot: Int?

    @Option(help: "Models loaded at once (default 2).")
    var maxModels: Int?

    @Option(help: "Bytes of weights loaded at once (e.g. 8G); least recently used idle models are unloaded. Default: no limit.")
    var memoryBudget: String?

    @Option(help: "Largest maxTokens a request may ask for (default 1024).")
    var maxTokensLimit: Int?

    @Option(help: "Largest prompt (or sum of message contents) in bytes (default 32768).")
    var maxPromptBytes: Int?

    @Option(help: "Seconds an idle model stays loaded (0: until evicted; default 600).")
    var keepAlive: String?

    @Option(help: "Threads llama.cpp decodes with (default: every core).")
    var threads: Int?

    @Option(
        help:
            "invariant (default: an answer's tokens do not depend on what ran beside it) or mixed (prompts share calls with generating tokens, as llama-server)."
    )
    var decodeMode: String?

    @Option(help: "Prompt chunk size in the invariant mode, 1 to 512 (default 64); recorded with every answer.")
    var prefillChunk: Int?

    @Option(
        help: "Flash attention: false (default, as llama-cpp-python; faster for long contexts on CPU) or true (llama.cpp's CPU default).")
    var flashAttention: Bool?

    @Option(help: "Bytes of prompt prefixes kept per model for reuse at chunk boundaries (invariant mode; e.g. 256M, the default; 0: off).")
    var prefixCache: String?

    var values: [String: [String]] {
        var flags = FlagValues()
        flags.add(.slots, slots)
        flags.add(.queue, queue)
        flags.add(.contextPerSlot, contextPerSlot)
        flags.add(.maxModels, maxModels)
        flags.add(.memoryBudget, memoryBudget)
        flags.add(.maxTokensLimit, maxTokensLimit)
        flags.add(.maxPromptBytes, maxPromptBytes)
        flags.add(.keepAlive, keepAlive)
        flags.add(.threads, threads)
        flags.add(.decodeMode, decodeMode)
        flags.add(.prefillChunk, prefillChunk)
        flags.add(.flashAttention, flashAttention)
        flags.add(.prefixCache, prefixCache)
        return flags.values
    }
}

/// Where inferences are recorded and how.
struct LedgerOptions: ParsableArguments, ConfigurationFlags {
    @Option(help: "The ledger: sqlite:PATH, postgres://user:password@host:port/database, or off. Default: sqlite:<cache>/ledger.sqlite.")
    var ledger: String?

    @Option(help: "When a ledger write fails: warn (answer anyway, log and count it) or fail.")
    var ledgerFailure: String?

    @Option(help: "A file holding the PostgreSQL password, when the ledger URL has none (else $PGPASSWORD).")
    var ledgerPasswordFile: String?

    @Option(help: "Prompts and outputs in the ledger: store (as text) or hash (SHA-256 only; such records cannot be replayed).")
    var ledgerText: String?

    @Option(help: "The salt of the ledger's digests under ledger-text hash (default: ledger-salt in the cache folder, made when missing).")
    var ledgerSaltFile: String?

    @Option(help: "Delete records older than this many days (checked hourly).")
    var ledgerRetentionDays: Int?

    @Option(help: "Keep at most this many records (the newest).")
    var ledgerMaxRows: Int?

    var values: [String: [String]] {
        var flags = FlagValues()
        flags.add(.ledger, ledger)
        flags.add(.ledgerFailure, ledgerFailure)
        flags.add(.ledgerPasswordFile, ledgerPasswordFile)
        flags.add(.ledgerText, ledgerText)
        flags.add(.ledgerSaltFile, ledgerSaltFile)
        flags.add(.ledgerRetentionDays, ledgerRetentionDays)
        flags.add(.ledgerMaxRows, ledgerMaxRows)
        return flags.values
    }
}

/// Where the API keys are (every command that reads or serves them).
struct AccessOptions: ParsableArguments, ConfigurationFlags {
    @Option(help: "The keys file (default: keys.json in the cache folder).")
    var keysFile: String?

    var values: [String: [String]] {
        var flags = FlagValues()
        flags.add(.keysFile, keysFile)
        return flags.values
    }
}

/// Options of the server alone.
struct ServerOptions: ParsableArguments, ConfigurationFlags {
    @Option(help: "Address to listen on (default 127.0.0.1).")
    var host: String?

    @Option(help: "Port to listen on (default: $PEDIGREE_PORT or 8080).")
    var port: Int?

    @Option(help: "A revision spec to load on start (repeat for several).")
    var preload: [String] = []

    @Option(help: "Seconds running generations may take to finish after SIGTERM before they are cancelled (default 30).")
    var drainTimeout: String?

    @Option(help: "Seconds a WebSocket may wait before its connection_init; then it is closed with 4408 (default 10).")
    var websocketInitTimeout: String?

    @Option(help: "Seconds between fetches of the Git remote (0: never; default 60).")
    var refreshInterval: String?

    @Option(help: "Secret of POST /hooks/git (GitHub X-Hub-Signature-256 or GitLab X-Gitlab-Token); unset turns the hook off.")
    var webhookSecret: String?

    @Option(help: "Record metrics: true (default) or false (/metrics then shows only states read when scraped).")
    var metrics: String?

    @Option(help: "Export traces over OTLP/HTTP to this endpoint (e.g. http://127.0.0.1:4318). Default: no tracing.")
    var otlpEndpoint: String?

    @Flag(help: "Serve a non-loopback address without API keys (anyone who reaches the port may do everything; logged as a warning).")
    var insecureNoAuth = false

    @Option(help: "TLS: the listener's certificate chain (PEM); HTTPS and WSS on the port, reloaded when the file changes.")
    var tlsCertificate: String?

    @Option(help: "TLS: the private key (PEM) of --tls-certificate.")
    var tlsKey: String?

    @Option(
        name: .customLong("allowed-origin"),
        help: "A browser origin (https://host:port) besides the server's own that may call it (repeat for several).")
    var allowedOrigins: [String] = []

    @Option(help: "Requests per minute of each key that sets none (default: no limit).")
    var keyRequestsPerMinute: Int?

    @Option(help: "Generated tokens per minute of each key that sets none (default: no limit).")
    var keyTokensPerMinute: Int?

    @Option(help: "Generations at once of each key that sets none (default: no limit).")
    var keyConcurrentGenerations: Int?

    @Option(help: "Folder of GraphiQL's built files (default: .deps/graphiql, installed by script/bootstrap).")
    var graphiqlAssets: String?

    @Option(name: .customLong("worker"), help: "An inference worker (http://host:port) to send generations to (repeat for several).")
    var workers: [String] = []

    @Option(help: "A file holding the token sent to the workers (pedigree worker --worker-token-file).")
    var workerTokenFile: String?

    @Option(help: "HOST:PORT: a DNS name whose addresses are workers (a Kubernetes headless Service), re-resolved every 5 s.")
    var workersDns: String?

    @Option(
        name: .customLong("external-backend"),
        help:
            "An OpenAI-compatible server bound to the weights it serves: 'name=N url=http://host:port md5=ARTIFACT_MD5 [model=M] [api-key-file=F]' (repeat for several)."
    )
    var externalBackends: [String] = []

    var values: [String: [String]] {
        var flags = FlagValues()
        flags.add(.host, host)
        flags.add(.port, port)
        flags.add(.preload, list: preload)
        flags.add(.drainTimeout, drainTimeout)
        flags.add(.websocketInitTimeout, websocketInitTimeout)
        flags.add(.refreshInterval, refreshInterval)
        flags.add(.webhookSecret, webhookSecret)
        flags.add(.metrics, metrics)
        flags.add(.otlpEndpoint, otlpEndpoint)
        if insecureNoAuth { flags.add(.insecureNoAuth, "true") }
        flags.add(.tlsCertificate, tlsCertificate)
        flags.add(.tlsKey, tlsKey)
        flags.add(.allowedOrigins, list: allowedOrigins)
        flags.add(.keyRequestsPerMinute, keyRequestsPerMinute)
        flags.add(.keyTokensPerMinute, keyTokensPerMinute)
        flags.add(.keyConcurrentGenerations, keyConcurrentGenerations)
        flags.add(.graphiqlAssets, graphiqlAssets)
        flags.add(.workers, list: workers)
        flags.add(.workerTokenFile, workerTokenFile)
        flags.add(.workersDNS, workersDns)
        flags.add(.externalBackends, list: externalBackends)
        return flags.values
    }
}

/// Loads the configuration from `groups` and the `--config` file, and bootstraps logging with it.
/// A bad configuration prints the key's error and exits with status 2.
func loadConfiguration(_ common: CommonOptions, _ groups: [any ConfigurationFlags], requireRepo: Bool = true, quiet: Bool = false) async throws
    -> LoadedConfiguration
{
    var flags = common.values
    for group in groups { flags.merge(group.values) { $1 } }
    do {
        let loaded = try await ConfigurationLoader.load(flags: flags, file: common.config, requireRepo: requireRepo)
        // Commands that print results keep the log to warnings unless asked for more.
        let levelSet = loaded.entries.contains { $0.key == .logLevel && $0.source != "default" }
        let level = quiet && !levelSet ? .warning : loaded.logLevel
        LogOutput.bootstrap(format: loaded.logFormat, level: level)
        return loaded
    } catch let error as ConfigurationError {
        FileHandle.standardError.write(Data("error: configuration: \(error.message)\n".utf8))
        throw ExitCode(2)
    }
}
