public import Foundation

/// `dvc.lock` (schema 2.0): what each stage last ran with and produced.
public struct LockFile: Sendable {
    public let path: String
    /// Locked stages by name (`train`, or `train@key` for `foreach`/`matrix` stages).
    public let stages: [String: LockedStage]

    /// Parses a lock file. `wdirs` gives each stage's working folder (from `dvc.yaml`, since the
    /// lock does not record it) so entry paths become repository-relative.
    public init(path: String, data: Data, wdirs: [String: String] = [:], limits: ParseLimits = .default) throws {
        self.path = path
        let root = try YAMLLoader.load(data, file: path, limits: limits)
        if case .null = root {
            stages = [:]
            return
        }
        if let schema = root["schema"]?.string, !schema.hasPrefix("2.") {
            throw DVCError(.malformed, file: path, "unsupported dvc.lock schema '\(schema)' (2.0 expected)")
        }
        guard let stageMap = root["stages"]?.mapping else {
            throw DVCError(.malformed, file: path, "no 'stages' mapping (is this a DVC 1 lock file?)")
        }
        let folder = RepoPath.directory(of: path)
        var stages: [String: LockedStage] = [:]
        for (name, body) in stageMap {
            let base = wdirs[name] ?? folder
            var deps: [DVCEntry] = []
            for dep in body["deps"]?.sequence ?? [] { deps.append(try DVCEntry.parse(dep, base: base, file: path)) }
            var outs: [DVCEntry] = []
            for out in body["outs"]?.sequence ?? [] { outs.append(try DVCEntry.parse(out, base: base, file: path)) }
            var params: [String: [(key: String, value: YAMLValue)]] = [:]
            for (file, values) in body["params"]?.mapping ?? [] {
                let resolved = try RepoPath.resolve(file, in: base, file: path)
                params[resolved] = values.mapping ?? []
            }
            stages[name] = LockedStage(name: name, cmd: LockedStage.command(body["cmd"]), deps: deps, outs: outs, params: params)
        }
        self.stages = stages
    }
}

/// One stage as `dvc.lock` recorded it.
public struct LockedStage: Sendable {
    public let name: String
    public let cmd: String
    public let deps: [DVCEntry]
    public let outs: [DVCEntry]
    /// Locked parameter values by repository-relative params file, keys as the stage named them.
    public let params: [String: [(key: String, value: YAMLValue)]]

    static func command(_ value: YAMLValue?) -> String {
        switch value {
        case .scalar(let text, _): return text
        case .sequence(let items): return items.compactMap(\.string).joined(separator: "\n")
        default: return ""
        }
    }
}
