import API
import ArgumentParser
import ArtifactStore
import Foundation
import GitStore
import Hummingbird
import Inference
import Ledger
import Lineage
import Logging

import func GraphQL.printSchema

/// The `pedigree` command: a thin layer that opens the repository and hands it to the modules.
@main
struct Pedigree: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "A reproducible model-serving gateway over a Git + DVC repository.",
        subcommands: [Serve.self, Models.self, LineageCommand.self, Pull.self, Infer.self, Replay.self, LedgerCommand.self, Schema.self]
    )
}

/// Options every command that reads the repository shares.
struct RepositoryOptions: ParsableArguments {
    @Option(help: "The Git + DVC repository: a local path or a URL. Default: $PEDIGREE_REPO, else the one repository mirrored in the cache.")
    var repo: String?

    @Option(help: "Cache folder (repository mirror, artifacts). Default: $PEDIGREE_CACHE or ~/.cache/pedigree.")
    var cache: String?

    var cacheDirectory: URL { Self.defaultCacheDirectory(cache) }

    /// `--repo`, else $PEDIGREE_REPO, else the source of the only mirror in the cache (so
    /// `pedigree replay <id>` needs no more than the id on a machine that serves one repository).
    func source() throws -> String {
        if let repo { return repo }
        if let env = ProcessInfo.processInfo.environment["PEDIGREE_REPO"], !env.isEmpty { return env }
        let mirrors = cacheDirectory.appendingPathComponent("git")
        let sources = ((try? FileManager.default.contentsOfDirectory(atPath: mirrors.path)) ?? []).sorted().compactMap { name -> String? in
            guard let config = try? String(contentsOfFile: mirrors.path + "/\(name)/config", encoding: .utf8) else { return nil }
            return config.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
                .first { $0.hasPrefix("url = ") }.map { String($0.dropFirst("url = ".count)) }
        }
        guard sources.count == 1 else {
            let found = sources.isEmpty ? "none is mirrored in \(cacheDirectory.path)" : "several are mirrored: \(sources.joined(separator: ", "))"
            throw ValidationError("--repo: name the repository (\(found))")
        }
        return sources[0]
    }

    /// `--cache`, else $PEDIGREE_CACHE, else ~/.cache/pedigree (XDG_CACHE_HOME respected).
    static func defaultCacheDirectory(_ cache: String?) -> URL {
        if let cache { return URL(fileURLWithPath: cache) }
        if let env = ProcessInfo.processInfo.environment["PEDIGREE_CACHE"] { return URL(fileURLWithPath: env) }
        let base =
            ProcessInfo.processInfo.environment["XDG_CACHE_HOME"].map { URL(fileURLWithPath: $0) }
            ?? FileManager.default.homeDirectoryForCurrentUser.appendingPathComponent(".cache")
        return base.appendingPathComponent("pedigree")
    }

    /// Mirrors (or reopens) the repository and fetches it, so commands see the source's newest state.
    func openService(logger: Logger, fetch: Bool = true) throws -> LineageService {
        let repo = try self.source()
        let source = FileManager.default.fileExists(atPath: repo) ? URL(fileURLWithPath: repo).standardizedFileURL.path : repo
        let repository = try GitRepository.mirror(source: source, into: cacheDirectory.appendingPathComponent("git"))
        if fetch { try repository.fetch() }
        return LineageService(repository: repository, logger: logger)
    }
}

/// Options of the commands that run models.
struct InferenceOptions: ParsableArguments {
    @Option(help: "Requests decoded together per model (continuous batching).")
    var slots = 4

    @Option(help: "Requests that may wait for a slot; beyond them the answer is OVERLOADED.")
    var queue = 16

    @Option(help: "Tokens of context per slot (prompt plus generated).")
    var contextPerSlot = 2048

    @Option(help: "Models loaded at once.")
    var maxModels = 2

    @Option(help: "Bytes of weights loaded at once (e.g. 8G); least recently used idle models are unloaded. Default: no limit.")
    var memoryBudget: String?

    @Option(help: "Largest maxTokens a request may ask for.")
    var maxTokensLimit = 1024

