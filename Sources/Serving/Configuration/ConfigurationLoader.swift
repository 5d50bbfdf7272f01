import Access
public import Configuration
public import Foundation
import Inference
import Ledger
public import Logging
import SystemPackage
import Yams

/// A configuration that cannot be used: names the key and where the value came from.
public struct ConfigurationError: Error, Sendable, CustomStringConvertible {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// The effective configuration of a command: the services' values, logging, and for every key
/// its value and where it came from (`config check` prints them).
public struct LoadedConfiguration: Sendable {
    public var serving: ServingConfiguration
    public var logFormat: String
    public var logLevel: Logger.Level
    /// Every key in table order: its effective value as text (nil: unset) and its source.
    public var entries: [(key: ConfigurationKey, value: String?, source: String)]

    /// `key: value  # source` lines, secrets redacted (and any password inside a URL).
    public func rendered() -> String {
        entries.map { entry in
            let shown: String
            if let value = entry.value {
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
/// Every key is checked where it enters: an unknown key in the file, a value of the wrong shape
/// or type, or one out of range is an error naming the key and its source.
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
                throw ConfigurationError("\(file): \(error)")
            }
        }
        let reader = ConfigReader(providers: providers)

        var values = Values()
        var entries: [(key: ConfigurationKey, value: String?, source: String)] = []
        for key in ConfigurationKey.all {
            let source: String
            if flags[key.name] != nil {
                source = "flag --\(key.name)"
            } else if environment[key.environmentName] != nil {
                source = "environment \(key.environmentName)"
            } else if let file, fileKeys?.contains(key.name) == true {
                source = "file \(file)"
            } else {
                source = "default"
            }
            let configKey = ConfigKey(key.name)
            if key.kind == .list {
                let list = reader.stringArray(forKey: configKey, isSecret: key.secret)?.filter { !$0.isEmpty }
                values.lists[key.name] = list
                entries.append((key, list.map { $0.joined(separator: ",") }, source))
            } else {
                let text = reader.string(forKey: configKey, isSecret: key.secret)
                if let text { values.texts[key.name] = (text, source) }
                entries.append((key, text, source))
            }
        }

        let cache = try values.text(.cache).map { URL(fileURLWithPath: $0) } ?? defaultCache(environment)
        var repo = try values.text(.repo)
        if repo == nil { repo = try? onlyMirror(in: cache) }
        if requireRepo, repo == nil {
            throw ConfigurationError("repo: name the repository (--repo, PEDIGREE_REPO or repo: in the file); \(mirrorsDescription(cache))")
        }
        var serving = ServingConfiguration(repo: repo ?? "", cache: cache)
        if let host = try values.text(.host) { serving.host = host }
        if let port = try values.integer(.port) { serving.port = port }
        if let seconds = try values.seconds(.refreshInterval) { serving.refreshInterval = .seconds(seconds) }
        if let seconds = try values.seconds(.refreshTimeout) { serving.refreshTimeout = .seconds(seconds) }
        serving.webhookSecret = try values.text(.webhookSecret).flatMap { $0.isEmpty ? nil : $0 }
        if let seconds = try values.seconds(.drainTimeout) { serving.drainTimeout = .seconds(seconds) }
        if let seconds = try values.seconds(.websocketInitTimeout) { serving.websocketInitTimeout = .seconds(seconds) }
        if let value = try values.integer(.websocketMaxSubscriptions) { serving.websocketMaxSubscriptions = value }
        if let seconds = try values.seconds(.httpIdleTimeout) { serving.httpIdleTimeout = .seconds(seconds) }
        if let seconds = try values.seconds(.requestTimeout) { serving.requestTimeout = .seconds(seconds) }
        if let seconds = try values.seconds(.mutationTimeout) { serving.mutationTimeout = .seconds(seconds) }
        if let value = try values.integer(.maxGenerationsPerRequest) { serving.maxGenerationsPerRequest = value }
        if let value = try values.integer(.graphqlMaxDepth) { serving.graphqlMaxDepth = value }
        if let value = try values.integer(.graphqlMaxFields) { serving.graphqlMaxFields = value }
        if let value = try values.integer(.graphqlMaxCost) { serving.graphqlMaxCost = value }
        if let value = try values.boolean(.metrics) { serving.metrics = value }
        serving.otlpEndpoint = try values.text(.otlpEndpoint).flatMap { $0.isEmpty ? nil : $0 }
        serving.keysFile = try values.text(.keysFile).map { URL(fileURLWithPath: $0) }
        if let value = try values.boolean(.insecureNoAuth) { serving.insecureNoAuth = value }
        let tlsCertificate = try values.text(.tlsCertificate).flatMap { $0.isEmpty ? nil : $0 }
        let tlsKey = try values.text(.tlsKey).flatMap { $0.isEmpty ? nil : $0 }
        switch (tlsCertificate, tlsKey) {
        case (let certificate?, let key?): serving.tls = .init(certificate: certificate, key: key)
        case (nil, nil): serving.tls = nil
        default: throw ConfigurationError("tls-certificate and tls-key go together: set both, or neither")
        }
        serving.allowedOrigins = try (values.lists[ConfigurationKey.allowedOrigins.name] ?? []).map { origin in
            guard let normalized = OriginPolicy.normalize(origin) else {
                throw ConfigurationError("allowed-origins: '\(origin)' is not an origin such as https://app.example.com:8443")
            }
            return normalized
        }
        serving.keyLimits = QuotaLimits(
            requestsPerMinute: try values.integer(.keyRequestsPerMinute), tokensPerMinute: try values.integer(.keyTokensPerMinute),
            concurrentGenerations: try values.integer(.keyConcurrentGenerations))
        serving.graphiqlAssets = try values.text(.graphiqlAssets)
        serving.cacheBudget = try values.size(.cacheBudget)
        if let jobs = try values.integer(.jobs) { serving.jobs = jobs }
        if let verify = try values.boolean(.verifyCache) { serving.verifyCache = verify }
        serving.remote = try values.text(.remote)
        serving.remoteEndpoints = values.lists[ConfigurationKey.remoteEndpoints.name] ?? []
        serving.workerTokenFile = try values.text(.workerTokenFile)
        serving.dvcConfig = try values.text(.dvcConfig)
        serving.workers = values.lists[ConfigurationKey.workers.name] ?? []
        serving.workersDNS = try values.text(.workersDNS)
        if let dns = serving.workersDNS, WorkerPool.hostAndPort(dns) == nil {
            throw ConfigurationError("workers-dns: HOST:PORT (a DNS name and the workers' port), not '\(dns)'")
        }
        serving.externalBackends = try (values.lists[ConfigurationKey.externalBackends.name] ?? []).map(ExternalBackends.Declaration.init(parsing:))
        if let value = try values.integer(.slots) { serving.models.slots = value }
        if let value = try values.integer(.queue) { serving.models.queueLimit = value }
        if let value = try values.integer(.contextPerSlot) { serving.models.contextPerSlot = value }
        if let value = try values.integer(.maxModels) { serving.models.maxModels = value }
        serving.models.memoryBudget = try values.size(.memoryBudget).map { UInt64($0) }
        if let value = try values.integer(.maxTokensLimit) { serving.models.maxTokensLimit = value }
        if let value = try values.integer(.maxPromptBytes) { serving.models.maxPromptBytes = value }
        if let seconds = try values.seconds(.generationTimeout) { serving.models.generationTimeout = .seconds(seconds) }
        if let value = try values.seconds(.keepAlive) { serving.models.keepAlive = value > 0 ? .seconds(value) : nil }
        if let value = try values.integer(.threads) { serving.models.threads = value }
        if let value = try values.choice(.decodeMode) { serving.models.decodeMode = value == "mixed" ? .mixed : .invariant }
        if let value = try values.integer(.prefillChunk) { serving.models.prefillChunk = value }
        if let value = try values.boolean(.flashAttention) { serving.models.flashAttention = value }
        if let value = try values.size(.prefixCache) { serving.models.prefixCacheBytes = Int(clamping: value) }
        serving.preload = values.lists[ConfigurationKey.preload.name] ?? []
        serving.ledger = try values.text(.ledger)
        if let value = try values.choice(.ledgerFailure) { serving.ledgerFailure = value == "fail" ? .fail : .warn }
        serving.ledgerPasswordFile = try values.text(.ledgerPasswordFile)
        if let value = try values.choice(.ledgerText) { serving.ledgerStoreText = value == "store" }
        serving.ledgerSaltFile = try values.text(.ledgerSaltFile)
        if let value = try values.integer(.ledgerRetentionDays) { serving.ledgerRetentionDays = value }
        if let value = try values.integer(.ledgerMaxRows) { serving.ledgerMaxRows = value }
        let level = try values.choice(.logLevel).flatMap(Logger.Level.init(rawValue:)) ?? .info
        return LoadedConfiguration(serving: serving, logFormat: try values.choice(.logFormat) ?? "text", logLevel: level, entries: entries)
    }

