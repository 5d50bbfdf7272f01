public import Foundation

/// `.dvc/config` merged with `.dvc/config.local`: the default remote and each remote's options.
public struct DVCConfig: Sendable, Equatable {
    /// `core.remote`: the remote used when an out names none.
    public var defaultRemote: String?
    /// Options by remote name (`url`, `endpointurl`, `region`, …), keys lower-cased.
    public var remotes: [String: [String: String]]
    /// The `[core]` section.
    public var core: [String: String]
    /// By remote, the options `.dvc/config.local` set: the operator's own file, as opposed to the
    /// committed `.dvc/config` anyone with push access to the repository writes.
    public var localOptions: [String: Set<String>] = [:]

    public init(defaultRemote: String? = nil, remotes: [String: [String: String]] = [:], core: [String: String] = [:]) {
        self.defaultRemote = defaultRemote
        self.remotes = remotes
        self.core = core
    }

    /// Whether option `key` of remote `name` comes from `.dvc/config.local`.
    public func isLocal(_ key: String, of name: String) -> Bool { localOptions[name]?.contains(key) ?? false }

    /// Parses configobj text (`[core]`, `['remote "name"']`, `key = value`); `local` overrides `base`.
    public init(config: Data?, local: Data? = nil) throws {
        self.init()
        for (file, data) in [(".dvc/config", config), (".dvc/config.local", local)] {
            guard let data else { continue }
            guard let text = String(data: data, encoding: .utf8) else { throw DVCError(.malformed, file: file, "not UTF-8 text") }
            var section = ""
            for rawLine in text.split(whereSeparator: \.isNewline) {
                let line = rawLine.trimmingCharacters(in: .whitespaces)
                if line.isEmpty || line.hasPrefix("#") || line.hasPrefix(";") { continue }
                if line.hasPrefix("[") {
                    guard line.hasSuffix("]") else { throw DVCError(.malformed, file: file, "bad section header '\(line)'") }
                    section = String(line.dropFirst().dropLast()).trimmingCharacters(in: .whitespaces)
                    // configobj quotes names with spaces: ['remote "storage"'].
                    if section.count >= 2, let quote = section.first, quote == section.last, quote == "'" || quote == "\"" {
                        section = String(section.dropFirst().dropLast())
                    }
                    continue
                }
                guard let equals = line.firstIndex(of: "=") else { throw DVCError(.malformed, file: file, "expected key = value") }
                let key = line[..<equals].trimmingCharacters(in: .whitespaces).lowercased()
                var value = line[line.index(after: equals)...].trimmingCharacters(in: .whitespaces)
                if value.count >= 2, let first = value.first, first == value.last, first == "'" || first == "\"" {
                    value = String(value.dropFirst().dropLast())
                }
                if section == "core" {
                    core[key] = value
                    if key == "remote" { defaultRemote = value }
                } else if section.hasPrefix("remote \""), section.hasSuffix("\"") {
                    let name = String(section.dropFirst("remote \"".count).dropLast())
                    remotes[name, default: [:]][key] = value
                    if file == ".dvc/config.local" { localOptions[name, default: []].insert(key) }
                }
            }
        }
    }
}