    @Option(help: "Largest prompt (or sum of message contents) in bytes.")
    var maxPromptBytes = 32 * 1024

    @Option(help: "Seconds an idle model stays loaded (0: until evicted).")
    var keepAlive = 600

    @Option(help: "Threads llama.cpp decodes with (default: every core).")
    var threads: Int?

    func validate() throws {
        if let memoryBudget, ArtifactOptions.bytes(memoryBudget) == nil {
            throw ValidationError("--memory-budget: '\(memoryBudget)' is not a size such as 8G")
        }
    }

    var configuration: ModelManager.Configuration {
        var configuration = ModelManager.Configuration()
        configuration.slots = max(1, slots)
        configuration.queueLimit = max(0, queue)
        configuration.contextPerSlot = max(64, contextPerSlot)
        configuration.maxModels = max(1, maxModels)
        configuration.maxTokensLimit = max(1, maxTokensLimit)
        configuration.maxPromptBytes = max(1, maxPromptBytes)
        configuration.memoryBudget = memoryBudget.flatMap(ArtifactOptions.bytes).map { UInt64($0) }
        configuration.keepAlive = keepAlive > 0 ? .seconds(keepAlive) : nil
        if let threads { configuration.threads = max(1, threads) }
        return configuration
    }
}

/// Where inferences are recorded and how.
struct LedgerOptions: ParsableArguments {
    @Option(help: "The ledger: sqlite:PATH, postgres://user:password@host:port/database, or off. Default: sqlite:<cache>/ledger.sqlite.")
    var ledger: String?

    @Option(help: "When a ledger write fails: warn (answer anyway, log and count it) or fail.")
    var ledgerFailure: String = "warn"

    @Option(help: "Prompts and outputs in the ledger: store (as text) or hash (SHA-256 only; such records cannot be replayed).")
    var ledgerText: String = "store"

    @Option(help: "Delete records older than this many days (checked hourly).")
    var ledgerRetentionDays: Int?

    @Option(help: "Keep at most this many records (the newest).")
    var ledgerMaxRows: Int?

    func validate() throws {
        guard LedgerFailurePolicy(rawValue: ledgerFailure) != nil else { throw ValidationError("--ledger-failure: warn or fail") }
        guard ["store", "hash"].contains(ledgerText) else { throw ValidationError("--ledger-text: store or hash") }
    }

    /// The ledger, or nil when it is off.
    func open(cacheDirectory: URL, logger: Logger = Logger(label: "pedigree.ledger")) async throws -> (any InferenceLedger)? {
        let spec = ledger ?? "sqlite:" + cacheDirectory.appendingPathComponent("ledger.sqlite").path
        if spec == "off" { return nil }
        if spec.hasPrefix("sqlite:") { return try SQLiteLedger(path: String(spec.dropFirst("sqlite:".count))) }
        if spec.hasPrefix("postgres://") || spec.hasPrefix("postgresql://") { return try await PostgresLedger(url: spec, logger: logger) }
        throw ValidationError("--ledger: sqlite:PATH, postgres://user:password@host:port/database, or off")
    }

    /// The inference service over `models`, recording into the ledger.
    func service(models: ModelManager, cacheDirectory: URL, logger: Logger) async throws -> InferenceService {
        InferenceService(
            models: models, ledger: try await open(cacheDirectory: cacheDirectory, logger: logger),
            policy: LedgerFailurePolicy(rawValue: ledgerFailure) ?? .warn, storeText: ledgerText == "store", logger: logger)
    }
}

/// Everything a command that runs models needs: repository, artifact cache, models, ledger.
struct InferenceStackOptions: ParsableArguments {
    @OptionGroup var repository: RepositoryOptions

    @OptionGroup var artifacts: ArtifactOptions

    @OptionGroup var inference: InferenceOptions

    @OptionGroup var ledger: LedgerOptions

    /// Opens the repository, the cache, the model manager and the ledger, in that order.
    func open(logger: Logger) async throws -> InferenceService {
        let service = try repository.openService(logger: logger)
        let store = try artifacts.openStore(service, cacheDirectory: repository.cacheDirectory, logger: logger)
        let models = ModelManager(artifacts: store, configuration: inference.configuration, logger: logger)
        return try await ledger.service(models: models, cacheDirectory: repository.cacheDirectory, logger: logger)
    }
}

