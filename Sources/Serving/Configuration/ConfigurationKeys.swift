import Foundation
public import Logging

/// One configuration key, declared once in `ConfigurationKey.all`: its name, what values it takes,
/// where its value goes, its help, and the commands whose flags set it. From the table come the
/// long flags (`--cache-budget 20G`) and their help, the environment variables
/// (`PEDIGREE_CACHE_BUDGET`), the YAML keys (`cache-budget: 20G`), `config check` and
/// `pedigree.example.yaml` (`pedigree config example`).
///
/// A key's default is the value `ConfigurationSettings` starts with (the settings' own
/// initial values); the table reads it from there, so help, example and `config check` show the
/// same one.
public struct ConfigurationKey: Sendable, Hashable, CustomStringConvertible {
    /// What values the key takes; checked where the value enters, with the key's name in the error.
    public enum Kind: Sendable, Hashable {
        case text
        case integer(ClosedRange<Int>)
        case boolean
        /// Bytes: `123`, `500K`, `500M`, `20G`, `1T` (powers of 1024).
        case size
        /// Seconds: `30`, `30s`, `5m`, `2h`.
        case seconds(ClosedRange<Int>)
        case choice([String])
        /// Several texts: a YAML sequence, a comma-separated variable, a repeated flag.
        case list
    }

    /// The option groups of the commands: a command takes as flags the keys of its groups (every
    /// key may be set in the file and the environment).
    public enum Group: String, Sendable, CaseIterable {
        /// Every command that reads the repository or the cache.
        case common
        /// `pedigree serve`.
        case server
        /// `pedigree worker`.
        case worker
        /// Commands that fetch artifacts.
        case artifacts
        /// Commands that run models.
        case inference
        /// Commands that record or read inferences.
        case ledger
        /// Commands that read API keys.
        case access
    }

    /// The headings of the example file, in its order.
    public enum Section: String, Sendable, CaseIterable {
        case repository = "Repository"
        case http = "HTTP"
        case access = "Access"
        case artifacts = "Artifacts"
        case scaleOut = "Scale-out"
        case inference = "Inference"
        case ledger = "Ledger"
        case logging = "Logging"
    }

    public let name: String
    /// The long flag without its dashes: the name, or its singular for a list (`--worker`).
    public let flag: String
    public let kind: Kind
    /// Shown redacted by `config check` (a password inside a URL is redacted in any key).
    public let secret: Bool
    public let groups: [Group]
    public let section: Section
    /// One or two sentences: the flag's help, and the first lines of the key in the example file.
    public let help: String
    /// More for the example file (behaviour, interplay with other keys).
    public let details: String?
    /// The default in words where it is not a plain value (`every core`, `none`); nil: the
    /// settings' initial value.
    public let defaultNote: String?
    /// A value to show, commented out, in the example file when the key has no plain default.
    public let example: [String]

    let read: @Sendable (ConfigurationSettings) -> [String]?
    let write: @Sendable (inout ConfigurationSettings, [String]) throws -> Void

    /// The environment variable that sets the key.
    public var environmentName: String {
        "PEDIGREE_" + name.uppercased().map { $0.isLetter || $0.isNumber ? String($0) : "_" }.joined()
    }

    /// The default as text: the note, else the settings' initial value (nil: none).
    public var defaultText: String? {
        defaultNote ?? read(.defaults).map { $0.joined(separator: ",") }
    }

    /// Whether the default is a plain value (set, uncommented, in the example file).
    var hasPlainDefault: Bool { defaultNote == nil && read(.defaults) != nil }

    public var description: String { name }

    public static func == (lhs: Self, rhs: Self) -> Bool { lhs.name == rhs.name }
    public func hash(into hasher: inout Hasher) { hasher.combine(name) }

    /// Keys by name.
    public static let byName: [String: ConfigurationKey] = Dictionary(uniqueKeysWithValues: all.map { ($0.name, $0) })
    /// Keys by flag.
    public static let byFlag: [String: ConfigurationKey] = Dictionary(uniqueKeysWithValues: all.map { ($0.flag, $0) })

    /// The keys a command with these groups takes as flags, in table order.
    public static func keys(of groups: [Group]) -> [ConfigurationKey] {
        all.filter { key in key.groups.contains { groups.contains($0) } }
    }

    /// A key whose value goes to `path` through `codec`.
    static func key<Value>(
        _ name: String, _ path: any WritableKeyPath<ConfigurationSettings, Value> & Sendable, _ codec: ConfigurationCodec<Value>,
        _ section: Section, _ groups: [Group], flag: String? = nil, secret: Bool = false, defaultNote: String? = nil, example: [String] = [],
        help: String, details: String? = nil
    ) -> ConfigurationKey {
        ConfigurationKey(
            name: name, flag: flag ?? name, kind: codec.kind, secret: secret, groups: groups, section: section, help: help, details: details,
            defaultNote: defaultNote, example: example, read: { settings in codec.render(settings[keyPath: path]) },
            write: { settings, raw in settings[keyPath: path] = try codec.parse(raw) })
    }
}

/// A problem with one value; the loader adds the key's name and where the value came from.
struct ConfigurationProblem: Error {
    let message: String
    init(_ message: String) { self.message = message }
}

/// How the text of a key becomes its typed value, and back (to show a default).
struct ConfigurationCodec<Value>: Sendable {
    let kind: ConfigurationKey.Kind
    let parse: @Sendable ([String]) throws -> Value
    let render: @Sendable (Value) -> [String]?

