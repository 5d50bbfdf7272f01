import Access
public import Configuration
public import Foundation
import Inference
import Ledger
public import Logging
import SystemPackage
import Yams

/// A configuration that cannot be used: names the key and where the value came from. The
/// message never holds a credential: a password inside a URL is redacted, and a parser's error
/// is kept to its first line (the position and the problem, not the line of the file, which may
/// hold a secret).
public struct ConfigurationError: Error, Sendable, CustomStringConvertible {
    public let message: String
    public init(_ message: String) { self.message = Redaction.urlCredentials(in: message) }
    public var description: String { message }

    static func firstLine(of error: any Error) -> String {
        String(describing: error).split(separator: "\n", omittingEmptySubsequences: true).first.map(String.init) ?? "unreadable"
    }
}

/// The effective configuration of a command: the services' values, logging, and for every key
/// its value and where it came from (`config check` prints them).
public struct LoadedConfiguration: Sendable {
    public var serving: ServingConfiguration
    public var logFormat: LogFormat
    public var logLevel: Logger.Level
    /// Every key in table order: its value as given (or the default; nil: unset) and its source.
    public var entries: [Entry]

    public struct Entry: Sendable {
        public var key: ConfigurationKey
        public var value: [String]?
        public var source: Source
    }

    /// Where a key's value came from.
    public enum Source: Sendable, Equatable, CustomStringConvertible {
        case flag(String)
        case environment(String)
        case file(String)
        case `default`

        public var description: String {
            switch self {
            case .flag(let flag): "flag --\(flag)"
            case .environment(let name): "environment \(name)"
            case .file(let path): "file \(path)"
            case .default: "default"
            }
        }
    }

    /// `key: value  # source` lines, secrets redacted (and any password inside a URL).
    public func rendered() -> String {
        entries.map { entry in
            let shown: String
            if let value = entry.value?.joined(separator: ","), !value.isEmpty {
                shown = entry.key.secret ? Redaction.mark : Redaction.urlCredentials(in: value)
            } else {
                shown = "~"
            }
            return "\(entry.key.name): \(shown)  # \(entry.source)"
        }.joined(separator: "\n")
    }
}

/// Reads the configuration through swift-configuration's provider hierarchy: flags (parsed by
/// the command) > `PEDIGREE_*` environment variables > the YAML file (`--config`) > defaults.
/// Every key of the table (`ConfigurationKey.all`) is decoded straight into its typed setting
/// where it enters: an unknown key in the file, a value of the wrong shape or type, or one out of
/// range is an error naming the key and its source.
public enum ConfigurationLoader {
    /// - Parameters:
    ///   - flags: values given as flags, by key name (a repeated flag gives several).
    ///   - file: the YAML file, if any.
    ///   - requireRepo: whether a command needs the repository (an error when none can be found).
    public static func load(
        flags: [String: [String]], file: String?, environment: [String: String] = ProcessInfo.processInfo.environment,
        requireRepo: Bool = true
    ) async throws -> LoadedConfiguration {
        for name in flags.keys where ConfigurationKey.byName[name] == nil {
            throw ConfigurationError("unknown configuration key '\(name)'")
        }
        // nil: no file, or one with no keys at all (an empty file configures nothing).
        let fileKeys: Set<String>? = try file.flatMap { try checkFile($0) }
        var providers: [any ConfigProvider] = [
            InMemoryProvider(
                name: "flags",
                values: Dictionary(
                    uniqueKeysWithValues: flags.compactMap { name, values -> (AbsoluteConfigKey, ConfigValue)? in
                        guard let key = ConfigurationKey.byName[name] else { return nil }
                        let content: ConfigContent = key.kind == .list ? .stringArray(values) : .string(values.last ?? "")
                        return (AbsoluteConfigKey(ConfigKey(name)), ConfigValue(content, isSecret: key.secret))
                    })),
            EnvironmentVariablesProvider(environmentVariables: environment).prefixKeys(with: ConfigKey(["pedigree"])),
        ]
        if let file, fileKeys != nil {
            do {
                providers.append(try await FileProvider<YAMLSnapshot>(filePath: FilePath(file)))
            } catch {
                throw ConfigurationError("\(file): \(ConfigurationError.firstLine(of: error))")
            }
        }
        let reader = ConfigReader(providers: providers)

        var settings = ConfigurationSettings.defaults
        var entries: [LoadedConfiguration.Entry] = []
        for key in ConfigurationKey.all {
            let source: LoadedConfiguration.Source
            if flags[key.name] != nil {
                source = .flag(key.flag)
            } else if environment[key.environmentName] != nil {
                source = .environment(key.environmentName)
            } else if let file, fileKeys?.contains(key.name) == true {
                source = .file(file)
            } else {
                source = .default
            }
            let configKey = ConfigKey(key.name)
            let raw: [String]? =
                key.kind == .list
                ? reader.stringArray(forKey: configKey, isSecret: key.secret)
                : reader.string(forKey: configKey, isSecret: key.secret).map { [$0] }
            if let raw {
                do {
                    try key.write(&settings, raw)
                } catch let problem as ConfigurationProblem {
                    throw ConfigurationError("\(key.name): \(problem.message) (from \(source))")
                } catch let error as ConfigurationError {
                    throw ConfigurationError("\(error.message) (from \(source))")
                }
            }
            entries.append(
                .init(key: key, value: raw.map { key.kind == .list ? $0.filter { !$0.isEmpty } : $0 } ?? key.read(settings), source: source))
        }

        let cache = settings.cache.map { URL(fileURLWithPath: $0) } ?? defaultCache(environment)
        var repo = settings.repo
        if repo == nil { repo = try? onlyMirror(in: cache) }
        if requireRepo, repo == nil {
            throw ConfigurationError("repo: name the repository (--repo, PEDIGREE_REPO or repo: in the file); \(mirrorsDescription(cache))")
        }
        // The repository and cache as found, where no source named them.
        for index in entries.indices where entries[index].value == nil {
            switch entries[index].key.name {
            case "repo": entries[index].value = repo.map { [$0] }
            case "cache": entries[index].value = [cache.path]
            default: break
            }
        }
        var serving = settings.serving
        serving.repo = repo ?? ""
        serving.cache = cache
        switch (settings.tlsCertificate, settings.tlsKey) {
        case (let certificate?, let key?): serving.tls = .init(certificate: certificate, key: key)
        case (nil, nil): serving.tls = nil
        default: throw ConfigurationError("tls-certificate and tls-key go together: set both, or neither")
        }
        return LoadedConfiguration(serving: serving, logFormat: settings.logFormat, logLevel: settings.logLevel, entries: entries)
    }