/// Options of the commands that fetch artifacts.
struct ArtifactOptions: ParsableArguments {
    @Option(help: "Largest size of the artifact cache (e.g. 500M, 20G); least recently used objects are evicted. Default: no limit.")
    var cacheBudget: String?

    @Option(help: "Downloads that run at once.")
    var jobs = 8

    @Flag(help: "Also check the md5 of every cached object on start (slow for large caches).")
    var verifyCache = false

    /// The artifact store over `service`, its cache under `cacheDirectory`.
    func openStore(_ service: LineageService, cacheDirectory: URL, remote: String? = nil, logger: Logger) throws -> ArtifactStore {
        var budget: Int64?
        if let cacheBudget {
            guard let bytes = Self.bytes(cacheBudget) else {
                throw ValidationError("--cache-budget: '\(cacheBudget)' is not a size such as 500M or 20G")
            }
            budget = bytes
        }
        let cache = try ObjectCache(
            root: cacheDirectory, budget: budget, maxConcurrentDownloads: jobs, verify: verifyCache, logger: logger)
        return ArtifactStore(lineage: service, cache: cache, remoteOverride: remote, logger: logger)
    }

    /// `123`, `500K`, `500M`, `20G`, `1T` (powers of 1024).
    static func bytes(_ text: String) -> Int64? {
        let units: [Character: Int64] = ["K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40]
        let upper = text.uppercased().replacingOccurrences(of: "IB", with: "").replacingOccurrences(of: "B", with: "")
        if let unit = upper.last, let scale = units[unit], let value = Double(upper.dropLast()), value >= 0 { return Int64(value * Double(scale)) }
        return Int64(upper).flatMap { $0 >= 0 ? $0 : nil }
    }
}

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Serve GraphQL, GraphiQL and health checks over HTTP.")

    @OptionGroup var stack: InferenceStackOptions

    @Option(help: "Address to listen on.")
    var host = "127.0.0.1"

    @Option(help: "Port to listen on (default: $PEDIGREE_PORT or 8080).")
    var port: Int?

    @Option(help: "A revision spec to load on start (repeat for several).")
    var preload: [String] = []

    func run() async throws {
        var logger = Logger(label: "pedigree")
        logger.logLevel = .info
        let inferenceService = try await stack.open(logger: logger)
        let models = inferenceService.models
        let service = models.artifacts.lineage
        let port = port ?? ProcessInfo.processInfo.environment["PEDIGREE_PORT"].flatMap(Int.init) ?? 8080
        logger.info(
            "serving repository", metadata: ["source": "\(service.repository.source ?? "")", "models": "\((try? service.models().count) ?? 0)"])
        let app = try buildApplication(inference: inferenceService, configuration: ServerConfiguration(host: host, port: port), logger: logger)
        let sweeper = Task { await models.sweepIdleModels() }
        defer { sweeper.cancel() }
        let ledger = stack.ledger
        let retention = Task {
            guard let store = inferenceService.ledger, ledger.ledgerRetentionDays != nil || ledger.ledgerMaxRows != nil else { return }
            while !Task.isCancelled {
                do {
                    let removed = try await store.applyRetention(
                        maxAge: ledger.ledgerRetentionDays.map { .seconds($0 * 86_400) }, maxRows: ledger.ledgerMaxRows)
                    if removed > 0 { logger.info("ledger retention", metadata: ["removed": "\(removed)"]) }
                } catch {
                    logger.warning("ledger retention failed", metadata: ["error": "\(error)"])
                }
                try? await Task.sleep(for: .seconds(3600))
            }
        }
        defer { retention.cancel() }
        for spec in preload {
            Task {
                do {
                    try await models.load(try service.lineage(spec))
                } catch {
                    logger.error("preload failed", metadata: ["spec": "\(spec)", "error": "\(ErrorCode.classify(error).message)"])
                }
            }
        }
        try await app.runService()
    }
}