    /// The same text, another type (`transform` may refuse a value with a `ConfigurationProblem`).
    func map<Other>(_ transform: @escaping @Sendable (Value) throws -> Other, back: @escaping @Sendable (Other) -> Value)
        -> ConfigurationCodec<Other>
    {
        let parse = self.parse
        let render = self.render
        return .init(kind: kind, parse: { try transform(parse($0)) }, render: { render(back($0)) })
    }

    /// The same, where the setting may be unset (no default).
    var optional: ConfigurationCodec<Value?> {
        let parse = self.parse
        let render = self.render
        return .init(kind: kind, parse: { try parse($0) }, render: { $0.flatMap(render) })
    }
}

/// The value of a single-valued key: the last one given, trimmed.
private func single(_ raw: [String]) -> String {
    (raw.last ?? "").trimmingCharacters(in: .whitespaces)
}

extension ConfigurationCodec where Value == Int {
    static func integer(_ range: ClosedRange<Int>) -> Self {
        .init(
            kind: .integer(range),
            parse: { raw in
                let text = single(raw)
                guard let value = Int(text) else { throw ConfigurationProblem("'\(text)' is not an integer") }
                guard range.contains(value) else { throw ConfigurationProblem("\(value) is out of range \(range.lowerBound)...\(range.upperBound)") }
                return value
            }, render: { [String($0)] })
    }
}

extension ConfigurationCodec where Value == Duration {
    /// Whole seconds: `30`, `30s`, `5m`, `2h`, `1d`.
    static func seconds(_ range: ClosedRange<Int>) -> Self {
        .init(
            kind: .seconds(range),
            parse: { raw in
                let text = single(raw).lowercased()
                let units: [Character: Int] = ["s": 1, "m": 60, "h": 3600, "d": 86_400]
                let value: Int?
                if let unit = text.last, let scale = units[unit], let number = Int(text.dropLast()) {
                    let (scaled, overflow) = number.multipliedReportingOverflow(by: scale)
                    value = overflow ? nil : scaled
                } else {
                    value = Int(text)
                }
                guard let value else { throw ConfigurationProblem("'\(text)' is not a duration such as 30, 30s, 5m or 2h") }
                guard range.contains(value) else {
                    throw ConfigurationProblem("\(value) seconds is out of range \(range.lowerBound)...\(range.upperBound)")
                }
                return .seconds(value)
            }, render: { [String($0.components.seconds)] })
    }
}

extension ConfigurationCodec where Value == Int64 {
    /// Bytes as people write them (`500M`, `20G`).
    static var size: Self {
        .init(
            kind: .size,
            parse: { raw in
                let text = single(raw)
                guard let bytes = ByteSize.parse(text) else { throw ConfigurationProblem("'\(text)' is not a size such as 500M or 20G") }
                return bytes
            }, render: { [ByteSize.exact($0)] })
    }
}

extension ConfigurationCodec where Value == Bool {
    static var boolean: Self {
        .init(
            kind: .boolean,
            parse: { raw in
                let text = single(raw).lowercased()
                guard let value = ConfigurationCodec.booleanWords[text] else { throw ConfigurationProblem("'\(text)' is not true or false") }
                return value
            }, render: { [String($0)] })
    }
}

extension ConfigurationCodec {
    /// The spellings of a boolean value.
    static var booleanWords: [String: Bool] {
        ["true": true, "yes": true, "1": true, "on": true, "false": false, "no": false, "0": false, "off": false]
    }
}

extension ConfigurationCodec where Value == String? {
    /// Text; empty is the same as unset.
    static var text: Self {
        .init(kind: .text, parse: { raw in single(raw).isEmpty ? nil : single(raw) }, render: { $0.map { [$0] } })
    }
}

extension ConfigurationCodec where Value == String {
    /// Text that must not be empty.
    static var string: Self {
        .init(
            kind: .text,
            parse: { raw in
                guard !single(raw).isEmpty else { throw ConfigurationProblem("must not be empty") }
                return single(raw)
            }, render: { [$0] })
    }
}

extension ConfigurationCodec where Value == [String] {
    /// Several texts (empty ones dropped).
    static var list: Self {
        .init(kind: .list, parse: { raw in raw.filter { !$0.isEmpty } }, render: { $0.isEmpty ? nil : $0 })
    }
}

extension ConfigurationCodec where Value: CaseIterable & RawRepresentable & Sendable, Value.RawValue == String {
    /// One of an enumeration's cases, by its raw value.
    static var choice: Self {
        let options = Value.allCases.map(\.rawValue)
        return .init(
            kind: .choice(options),
            parse: { raw in
                let text = single(raw)
                guard let value = Value(rawValue: text) else {
                    throw ConfigurationProblem("'\(text)' is not one of \(options.joined(separator: ", "))")
                }
                return value
            }, render: { [$0.rawValue] })
    }
}

/// Every value the configuration sets: the services' configuration, logging, and the few raw
/// values that are checked together once every key is read (the repository and cache, the TLS
/// pair).
public struct ConfigurationSettings: Sendable {
    public var serving: ServingConfiguration
    public var logFormat = LogFormat.text
    public var logLevel = Logger.Level.info
    /// nil: the one repository mirrored in the cache.
    public var repo: String?
    /// nil: `$XDG_CACHE_HOME/pedigree` or `~/.cache/pedigree`.
    public var cache: String?
    public var tlsCertificate: String?
    public var tlsKey: String?

    /// The initial values: every key's default.
    public static let defaults = ConfigurationSettings(serving: ServingConfiguration(repo: "", cache: .init(fileURLWithPath: "/")))
}
