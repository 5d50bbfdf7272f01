public import Foundation

/// A `dvc.yaml`: pipeline stages (after `vars`/`foreach`/`matrix` templating) and artifacts.
public struct PipelineFile: Sendable {
    /// The `dvc.yaml`'s repository path.
    public let path: String
    /// Stages in file order; `foreach`/`matrix` stages expanded to `name@key`.
    public let stages: [StageDefinition]
    /// Top-level `artifacts:` in file order.
    public let artifacts: [ArtifactDefinition]

    /// Parses a pipeline file. `readFile` loads `vars` files and the default `params.yaml`
    /// (repository-relative path in, nil when absent).
    public init(
        path: String, data: Data, limits: ParseLimits = .default,
        readFile: (String) throws -> Data? = { _ in nil }
    ) throws {
        self.path = path
        let root = try YAMLLoader.load(data, file: path, limits: limits)
        guard case .mapping = root else { throw DVCError(.malformed, file: path, "expected a mapping with 'stages'") }
        let folder = RepoPath.directory(of: path)
        var context = try Self.loadVars(root["vars"], folder: folder, file: path, limits: limits, readFile: readFile, includeDefault: true)
        var stages: [StageDefinition] = []
        for (name, body) in root["stages"]?.mapping ?? [] {
            for (expandedName, stageBody) in try Template.expand(name: name, body: body, context: context, file: path) {
                stages.append(try StageDefinition(name: expandedName, body: stageBody, folder: folder, file: path))
            }
        }
        var artifacts: [ArtifactDefinition] = []
        for (name, body) in root["artifacts"]?.mapping ?? [] {
            let resolvedBody = try Template.interpolate(body, context: &context, file: path)
            guard let artifactPath = resolvedBody["path"]?.string else {
                throw DVCError(.malformed, file: path, "artifact '\(name)' has no path")
            }
            artifacts.append(
                ArtifactDefinition(
                    name: name,
                    path: try RepoPath.resolve(artifactPath, in: folder, file: path),
                    type: resolvedBody["type"]?.string,
                    description: resolvedBody["desc"]?.string,
                    labels: resolvedBody["labels"]?.sequence?.compactMap(\.string) ?? []
                )
            )
        }
        self.stages = stages
        self.artifacts = artifacts
    }

    /// Merges the `vars` entries (file names, `file:key1,key2`, or inline mappings) into one
    /// templating context; DVC also loads the folder's `params.yaml` by default.
    static func loadVars(
        _ vars: YAMLValue?, folder: String, file: String, limits: ParseLimits,
        readFile: (String) throws -> Data?, includeDefault: Bool
    ) throws -> YAMLValue {
        var merged: [(key: String, value: YAMLValue)] = []
        func merge(_ value: YAMLValue) {
            for pair in value.mapping ?? [] {
                if let index = merged.firstIndex(where: { $0.key == pair.key }) { merged[index] = pair } else { merged.append(pair) }
            }
        }
        func load(_ name: String, keys: [String]?) throws {
            let resolved = try RepoPath.resolve(name, in: folder, file: file)
            let data: Data?
            do { data = try readFile(resolved) } catch { throw DVCError(.missing, file: file, "cannot read vars file \(resolved)") }
            guard let data else {
                if includeDefault && name == "params.yaml" && keys == nil { return }
                throw DVCError(.missing, file: file, "vars file \(resolved) does not exist")
            }
            let params = try ParamsFile(path: resolved, data: data, limits: limits)
            if let keys {
                merge(.mapping(keys.compactMap { key in params.value(at: key).map { (key, $0) } }))
            } else {
                merge(params.root)
            }
        }
        if includeDefault { try load("params.yaml", keys: nil) }
        for entry in vars?.sequence ?? [] {
            switch entry {
            case .scalar(let text, _):
                let parts = text.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
                guard let name = parts.first, !name.isEmpty else {
                    throw DVCError(.malformed, file: file, "a 'vars' entry must name a file ('params.yaml' or 'params.yaml:key')")
                }
                let keys = parts.count > 1 ? parts[1].split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) } : nil
                try load(name, keys: keys)
            case .mapping: merge(entry)
            default: throw DVCError(.malformed, file: file, "'vars' entries must be file names or mappings")
            }
        }
        return .mapping(merged)
    }
}

