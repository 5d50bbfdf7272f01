import Access
import Foundation
import Inference
import Ledger
import Logging

/// The key table: every configuration key, once, in the order of `config check` and the
/// example file. Adding a key is one entry here and, where it is new, a field of
/// `ServingConfiguration` (its initial value is the default).
extension ConfigurationKey {
    public static let all: [ConfigurationKey] = repository + http + access + artifacts + scaleOut + inference + ledger + logging

    private static let repository: [ConfigurationKey] = [
        .key(
            "repo", \.repo, .text, .repository, [.common], defaultNote: "the one repository mirrored in the cache", example: ["/srv/models"],
            help: "The Git + DVC repository: a local path or a URL (credentials in a URL are redacted in output)."),
        .key(
            "cache", \.cache, .text, .repository, [.common], defaultNote: "$XDG_CACHE_HOME/pedigree or ~/.cache/pedigree",
            example: ["/var/cache/pedigree"], help: "Cache folder: the Git mirror, artifact objects, the keys and the default SQLite ledger."),
        .key(
            "refresh-interval", \.serving.refreshInterval, .seconds(0...86_400), .repository, [.server],
            help: "Seconds between fetches of the Git remote (0: never); 30, 30s, 5m, 2h are all accepted."),
        .key(
            "refresh-timeout", \.serving.refreshTimeout, .seconds(1...3_600), .repository, [.common],
            help: "Longest one fetch of the Git remote may run before it is stopped and counted as failed."),
        .key(
            "webhook-secret", \.serving.webhookSecret, .text, .repository, [.server], secret: true, defaultNote: "none: the hook answers 404",
            example: ["change-me"],
            help: "Secret of POST /hooks/git: GitHub's X-Hub-Signature-256 (HMAC-SHA256 of the body) or GitLab's X-Gitlab-Token."),
    ]

    private static let http: [ConfigurationKey] = [
        .key("host", \.serving.host, .string, .http, [.server, .worker], help: "Address to listen on."),
        .key("port", \.serving.port, .integer(1...65_535), .http, [.server, .worker], help: "Port to listen on."),
        .key(
            "drain-timeout", \.serving.drainTimeout, .seconds(0...3_600), .http, [.server, .worker],
            help: "Seconds running generations may take to finish after SIGTERM before they are cancelled.",
            details:
                "After SIGTERM /readyz turns 503 and new work is refused; generations still running then end with finish reason `cancelled` (recorded). A second signal ends the wait."
        ),
        .key(
            "websocket-init-timeout", \.serving.websocketInitTimeout, .seconds(1...300), .http, [.server],
            help: "Seconds a WebSocket (graphql-transport-ws) may wait before its connection_init; then it is closed with 4408."),
        .key(
            "websocket-max-subscriptions", \.serving.websocketMaxSubscriptions, .integer(1...10_000), .http, [.server],
            help: "Subscriptions one WebSocket may run at once; one more is answered with an error message."),
        .key(
            "http-idle-timeout", \.serving.httpIdleTimeout, .seconds(1...3_600), .http, [.server],
            help:
                "A connection that sends nothing for this many seconds (idle between requests, or stalled inside a request's head or body) is closed."
        ),
        .key(
            "request-timeout", \.serving.requestTimeout, .seconds(1...3_600), .http, [.server],
            help: "The longest a GraphQL query may run, in seconds; past it the answer is DEADLINE_EXCEEDED (504)."),
        .key(
            "mutation-timeout", \.serving.mutationTimeout, .seconds(1...86_400), .http, [.server],
            help:
                "The longest a GraphQL mutation may run, in seconds, all its fields together (pulls, generations, replays); past it the answer is DEADLINE_EXCEEDED."
        ),
        .key(
            "max-generations-per-request", \.serving.maxGenerationsPerRequest, .integer(1...1_000), .http, [.server],
            help: "The most generations one request may start (aliased infer fields, replayMany's sample; a WebSocket counts each operation alone).",
            details: "Each generation after the first also counts against the key's requests per minute."),
        .key(
            "graphql-max-depth", \.serving.graphqlMaxDepth, .integer(2...256), .http, [.server],
            help: "GraphQL documents nesting fields deeper than this are refused with QUERY_TOO_COMPLEX before they run."),
        .key(
            "graphql-max-fields", \.serving.graphqlMaxFields, .integer(1...100_000), .http, [.server],
            help: "GraphQL documents selecting more fields than this (aliases and fragments expanded) are refused with QUERY_TOO_COMPLEX."),
        .key(
            "graphql-max-cost", \.serving.graphqlMaxCost, .integer(1...Int(Int32.max)), .http, [.server],
            help:
                "GraphQL documents whose estimated cost is over this are refused with QUERY_TOO_COMPLEX (each field counts once per element of the lists above it: `first`, else 5)."
        ),
        .key(
            "metrics", \.serving.metrics, .boolean, .http, [.server],
            help: "Record metrics (/metrics, Prometheus text: OpenTelemetry GenAI histograms, HTTP, models, artifacts, ledger).",
            details: "false leaves only the states read when scraped."),
        .key(
            "otlp-endpoint", \.serving.otlpEndpoint, .text, .http, [.server], defaultNote: "none: no tracing",
            example: ["http://otel-collector:4318"],
            help: "Export traces over OTLP/HTTP (protobuf) to this endpoint.",
            details:
                "One trace per request, resolve → fetch → load → generate → record, continuing a W3C traceparent; the trace id is in log lines and ledger records."
        ),
    ]