    /// The keys a YAML file sets (nested mappings as dotted names), nil when it holds no document;
    /// throws on an unknown key or a value of the wrong shape, naming the file and the key.
    static func checkFile(_ path: String) throws -> Set<String>? {
        guard let data = FileManager.default.contents(atPath: path) else { throw ConfigurationError("\(path): cannot read the configuration file") }
        let node: Node?
        do {
            node = try Yams.compose(yaml: String(decoding: data, as: UTF8.self))
        } catch {
            throw ConfigurationError("\(path): not valid YAML: \(error)")
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

    /// Raw values by key, with their sources, parsed on demand with the key's checks.
    struct Values {
        var texts: [String: (text: String, source: String)] = [:]
        var lists: [String: [String]] = [:]

        func text(_ key: ConfigurationKey) throws -> String? { texts[key.name]?.text }

        private func fail(_ key: ConfigurationKey, _ problem: String) -> ConfigurationError {
            ConfigurationError("\(key.name): \(problem) (from \(texts[key.name]?.source ?? "default"))")
        }

        func integer(_ key: ConfigurationKey) throws -> Int? {
            guard let raw = texts[key.name]?.text.trimmingCharacters(in: .whitespaces) else { return nil }
            guard let value = Int(raw) else { throw fail(key, "'\(raw)' is not an integer") }
            if case .integer(let range) = key.kind, !range.contains(value) {
                throw fail(key, "\(value) is out of range \(range.lowerBound)...\(range.upperBound)")
            }
            return value
        }

        func seconds(_ key: ConfigurationKey) throws -> Int? {
            guard let raw = texts[key.name]?.text.trimmingCharacters(in: .whitespaces).lowercased() else { return nil }
            let units: [Character: Int] = ["s": 1, "m": 60, "h": 3600, "d": 86_400]
            let value: Int?
            if let unit = raw.last, let scale = units[unit], let number = Int(raw.dropLast()) {
                value = number.multipliedReportingOverflow(by: scale).overflow ? nil : number * scale
            } else {
                value = Int(raw)
            }
            guard let value else { throw fail(key, "'\(raw)' is not a duration such as 30, 30s, 5m or 2h") }
            if case .seconds(let range) = key.kind, !range.contains(value) {
                throw fail(key, "\(value) seconds is out of range \(range.lowerBound)...\(range.upperBound)")
            }
            return value
        }

        func size(_ key: ConfigurationKey) throws -> Int64? {
            guard let raw = texts[key.name]?.text.trimmingCharacters(in: .whitespaces) else { return nil }
            guard let bytes = ByteSize.parse(raw) else { throw fail(key, "'\(raw)' is not a size such as 500M or 20G") }
            return bytes
        }

        func boolean(_ key: ConfigurationKey) throws -> Bool? {
            guard let raw = texts[key.name]?.text.trimmingCharacters(in: .whitespaces).lowercased() else { return nil }
            switch raw {
            case "true", "yes", "1", "on": return true
            case "false", "no", "0", "off": return false
            default: throw fail(key, "'\(raw)' is not true or false")
            }
        }

        func choice(_ key: ConfigurationKey) throws -> String? {
            guard let raw = texts[key.name]?.text.trimmingCharacters(in: .whitespaces) else { return nil }
            if case .choice(let options) = key.kind, !options.contains(raw) {
                throw fail(key, "'\(raw)' is not one of \(options.joined(separator: ", "))")
            }
            return raw
        }
    }
}

/// Sizes as people write and read them.
public enum ByteSize {
    /// `512 B`, `13.8 MiB`: powers of 1024, one decimal.
    public static func describe(_ bytes: Int64) -> String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB"]
        var value = Double(bytes)
        var unit = 0
        while value >= 1024, unit < units.count - 1 {
            value /= 1024
            unit += 1
        }
        return unit == 0 ? "\(bytes) B" : String(format: "%.1f", value) + " " + units[unit]
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
