import API
import ArgumentParser
import Foundation
import GitStore
import Hummingbird
import Lineage
import Logging

import func GraphQL.printSchema

/// The `pedigree` command: a thin layer that opens the repository and hands it to the modules.
@main
struct Pedigree: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "A reproducible model-serving gateway over a Git + DVC repository.",
        subcommands: [Serve.self, Models.self, LineageCommand.self, Schema.self]
    )
}

/// Options every command that reads the repository shares.
struct RepositoryOptions: ParsableArguments {
    @Option(help: "The Git + DVC repository: a local path or a URL.")
    var repo: String

    @Option(help: "Cache folder (repository mirror, artifacts). Default: $PEDIGREE_CACHE or ~/.cache/pedigree.")
    var cache: String?

    var cacheDirectory: URL {
        if let cache { return URL(fileURLWithPath: cache) }
        if let env = ProcessInfo.processInfo.environment["PEDIGREE_CACHE"] { return URL(fileURLWithPath: env) }
        let base =
            ProcessInfo.processInfo.environment["XDG_CACHE_HOME"].map { URL(fileURLWithPath: $0) }
            ?? FileManager.default.homeDirectoryForCurrentUser.appendingPathComponent(".cache")
        return base.appendingPathComponent("pedigree")
    }

    /// Mirrors (or reopens) the repository and fetches it, so commands see the source's newest state.
    func openService(logger: Logger, fetch: Bool = true) throws -> LineageService {
        let source = FileManager.default.fileExists(atPath: repo) ? URL(fileURLWithPath: repo).standardizedFileURL.path : repo
        let repository = try GitRepository.mirror(source: source, into: cacheDirectory.appendingPathComponent("git"))
        if fetch { try repository.fetch() }
        return LineageService(repository: repository, logger: logger)
    }
}

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Serve GraphQL, GraphiQL and health checks over HTTP.")

    @OptionGroup var repository: RepositoryOptions

    @Option(help: "Address to listen on.")
    var host = "127.0.0.1"

    @Option(help: "Port to listen on (default: $PEDIGREE_PORT or 8080).")
    var port: Int?

    func run() async throws {
        var logger = Logger(label: "pedigree")
        logger.logLevel = .info
        let service = try repository.openService(logger: logger)
        let port = port ?? ProcessInfo.processInfo.environment["PEDIGREE_PORT"].flatMap(Int.init) ?? 8080
        logger.info("serving repository", metadata: ["source": "\(repository.repo)", "models": "\((try? service.models().count) ?? 0)"])
        let app = try buildApplication(service: service, configuration: ServerConfiguration(host: host, port: port), logger: logger)
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