    private static let access: [ConfigurationKey] = [
        .key(
            "keys-file", \.serving.keysFile, ConfigurationCodec.text.map({ $0.map(URL.init(fileURLWithPath:)) }, back: { $0?.path }), .access,
            [.access], defaultNote: "keys.json in the cache folder", example: ["/etc/pedigree/keys.json"],
            help: "The API keys file (digests only): `pedigree keys create --name ci --role infer`.",
            details: "Authentication is on as soon as the file holds a key, and always on a non-loopback host."),
        .key(
            "insecure-no-auth", \.serving.insecureNoAuth, .boolean, .access, [.server, .worker],
            help:
                "Serve a non-loopback address without API keys (a worker: without its token): anyone who reaches the port may do everything; logged as a warning."
        ),
        .key(
            "tls-certificate", \.tlsCertificate, .text, .access, [.server], defaultNote: "none: plain HTTP", example: ["/etc/pedigree/tls/tls.crt"],
            help: "TLS on the listener: the certificate chain (PEM); HTTPS and WSS on the same port (HTTP/1.1).",
            details:
                "Read again at the first connection after it or the key changed (no restart to renew). With TLS the web view's cookie is Secure and HSTS is sent. A non-loopback listener without TLS logs a warning at start."
        ),
        .key(
            "tls-key", \.tlsKey, .text, .access, [.server], defaultNote: "none", example: ["/etc/pedigree/tls/tls.key"],
            help: "TLS: the private key (PEM) of tls-certificate; the two go together."),
        .key(
            "allowed-origins", \.serving.allowedOrigins,
            ConfigurationCodec.list.map(
                { origins in
                    try origins.map { origin in
                        guard let normalized = OriginPolicy.normalize(origin) else {
                            throw ConfigurationProblem("'\(origin)' is not an origin such as https://app.example.com:8443")
                        }
                        return normalized
                    }
                }, back: { $0 }), .access, [.server], flag: "allowed-origin", defaultNote: "none", example: ["https://app.example.com"],
            help: "Browser origins (https://host:port) besides the server's own that may POST and open WebSockets (and get CORS headers)."),
        .key(
            "key-requests-per-minute", \.serving.keyLimits.requestsPerMinute, ConfigurationCodec.integer(1...10_000_000).optional, .access, [.server],
            defaultNote: "no limit", example: ["600"],
            help: "Requests per minute of each key that sets none of its own (`keys create --requests-per-minute`); past it 429 with Retry-After."),
        .key(
            "key-tokens-per-minute", \.serving.keyLimits.tokensPerMinute, ConfigurationCodec.integer(1...1_000_000_000).optional, .access, [.server],
            defaultNote: "no limit", example: ["100000"], help: "Generated tokens per minute of each key that sets none of its own."),
        .key(
            "key-concurrent-generations", \.serving.keyLimits.concurrentGenerations, ConfigurationCodec.integer(1...100_000).optional, .access,
            [.server], defaultNote: "no limit", example: ["4"], help: "Generations at once of each key that sets none of its own."),
        .key(
            "graphiql-assets", \.serving.graphiqlAssets, .text, .access, [.server], defaultNote: ".deps/graphiql, installed by script/bootstrap",
            example: ["/usr/share/pedigree/graphiql"], help: "Folder of GraphiQL's built files."),
    ]