struct Models: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List the models on the default branch.")

    @OptionGroup var repository: RepositoryOptions

    @Flag(help: "Print JSON.")
    var json = false

    func run() async throws {
        let service = try repository.openService(logger: Logger(label: "pedigree"))
        let models = try orExit { try service.models() }
        if json {
            print(try encodeJSON(models))
            return
        }
        let registry = try orExit { try service.registry() }
        for model in models {
            let versions = registry.versions(of: model.name).map(\.name)
            let stages = registry.stages(of: model.name)
            print("\(model.name)\t\(model.path)\tversions: \(versions.joined(separator: ","))\tstages: \(stages.joined(separator: ","))")
        }
    }
}

struct LineageCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lineage", abstract: "Show where a model revision came from.")

    @Argument(help: "A revision spec: name@sha, name@branch, name@v1.2.0, name#stage, name, or a bare SHA.")
    var spec: String

    @OptionGroup var repository: RepositoryOptions

    @Flag(help: "Print JSON.")
    var json = false

    func run() async throws {
        let service = try repository.openService(logger: Logger(label: "pedigree"))
        let lineage = try orExit { try service.lineage(spec) }
        if json {
            print(try encodeJSON(lineage))
            return
        }
        print("\(lineage.id)")
        print("commit    \(lineage.commit.sha)  \(lineage.commit.author.name) <\(lineage.commit.author.email)>  \(lineage.commit.author.iso8601)")
        print("          \(lineage.commit.message.split(separator: "\n").first ?? "")")
        print("artifact  \(lineage.artifact.path)  md5 \(lineage.artifact.md5)  \(lineage.artifact.size) bytes")
        if lineage.pipeline.isEmpty { print("pipeline  (tracked by a .dvc file)") }
        for stage in lineage.pipeline { print("stage     \(stage.name): \(stage.cmd)") }
        for dataset in lineage.datasets {
            let origin = dataset.source.map { "  imported from \($0.url) \($0.path)@\(($0.rev ?? "").prefix(12))" } ?? ""
            print("dataset   \(dataset.path)  md5 \(dataset.md5)  \(dataset.size) bytes  commit \(dataset.commit?.sha.prefix(12) ?? "-")\(origin)")
        }
        for parameter in lineage.parameters { print("param     \(parameter.file):\(parameter.key) = \(parameter.value)") }
        for code in lineage.code { print("code      \(code.path)  md5 \(code.md5)") }
    }
}

struct Pull: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Fetch model revisions' artifacts from their DVC remote into the cache; print each cached file's path, in order.")

    @Argument(help: "Revision specs: name@sha, name@branch, name@v1.2.0, name#stage, name, or a bare SHA. Several are pulled together.")
    var specs: [String]

    @OptionGroup var repository: RepositoryOptions

    @OptionGroup var artifacts: ArtifactOptions

    @Option(help: "Fetch from this DVC remote instead of the one the repository names.")
    var remote: String?

    func run() async throws {
        var logger = Logger(label: "pedigree")
        logger.logLevel = .warning
        let service = try repository.openService(logger: logger)
        let store = try artifacts.openStore(service, cacheDirectory: repository.cacheDirectory, remote: remote, logger: logger)
        let progress = specs.map { TransferProgress(label: $0) }
        let reporter = Task { await ProgressReporter(progress: progress).run() }
        let results = await withTaskGroup(of: (Int, Result<ArtifactStore.Pulled, any Error>).self) { group in
            for (index, spec) in specs.enumerated() {
                group.addTask {
                    do {
                        return (index, .success(try await store.pull(spec, progress: progress[index])))
                    } catch {
                        return (index, .failure(error))
                    }
                }
            }
            var results: [Int: Result<ArtifactStore.Pulled, any Error>] = [:]
            for await (index, result) in group { results[index] = result }
            return results.sorted { $0.key < $1.key }.map(\.value)
        }
        reporter.cancel()
        _ = await reporter.result
        for result in results {
            let pulled = try orExit { try result.get() }
            FileHandle.standardError.write(
                Data("pulled \(pulled.revision.id): \(pulled.downloadedObjects) objects, \(pulled.downloadedBytes) bytes downloaded\n".utf8))
            print(pulled.path)
        }
    }
}