    /// The keys a YAML file sets (nested mappings as dotted names), nil when it holds no document;
    /// throws on an unknown key or a value of the wrong shape, naming the file and the key.
    static func checkFile(_ path: String) throws -> Set<String>? {
        guard let data = FileManager.default.contents(atPath: path) else { throw ConfigurationError("\(path): cannot read the configuration file") }
        let node: Node?
        do {
            node = try Yams.compose(yaml: String(decoding: data, as: UTF8.self))
        } catch {
            throw ConfigurationError("\(path): not valid YAML: \(ConfigurationError.firstLine(of: error))")
        }
        guard let node else { return nil }
        guard case .mapping(let mapping) = node else { throw ConfigurationError("\(path): the top level must be a mapping of keys to values") }
        var keys = Set<String>()
        func walk(_ mapping: Node.Mapping, prefix: String) throws {
            for (keyNode, value) in mapping {
                guard let name = keyNode.string else { throw ConfigurationError("\(path): a key is not text") }
                let full = prefix.isEmpty ? name : prefix + "." + name
                if case .mapping(let nested) = value, ConfigurationKey.byName[full] == nil {
                    try walk(nested, prefix: full)
                    continue
                }
                guard let key = ConfigurationKey.byName[full] else {
                    throw ConfigurationError("\(path): unknown key '\(full)' (known: \(ConfigurationKey.all.map(\.name).joined(separator: ", ")))")
                }
                switch value {
                case .scalar: break
                case .sequence where key.kind == .list: break
                default: throw ConfigurationError("\(path): \(full): expected a single value")
                }
                keys.insert(full)
            }
        }
        try walk(mapping, prefix: "")
        return keys
    }

    /// `$XDG_CACHE_HOME/pedigree` or `~/.cache/pedigree`.
    static func defaultCache(_ environment: [String: String]) -> URL {
        let base =
            environment["XDG_CACHE_HOME"].map { URL(fileURLWithPath: $0) }
            ?? FileManager.default.homeDirectoryForCurrentUser.appendingPathComponent(".cache")
        return base.appendingPathComponent("pedigree")
    }

    /// The sources of the repositories mirrored in `cache`.
    static func mirrors(in cache: URL) -> [String] {
        let folder = cache.appendingPathComponent("git")
        return ((try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []).sorted().compactMap { name -> String? in
            guard let config = try? String(contentsOfFile: folder.path + "/\(name)/config", encoding: .utf8) else { return nil }
            return config.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
                .first { $0.hasPrefix("url = ") }.map { String($0.dropFirst("url = ".count)) }
        }
    }

    /// The source of the only repository mirrored in `cache`.
    static func onlyMirror(in cache: URL) throws -> String {
        let sources = mirrors(in: cache)
        guard sources.count == 1, let only = sources.first else { throw ConfigurationError(mirrorsDescription(cache)) }
        return only
    }

    static func mirrorsDescription(_ cache: URL) -> String {
        let sources = mirrors(in: cache)
        return sources.isEmpty
            ? "none is mirrored in \(cache.path)"
            : "several are mirrored in \(cache.path): \(sources.map { Redaction.urlCredentials(in: $0) }.joined(separator: ", "))"
    }
}

/// Sizes as people write and read them.
public enum ByteSize {
    /// `512 B`, `13.8 MiB`: powers of 1024, one decimal (as `ModelMemory` writes them).
    public static func describe(_ bytes: Int64) -> String { ModelMemory.describe(bytes) }

    /// The size in the largest unit that divides it exactly (`256M`, `1536K`, `100`): what
    /// `parse` reads back to the same number.
    public static func exact(_ bytes: Int64) -> String {
        for (unit, shift) in [("T", 40), ("G", 30), ("M", 20), ("K", 10)] where bytes != 0 && bytes % (Int64(1) << shift) == 0 {
            return "\(bytes >> shift)\(unit)"
        }
        return String(bytes)
    }

    /// `123`, `500K`, `500M`, `20G`, `1T` (powers of 1024; `KiB`/`KB` spellings too); nil when
    /// not a size or too large.
    public static func parse(_ text: String) -> Int64? {
        let units: [Character: Double] = ["K": 0x1p10, "M": 0x1p20, "G": 0x1p30, "T": 0x1p40]
        let upper = text.uppercased().replacingOccurrences(of: "IB", with: "").replacingOccurrences(of: "B", with: "")
        if let unit = upper.last, let scale = units[unit], let value = Double(upper.dropLast()), value >= 0 {
            let bytes = value * scale
            return bytes < 0x1p62 ? Int64(bytes) : nil
        }
        return Int64(upper).flatMap { $0 >= 0 ? $0 : nil }
    }
}