    private static let artifacts: [ConfigurationKey] = [
        .key(
            "cache-budget", \.serving.cacheBudget, ConfigurationCodec.size.optional, .artifacts, [.artifacts], defaultNote: "no limit",
            example: ["20G"], help: "Largest size of the artifact cache (500M, 20G, 1T); least recently used objects are evicted."),
        .key("jobs", \.serving.jobs, .integer(1...256), .artifacts, [.artifacts], help: "Downloads that run at once."),
        .key(
            "verify-cache", \.serving.verifyCache, .boolean, .artifacts, [.artifacts],
            help: "Re-hash every cached object on start (slow for large caches)."),
        .key(
            "remote", \.serving.remote, .text, .artifacts, [.artifacts], defaultNote: "the one the repository names", example: ["backup"],
            help: "A DVC remote to fetch from instead of the one the repository names (pedigree worker: a URL)."),
        .key(
            "remote-endpoints", \.serving.remoteEndpoints, .list, .artifacts, [.artifacts], flag: "remote-endpoint", defaultNote: "none",
            example: ["https://minio.internal:9000"],
            help: "S3/HTTP endpoints (scheme://host:port) that the repository's committed .dvc/config may fetch from and send your credentials to.",
            details:
                "Your credentials (environment, ~/.aws, .dvc/config.local) go to AWS itself and to endpoints you set in .dvc/config.local or AWS_ENDPOINT_URL; any other endpoint a committed .dvc/config names answers ARTIFACT_UNAVAILABLE, and nothing is fetched or sent. The same holds for a Git LFS endpoint a committed .lfsconfig names."
        ),
        .key(
            "lfs-credentials-file", \.serving.lfsCredentialsFile, .text, .artifacts, [.artifacts], defaultNote: "none",
            example: ["/etc/pedigree/lfs-credentials"],
            help: "A file of lines URL USER:PASSWORD: basic auth for the Git LFS endpoints at or under each URL.",
            details:
                "The endpoint is the one a commit's .lfsconfig names (used only when remote-endpoints lists its origin) or --repo's URL + .git/info/lfs (which takes the URL's own user and password when the file names none). Credentials never go over plain http to another host, nor to the hosts the LFS server's download links point to (themselves only followed to the endpoint's origin or one remote-endpoints lists)."
        ),
    ]