struct Infer: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Generate with a model revision; tokens stream to standard output as they come.")

    @Argument(help: "A revision spec: name@sha, name@branch, name@v1.2.0, name#stage, name, or a bare SHA.")
    var spec: String

    @Option(help: "Raw text to complete.")
    var prompt: String?

    @Option(help: "A user message, rendered with the model's chat template (instead of --prompt).")
    var message: String?

    @Option(help: "Seed of the random draw (random when not given; printed at the end).")
    var seed: UInt32?

    @Option(help: "0 is greedy.")
    var temperature = 0.8

    @Option(help: "Tokens to generate at most.")
    var maxTokens = 128

    @Option(help: "Stop when this text appears (repeatable).")
    var stop: [String] = []

    @Flag(help: "Print one JSON object (text, tokens, lineage id, seed, timings) instead of streaming.")
    var json = false

    @OptionGroup var stack: InferenceStackOptions

    func run() async throws {
        var logger = Logger(label: "pedigree")
        logger.logLevel = .warning
        let inferenceService = try await stack.open(logger: logger)
        let input: GenerationRequest.Input
        switch (prompt, message) {
        case (let prompt?, nil): input = .prompt(prompt)
        case (nil, let message?): input = .messages([ChatMessage(role: "user", content: message)])
        default: throw ValidationError("give exactly one of --prompt and --message")
        }
        let sampling = SamplingParameters(temperature: temperature, seed: seed, maxTokens: maxTokens, stop: stop)
        var answer: InferenceAnswer?
        do {
            for try await event in try await inferenceService.start(GenerationRequest(input: input, sampling: sampling), spec: spec, caller: nil) {
                switch event {
                case .token(let text) where !json:
                    FileHandle.standardOutput.write(Data(text.utf8))
                case .token: break
                case .payload(let done): answer = done
                }
            }
        } catch {
            _ = try orExit { () throws -> Int in throw error }
        }
        guard let answer else { throw ExitCode(1) }
        let summary = answer.summary
        if json {
            print(try encodeJSON(InferOutput(id: answer.id, revision: answer.revision.id, summary: summary)))
        } else {
            FileHandle.standardError.write(
                Data(
                    "\n[\(answer.id) \(answer.revision.id) seed \(summary.seed), \(summary.completionTokens.count) tokens, \(summary.finishReason), \(String(format: "%.1f", summary.tokensPerSecond)) tokens/s]\n"
                        .utf8))
        }
    }

    /// The `--json` answer.
    struct InferOutput: Encodable {
        /// The ledger id.
        let id: String
        let revision: String
        let summary: GenerationSummary
    }
}

struct Replay: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a recorded inference again (its revision, weights, input and sampling) and say whether the output is identical.")

    @Argument(help: "The inference id (InferencePayload.id, `pedigree infer` prints it).")
    var id: String

    @Flag(help: "Print JSON.")
    var json = false

    @OptionGroup var stack: InferenceStackOptions

    func run() async throws {
        var logger = Logger(label: "pedigree")
        logger.logLevel = .warning
        let inferenceService = try await stack.open(logger: logger)
        let outcome: InferenceService.Replay
        do {
            outcome = try await inferenceService.replay(id: id, caller: "replay")
        } catch {
            _ = try orExit { () throws -> Int in throw error }
            throw ExitCode(1)
        }
        if json {
            print(
                try encodeJSON(
                    ReplayOutput(
                        original: outcome.original.id, replay: outcome.replay.id, revision: outcome.original.revision,
                        identical: outcome.identical, firstDifference: outcome.firstDifference, output: outcome.replay.summary.text)))
        } else {
            print(outcome.replay.summary.text)
            let verdict = outcome.identical ? "identical" : "differs from token \(outcome.firstDifference ?? 0)"
            FileHandle.standardError.write(
                Data("[replay \(outcome.replay.id) of \(outcome.original.id) on \(outcome.original.revision): \(verdict)]\n".utf8))
        }
        if !outcome.identical { throw ExitCode(3) }
    }

    struct ReplayOutput: Encodable {
        let original: String
        let replay: String
        let revision: String
        let identical: Bool
        let firstDifference: Int?
        let output: String
    }
}

