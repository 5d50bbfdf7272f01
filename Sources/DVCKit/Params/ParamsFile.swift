public import Foundation

/// A parameters file (`params.yaml`, or any YAML, JSON or TOML file a stage names).
public struct ParamsFile: Sendable {
    public let path: String
    public let root: YAMLValue

    /// Parses by extension: `.toml` as TOML, `.json`, `.yaml`, `.yml` (and anything else) as YAML,
    /// of which JSON is a subset.
    public init(path: String, data: Data, limits: ParseLimits = .default) throws {
        self.path = path
        if path.lowercased().hasSuffix(".toml") {
            root = try TOMLLoader.load(data, file: path, limits: limits)
        } else if path.lowercased().hasSuffix(".py") {
            throw DVCError(.malformed, file: path, "Python params files are not supported")
        } else {
            root = try YAMLLoader.load(data, file: path, limits: limits)
        }
    }

    /// The value at a dotted key, nil when absent.
    public func value(at key: String) -> YAMLValue? {
        root.lookup(dotted: key)
    }

    /// Every leaf under the document as dotted keys, in document order.
    public var flattened: [(key: String, value: YAMLValue)] {
        var result: [(key: String, value: YAMLValue)] = []
        func walk(_ value: YAMLValue, _ prefix: String) {
            if case .mapping(let pairs) = value, !pairs.isEmpty {
                for pair in pairs { walk(pair.value, prefix.isEmpty ? pair.key : prefix + "." + pair.key) }
            } else if !prefix.isEmpty {
                result.append((prefix, value))
            }
        }
        walk(root, "")
        return result
    }
}