    private static let scaleOut: [ConfigurationKey] = [
        .key(
            "workers", \.serving.workers, .list, .scaleOut, [.server], flag: "worker", defaultNote: "none: this process generates",
            example: ["http://worker-0.pedigree-workers:8080"],
            help: "Inference workers (pedigree worker, http://host:port) the gateway sends generations to, by artifact md5 (rendezvous hashing)."),
        .key(
            "workers-dns", \.serving.workersDNS,
            ConfigurationCodec.text.map(
                { dns in
                    if let dns, WorkerPool.hostAndPort(dns) == nil {
                        throw ConfigurationProblem("HOST:PORT (a DNS name and the workers' port), not '\(dns)'")
                    }
                    return dns
                }, back: { $0 }), .scaleOut, [.server], defaultNote: "none", example: ["pedigree-workers.default.svc.cluster.local:8080"],
            help: "HOST:PORT: a DNS name whose addresses are workers (a Kubernetes headless Service), re-resolved every 5 s."),
        .key(
            "worker-token-file", \.serving.workerTokenFile, .text, .scaleOut, [.server, .worker], defaultNote: "none",
            example: ["/etc/pedigree/worker-token"],
            help: "A file holding the token the gateway sends and a worker requires (at least 16 characters; required beyond loopback)."),
        .key(
            "external-backends", \.serving.externalBackends,
            ConfigurationCodec.list.map({ try $0.map(ExternalBackends.Declaration.init(parsing:)) }, back: { $0.map(\.text) }), .scaleOut,
            [.server], flag: "external-backend", defaultNote: "none",
            example: ["name=vllm url=http://vllm.internal:8000 md5=3c1f0e9d8a7b6c5d4e3f2a1b0c9d8e7f model=SmolLM2"],
            help:
                "OpenAI-compatible servers (vLLM, llama-server), each bound to the artifact md5 it serves: 'name=N url=http://host:port md5=MD5 [model=M] [api-key-file=F]'.",
            details: "Generations of those weights go there (engine external:<name>; replay is not guaranteed)."),
        .key(
            "dvc-config", \.serving.dvcConfig, .text, .scaleOut, [.worker], defaultNote: "none", example: ["/etc/pedigree/dvc-config"],
            help:
                "pedigree worker: the DVC remotes it fetches from, in .dvc/config syntax (the operator's file: its endpoints and credentials are trusted)."
        ),
    ]