struct LedgerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ledger", abstract: "Work with the inference ledger.", subcommands: [Export.self])

    struct Export: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print recorded inferences as JSON lines, oldest first (for audits).")

        @Option(help: "From this ISO-8601 time (inclusive).")
        var since: String?

        @Option(help: "Until this ISO-8601 time (exclusive).")
        var until: String?

        @Option(help: "Output format (jsonl).")
        var format = "jsonl"

        @Option(help: "Cache folder holding ledger.sqlite. Default: $PEDIGREE_CACHE or ~/.cache/pedigree.")
        var cache: String?

        @OptionGroup var ledger: LedgerOptions

        func run() async throws {
            guard format == "jsonl" else { throw ValidationError("--format: jsonl") }
            func date(_ text: String?, _ name: String) throws -> Date? {
                guard let text else { return nil }
                guard let parsed = ISO8601DateFormatter().date(from: text) else {
                    throw ValidationError("\(name): an ISO-8601 time such as 2026-11-25T10:00:00Z")
                }
                return parsed
            }
            let folder = RepositoryOptions.defaultCacheDirectory(cache)
            guard let store = try await ledger.open(cacheDirectory: folder) else { throw ValidationError("the ledger is off") }
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            encoder.dateEncodingStrategy = .iso8601
            try await store.export(since: try date(since, "--since"), until: try date(until, "--until"), batch: 500) { records in
                var lines = Data()
                for record in records {
                    lines.append(try encoder.encode(record))
                    lines.append(10)
                }
                FileHandle.standardOutput.write(lines)
            }
        }
    }
}

/// Prints the progress of pulls to standard error: a redrawn bar on a terminal (bytes, rate,
/// ETA), a plain line every few seconds otherwise.
struct ProgressReporter {
    let progress: [TransferProgress]
    let isTerminal = isatty(2) == 1

    func run() async {
        let start = ContinuousClock.now
        var lastLine = start
        while !Task.isCancelled {
            try? await Task.sleep(for: .milliseconds(200))
            let now = ContinuousClock.now
            let received = progress.reduce(0) { $0 + $1.receivedBytes }
            let expected = progress.reduce(0) { $0 + $1.expectedBytes }
            let seconds = max(0.001, (now - start) / .seconds(1))
            let rate = Double(received) / seconds
            if isTerminal {
                let fraction = expected > 0 ? min(1, Double(received) / Double(expected)) : 0
                let filled = Int(fraction * 30)
                let eta = rate > 0 && expected > received ? "\(Int(Double(expected - received) / rate))s" : "-"
                let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: 30 - filled)
                FileHandle.standardError.write(
                    Data("\r[\(bar)] \(Self.size(received)) / \(Self.size(expected))  \(Self.size(Int64(rate)))/s  ETA \(eta)   ".utf8))
            } else if now - lastLine >= .seconds(2) {
                lastLine = now
                FileHandle.standardError.write(Data("pull: \(received) of \(expected) bytes (\(Self.size(Int64(rate)))/s)\n".utf8))
            }
        }
        if isTerminal { FileHandle.standardError.write(Data("\n".utf8)) }
    }

    static func size(_ bytes: Int64) -> String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB"]
        var value = Double(bytes)
        var unit = 0
        while value >= 1024, unit < units.count - 1 {
            value /= 1024
            unit += 1
        }
        return unit == 0 ? "\(bytes) B" : String(format: "%.1f", value) + " " + units[unit]
    }
}

/// Prints a service error with its code and exits non-zero, instead of a stack of Swift types.
func orExit<T>(_ body: () throws -> T) throws -> T {
    do {
        return try body()
    } catch {
        let (code, message) = ErrorCode.classify(error)
        FileHandle.standardError.write(Data("error: \(code.rawValue): \(message)\n".utf8))
        throw ExitCode(code == .internalError ? 70 : 1)
    }
}

func encodeJSON(_ value: some Encodable) throws -> String {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    encoder.dateEncodingStrategy = .iso8601
    return String(decoding: try encoder.encode(value), as: UTF8.self)
}

struct Schema: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print the GraphQL schema (SDL), as in schema.graphql.")

    func run() async throws {
        print(printSchema(schema: try SchemaBuilder.build()))
    }
}