/// A `dvc.yaml` artifact declaration (what GTO and model discovery read).
public struct ArtifactDefinition: Sendable, Hashable {
    public let name: String
    /// Repository-relative path.
    public let path: String
    /// `model`, `dataset`, …
    public let type: String?
    public let description: String?
    public let labels: [String]
}

/// A parameter a stage depends on: a dotted key in a params file (empty key: the whole file).
public struct ParamReference: Sendable, Hashable {
    /// Repository-relative params file.
    public let file: String
    public let key: String
}

/// An output a stage declares (in `outs`, `metrics` or `plots`).
public struct OutDefinition: Sendable, Hashable {
    public let path: String
    public let cache: Bool
    public let remote: String?
    public let push: Bool
}

/// One pipeline stage as `dvc.yaml` declares it, templating applied, paths repository-relative.
public struct StageDefinition: Sendable {
    public let name: String
    public let cmd: String
    /// The stage's working folder (repository-relative).
    public let wdir: String
    public let deps: [String]
    public let params: [ParamReference]
    public let outs: [OutDefinition]
    public let frozen: Bool

    init(name: String, body: YAMLValue, folder: String, file: String) throws {
        guard case .mapping = body else { throw DVCError(.malformed, file: file, "stage '\(name)' is not a mapping") }
        self.name = name
        guard let cmd = body["cmd"], cmd != .null else { throw DVCError(.malformed, file: file, "stage '\(name)' has no cmd") }
        self.cmd = LockedStage.command(cmd)
        let wdir = try RepoPath.resolve(body["wdir"]?.string ?? ".", in: folder, file: file)
        self.wdir = wdir
        var deps: [String] = []
        for dep in body["deps"]?.sequence ?? [] {
            guard let text = dep.string else { throw DVCError(.malformed, file: file, "stage '\(name)': deps must be paths") }
            deps.append(try RepoPath.resolve(text, in: wdir, file: file))
        }
        self.deps = deps
        var params: [ParamReference] = []
        let defaultParams = try RepoPath.resolve("params.yaml", in: wdir, file: file)
        for entry in body["params"]?.sequence ?? [] {
            switch entry {
            case .scalar(let key, _):
                params.append(ParamReference(file: defaultParams, key: key))
            case .mapping(let pairs):
                for (paramsFile, keys) in pairs {
                    let resolved = try RepoPath.resolve(paramsFile, in: wdir, file: file)
                    let list = keys.sequence?.compactMap(\.string) ?? []
                    if list.isEmpty { params.append(ParamReference(file: resolved, key: "")) }
                    for key in list { params.append(ParamReference(file: resolved, key: key)) }
                }
            default:
                throw DVCError(.malformed, file: file, "stage '\(name)': params must be keys or {file: [keys]}")
            }
        }
        self.params = params
        var outs: [OutDefinition] = []
        for section in ["outs", "metrics", "plots"] {
            for entry in body[section]?.sequence ?? [] {
                switch entry {
                case .scalar(let text, _):
                    outs.append(
                        OutDefinition(path: try RepoPath.resolve(text, in: wdir, file: file), cache: section == "outs", remote: nil, push: true))
                case .mapping(let pairs) where pairs.count == 1:
                    let options = pairs[0].value
                    outs.append(
                        OutDefinition(
                            path: try RepoPath.resolve(pairs[0].key, in: wdir, file: file),
                            cache: options["cache"]?.bool ?? (section == "outs"),
                            remote: options["remote"]?.string,
                            push: options["push"]?.bool ?? true
                        )
                    )
                default:
                    throw DVCError(.malformed, file: file, "stage '\(name)': \(section) entries must be paths or {path: options}")
                }
            }
        }
        self.outs = outs
        self.frozen = body["frozen"]?.bool ?? false
    }
}