    private static let inference: [ConfigurationKey] = [
        .key(
            "slots", \.serving.models.slots, .integer(1...256), .inference, [.inference],
            help: "Requests decoded together per model (continuous batching)."),
        .key(
            "queue", \.serving.models.queueLimit, .integer(0...100_000), .inference, [.inference],
            help: "Requests that may wait for a slot; beyond them the answer is OVERLOADED."),
        .key(
            "context-per-slot", \.serving.models.contextPerSlot, .integer(64...1_048_576), .inference, [.inference],
            help: "Tokens of context per slot, prompt plus generated."),
        .key("max-models", \.serving.models.maxModels, .integer(1...64), .inference, [.inference], help: "Models loaded at once."),
        .key(
            "memory-budget", \.serving.models.memoryBudget, ConfigurationCodec.size.map({ UInt64($0) }, back: { Int64(clamping: $0) }).optional,
            .inference, [.inference], defaultNote: "three quarters of the host's memory (the cgroup's limit where one is set)", example: ["8G"],
            help:
                "Bytes of host memory the loaded models may hold together: weights, KV caches, compute buffers and prefix caches, as llama.cpp allocates them.",
            details:
                "A load is planned first (a dry run that allocates nothing) and admitted only if it fits beside the models loaded and loading; least recently used idle models are unloaded to make room, and when only busy ones are left the load is refused at once, naming the bytes needed and free."
        ),
        .key(
            "gpu-memory-budget", \.serving.models.gpuMemoryBudget,
            ConfigurationCodec.size.map({ UInt64($0) }, back: { Int64(clamping: $0) }).optional,
            .inference, [.inference], defaultNote: "90% of each GPU's memory as its driver reports it", example: ["70G"],
            help: "Bytes of each GPU's memory the loaded models may hold together (the same admission as memory-budget, per GPU)."),
        .key(
            "gpu-layers", \.serving.models.gpuLayers,
            ConfigurationCodec.string.map(
                { text in
                    guard let layers = GPULayers(text) else { throw ConfigurationProblem("'\(text)' is not a number of layers, all or auto") }
                    return layers
                }, back: \.description), .inference, [.inference],
            help: "Layers of each model offloaded to the GPUs: a number, all, or auto (as many as fit gpu-memory-budget); none without a GPU.",
            details:
                "An engine fact: recorded with every answer, with the GPUs' models and driver. Answers with offloaded layers are recorded as not batch-invariant (not measured on a GPU), so their replays are not guaranteed."
        ),
        .key(
            "gpu-devices", \.serving.models.gpuDevices, .list, .inference, [.inference], flag: "gpu-device", defaultNote: "every GPU llama.cpp sees",
            example: ["CUDA0"], help: "The GPUs models may use, by ggml name (CUDA0, CUDA1…)."),
        .key(
            "gpu-kv-cache", \.serving.models.offloadKV, .boolean, .inference, [.inference],
            help: "The KV cache and attention on the GPUs with their layers (false: in host memory, counted against memory-budget)."),
        .key(
            "max-tokens-limit", \.serving.models.maxTokensLimit, .integer(1...1_000_000), .inference, [.inference],
            help: "Largest maxTokens a request may ask for."),
        .key(
            "max-prompt-bytes", \.serving.models.maxPromptBytes, .integer(1...(64 << 20)), .inference, [.inference],
            help: "Largest prompt (or sum of message contents) in bytes."),
        .key(
            "generation-timeout", \.serving.models.generationTimeout, .seconds(1...86_400), .inference, [.inference],
            help: "The longest one generation may run, in seconds; then it stops with what it has (finish reason `cancelled`), and is recorded so."),
        .key(
            "keep-alive", \.serving.models.keepAlive,
            ConfigurationCodec.seconds(0...31_536_000).map({ $0 == .zero ? nil : $0 }, back: { $0 ?? .zero }),
            .inference, [.inference], help: "Seconds an idle model stays loaded (0: until evicted)."),
        .key(
            "threads", \.serving.models.threads, .integer(1...1_024), .inference, [.inference], defaultNote: "every core", example: ["8"],
            help: "Threads llama.cpp decodes with."),
        .key(
            "decode-mode", \.serving.models.decodeMode, .choice, .inference, [.inference],
            help:
                "invariant: an answer's tokens do not depend on what ran beside it (prompts prefilled in fixed chunks at fixed positions, each in its own call); mixed: as llama-server."
        ),
        .key(
            "prefill-chunk", \.serving.models.prefillChunk, .integer(1...512), .inference, [.inference],
            help: "Prompt chunk size of the invariant mode; recorded with every answer."),
        .key(
            "flash-attention", \.serving.models.flashAttention, .boolean, .inference, [.inference],
            help: "Flash attention (an engine fact: the two settings give different text).",
            details: "Off is faster on CPU for long contexts and reused prefixes; llama.cpp's own CPU default is on."),
        .key(
            "prefix-cache", \.serving.models.prefixCacheBytes, ConfigurationCodec.size.map({ Int(clamping: $0) }, back: { Int64($0) }), .inference,
            [.inference], help: "Bytes of prompt prefixes kept per loaded model for reuse at chunk boundaries (invariant mode; 0: off)."),
        .key(
            "unsigned-weights", \.serving.unsignedWeights, .choice, .inference, [.inference],
            help:
                "Weights not verified by a trusted signer: allow (unsigned load; a signature present must hold), warn (load, log, record unverified) or refuse.",
            details:
                "A signature is an OpenSSF Model Signing bundle beside the weights (model.gguf.sig), committed to Git or tracked by DVC, checked offline before the weights load."
        ),
        .key(
            "trusted-signers", \.serving.trustedSigners, .list, .inference, [.inference], flag: "trusted-signer", defaultNote: "none",
            example: ["tiny-llama=/etc/pedigree/ml-team.pem", "/etc/pedigree/release-ca.pem"],
            help:
                "PATTERN=FILE: the PEM public keys (key method) and CA certificates (certificate method) trusted to sign models matching PATTERN (* wildcards; FILE alone: every model)."
        ),
        .key(
            "preload", \.serving.preload, .list, .inference, [.server], defaultNote: "none", example: ["smollm2-135m#prod"],
            help: "Revision specs loaded on start."),
    ]

