import DVCKit
import Foundation
import GitStore
import GraphQL
import GraphQLLimits
import Inference
import Lineage

/// One parser that input from outside reaches, fed arbitrary bytes. An error is the expected
/// answer to most inputs; a trap, an overflow or a memory error is a bug (libFuzzer and
/// AddressSanitizer report it, and the input becomes a regression case in `Fuzz/corpus/`).
enum FuzzTarget: String, CaseIterable, Sendable {
    case revisionSpec = "revision-spec"
    case dvcFile = "dvc-file"
    case dvcYAML = "dvc-yaml"
    case dvcLock = "dvc-lock"
    case params
    case dvcConfig = "dvc-config"
    case dirManifest = "dir-manifest"
    case ggufHeader = "gguf-header"
    case graphqlRequest = "graphql-request"
    case gtoTags = "gto-tags"
    case lfsPointer = "lfs-pointer"

    func run(_ data: Data) {
        switch self {
        case .revisionSpec:
            let text = String(decoding: data, as: UTF8.self)
            _ = try? RevisionSpec(parsing: text)
            _ = RevisionSpec.isSemver(text)
        case .dvcFile:
            _ = try? DVCFile(path: "models/m/model.gguf.dvc", data: data)
        case .dvcYAML:
            // `vars` files and params read while templating come from the same input.
            _ = try? PipelineFile(path: "dvc.yaml", data: data) { _ in data }
        case .dvcLock:
            _ = try? LockFile(path: "dvc.lock", data: data, wdirs: ["train": "sub"])
        case .params:
            // The first byte picks the format, the rest is the file.
            let formats = ["params.yaml", "params.json", "params.toml"]
            let path = formats[Int(data.first ?? 0) % formats.count]
            if let file = try? ParamsFile(path: path, data: data.dropFirst()) {
                _ = file.flattened.map(\.value.yamlText)
                _ = file.value(at: "train.lr")
            }
        case .dvcConfig:
            let half = data.count / 2
            _ = try? DVCConfig(config: data.prefix(half), local: data.dropFirst(half))
        case .dirManifest:
            _ = try? DirectoryManifest(data: data, object: "0123456789abcdef0123456789abcdef.dir")
        case .ggufHeader:
            _ = try? GGUFHeader(data)
        case .graphqlRequest:
            GraphQLFuzz.run(data)
        case .gtoTags:
            // One tag name per line, all on one commit.
            let names = String(decoding: data, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false)
            let tags = names.map { TagInfo(name: String($0), commit: String(repeating: "a", count: 40), tagger: nil, message: nil) }
            let registry = GTORegistry(tags: tags)
            for name in Set(tags.map { String($0.name.split(separator: "@").first ?? "") }) {
                _ = registry.versions(of: name)
                _ = registry.stages(of: name)
                _ = registry.stage("prod", of: name)
            }
        case .lfsPointer:
            // A committed file read as a Git LFS pointer, and as a .lfsconfig.
            _ = LFSPointer(data)
            _ = LFSPointer.endpoint(inConfig: data)
        }
    }
}

/// A GraphQL-over-HTTP body as the server reads it, through every check that runs before a
/// document executes: JSON decoding, the nesting scan, parsing, the cost limits, validation.
enum GraphQLFuzz {
    struct Body: Decodable {
        var query: String?
        var variables: [String: Map]?
        var operationName: String?
    }

    /// The schema from `schema.graphql` (the SDL the server builds; a test keeps them equal).
    static let schema: GraphQLSchema? = {
        let path = ProcessInfo.processInfo.environment["PEDIGREE_SCHEMA"] ?? "schema.graphql"
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return nil }
        return try? buildSchema(source: text)
    }()
    static let shapes: FieldShapes? = schema.flatMap { try? FieldShapes($0) }

    static func run(_ data: Data) {
        guard let schema, let shapes, let body = try? JSONDecoder().decode(Body.self, from: data), let query = body.query,
            query.utf8.count <= 100_000
        else { return }
        let limits = QueryLimits()
        guard (try? limits.checkText(query)) != nil,
            let document = try? parse(source: Source(body: query, name: "GraphQL request")),
            DuplicateDefinitions.problem(in: document) == nil,
            (try? QueryCost.check(
                document, operationName: body.operationName, variables: body.variables ?? [:], limits: limits, shapes: shapes)) != nil
        else { return }
        _ = validate(schema: schema, ast: document)
    }
}