    private static let ledger: [ConfigurationKey] = [
        .key(
            "ledger", \.serving.ledger, .text, .ledger, [.ledger], defaultNote: "sqlite:<cache>/ledger.sqlite",
            example: ["postgres://pedigree:secret@db:5432/pedigree"],
            help: "Where inferences are recorded: sqlite:PATH, postgres://user:password@host:port/database, or off.",
            details: "PostgreSQL: `?sslmode=require|verify-ca|verify-full[&sslrootcert=/path/ca.pem]` for TLS."),
        .key(
            "ledger-failure", \.serving.ledgerFailure, .choice, .ledger, [.ledger],
            help: "When a ledger write fails: warn (answer anyway, log and count it) or fail (refuse the answer)."),
        .key(
            "ledger-password-file", \.serving.ledgerPasswordFile, .text, .ledger, [.ledger], defaultNote: "$PGPASSWORD",
            example: ["/run/secrets/ledger-password"],
            help: "A file holding the PostgreSQL password, when the ledger URL has none (so it is on no command line)."),
        .key(
            "ledger-text", \.serving.ledgerText, .choice, .ledger, [.ledger],
            help:
                "Prompts, outputs and token ids as text (store) or as HMAC-SHA256 digests with this deployment's salt (hash; such records cannot be replayed)."
        ),
        .key(
            "ledger-salt-file", \.serving.ledgerSaltFile, .text, .ledger, [.ledger],
            defaultNote: "ledger-salt in the cache folder, made when missing",
            example: ["/run/secrets/ledger-salt"],
            help: "The salt of the ledger's digests under ledger-text hash (replicas sharing a ledger share it)."),
        .key(
            "ledger-retention-days", \.serving.ledgerRetentionDays, ConfigurationCodec.integer(1...36_500).optional, .ledger, [.ledger],
            help: "Delete records older than this many days (checked hourly).",
            details:
                "Requests refused before they ran (bad input, a full queue) are counted in /metrics, not recorded; a failed request keeps 1 KiB of its input plus its size and SHA-256."
        ),
        .key(
            "ledger-max-rows", \.serving.ledgerMaxRows, ConfigurationCodec.integer(1...Int(Int32.max)).optional, .ledger, [.ledger],
            help: "Keep at most this many records (the newest; checked hourly).",
            details: "SQLite's write-ahead log is folded back and truncated once it passes 64 MiB."),
        .key(
            "receipt-key-file", \.serving.receiptKeyFile, .text, .ledger, [.ledger],
            defaultNote: "receipt-key in the cache folder, made when missing",
            example: ["/run/secrets/receipt-key"],
            help: "The Ed25519 key receipts and tree heads are signed with (32 raw bytes, mode 0600); gateways sharing a ledger share it.",
            details: "pedigree receipt-key rotate makes a new one; the retired public keys stay published (FILE.retired) and trusted."),
        .key(
            "tree-head-interval", \.serving.treeHeadInterval, .seconds(1...86_400), .ledger, [.server],
            help: "Sign a head of the ledger's Merkle tree this often while it grows (and once on shutdown).",
            details: "Inclusion proofs (Inference.inclusionProof) are given against the newest signed head."),
    ]

    private static let logging: [ConfigurationKey] = [
        .key(
            "log-format", \.logFormat, .choice, .logging, [.common],
            help: "Log lines as text or json (one object per line; every line of a request carries its request_id)."),
        .key(
            "log-level", \.logLevel, .choice, .logging, [.common],
            help: "The least severe level logged: trace, debug, info, notice, warning, error, critical."),
    ]
}
