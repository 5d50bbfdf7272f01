public import Foundation
import Yams

/// A parsed YAML/JSON/TOML value that keeps each scalar's source text.
///
/// DVC writes parameter values as YAML scalars (`0.0001`, `1e-05`, `true`); keeping the text lets
/// lineage report a value exactly as `dvc.lock` has it instead of a re-printed float.
public indirect enum YAMLValue: Sendable, Equatable {
    /// A scalar: its text and whether it was quoted (a quoted `"1"` is a string, not a number).
    case scalar(String, quoted: Bool)
    case sequence([YAMLValue])
    /// Keys in document order.
    case mapping([(key: String, value: YAMLValue)])
    case null

    public static func == (lhs: YAMLValue, rhs: YAMLValue) -> Bool {
        switch (lhs, rhs) {
        case let (.scalar(a, qa), .scalar(b, qb)): return a == b && qa == qb
        case let (.sequence(a), .sequence(b)): return a == b
        case let (.mapping(a), .mapping(b)):
            return a.count == b.count && zip(a, b).allSatisfy { $0.key == $1.key && $0.value == $1.value }
        case (.null, .null): return true
        default: return false
        }
    }

    /// The value under `key` in a mapping.
    public subscript(key: String) -> YAMLValue? {
        guard case .mapping(let pairs) = self else { return nil }
        return pairs.first { $0.key == key }?.value
    }

    /// The value at a dotted path (`train.optimizer.lr`); list items by index.
    public func lookup(dotted path: String) -> YAMLValue? {
        var current: YAMLValue? = self
        for part in path.split(separator: ".", omittingEmptySubsequences: false).map(String.init) {
            switch current {
            case .mapping: current = current?[part]
            case .sequence(let items): current = Int(part).flatMap { items.indices.contains($0) ? items[$0] : nil }
            default: return nil
            }
        }
        return current
    }

    /// Scalar text, nil for collections and null.
    public var string: String? {
        if case .scalar(let text, _) = self { return text }
        return nil
    }

    public var mapping: [(key: String, value: YAMLValue)]? {
        if case .mapping(let pairs) = self { return pairs }
        return nil
    }

    public var sequence: [YAMLValue]? {
        if case .sequence(let items) = self { return items }
        return nil
    }

    public var int64: Int64? { string.flatMap { Int64($0) } }

    public var bool: Bool? {
        switch string?.lowercased() {
        case "true", "yes", "on": return true
        case "false", "no", "off": return false
        default: return nil
        }
    }

    /// The value as YAML text: scalars as written (quoted strings unquoted), collections in flow
    /// style (`[1, 2]`, `{a: 1}`), null as `null`.
    public var yamlText: String {
        switch self {
        case .scalar(let text, let quoted):
            return quoted && needsQuoting(text) ? "'" + text.replacingOccurrences(of: "'", with: "''") + "'" : text
        case .null: return "null"
        case .sequence(let items): return "[" + items.map(\.yamlText).joined(separator: ", ") + "]"
        case .mapping(let pairs): return "{" + pairs.map { "\($0.key): \($0.value.yamlText)" }.joined(separator: ", ") + "}"
        }
    }

    /// A quoted scalar whose plain form would read as another type keeps its quotes.
    private func needsQuoting(_ text: String) -> Bool {
        if text.isEmpty { return true }
        let plain = YAMLValue.plainScalarKind(text)
        return plain != .string || text.contains(": ") || text.hasPrefix(" ") || text.hasSuffix(" ")
    }

    enum PlainKind { case null, bool, int, float, string }

    /// How YAML 1.2 core schema reads an unquoted scalar.
    static func plainScalarKind(_ text: String) -> PlainKind {
        switch text {
        case "", "~", "null", "Null", "NULL": return .null
        case "true", "True", "TRUE", "false", "False", "FALSE": return .bool
        default: break
        }
        if Int64(text) != nil { return .int }
        if Double(text) != nil, text.rangeOfCharacter(from: .letters.subtracting(CharacterSet(charactersIn: "eE"))) == nil {
            return .float
        }
        return .string
    }
}

/// Limits that keep a hostile metadata file from exhausting memory.
public struct ParseLimits: Sendable {
    /// Largest file accepted, in bytes.
    public var maxBytes: Int
    /// Most nodes visited while converting, counting every expansion of an alias.
    public var maxNodes: Int

    /// Deepest nesting accepted: collections inside collections. The parser recurses once per
    /// level, so the text is checked for it before it is parsed.
    public var maxDepth: Int

    public init(maxBytes: Int = 8 << 20, maxNodes: Int = 200_000, maxDepth: Int = 128) {
        self.maxBytes = maxBytes
        self.maxNodes = maxNodes
        self.maxDepth = maxDepth
    }

    public static let `default` = ParseLimits()
}

/// Parses YAML (and therefore JSON, a subset of it) into `YAMLValue`, within limits.
public enum YAMLLoader {
    /// Parses `data`; `file` names the file in errors. An empty document is `.null`.
    public static func load(_ data: Data, file: String, limits: ParseLimits = .default) throws -> YAMLValue {
        guard data.count <= limits.maxBytes else {
            throw DVCError(.tooLarge, file: file, "file is \(data.count) bytes, over the \(limits.maxBytes)-byte limit")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw DVCError(.malformed, file: file, "not UTF-8 text")
        }
        if text.contains("\0") { throw DVCError(.malformed, file: file, "contains a NUL byte") }
        let depth = nestingBound(text)
        guard depth <= limits.maxDepth else {
            throw DVCError(.tooLarge, file: file, "nested deeper than \(limits.maxDepth) levels")
        }
        let node: Node?
        do {
            node = try Yams.compose(yaml: text)
        } catch {
            throw DVCError(.malformed, file: file, "invalid YAML: \(String(describing: error).prefix(300))")
        }
        guard let node else { return .null }
        var budget = limits.maxNodes
        return try convert(node, file: file, budget: &budget)
    }

    /// An upper bound of a YAML text's nesting, from one pass over its bytes: on each line, the
    /// indentation plus the `- ` and `? ` indicators that open it, plus the flow brackets open
    /// (outside quotes and comments). Every level of nesting needs one of these, so a text within
    /// the bound cannot nest deeper; it may count more than the real depth (a `[` inside a plain
    /// scalar), never less.
    static func nestingBound(_ text: String) -> Int {
        let bytes = Array(text.utf8)
        var deepest = 0
        var flow = 0
        var indent = 0
        var lineStart = true
        /// The last byte on this line that was not a space (a newline at the start of a line).
        var last = UInt8(ascii: "\n")
        var index = 0
        while index < bytes.count {
            let byte = bytes[index]
            index += 1
            switch byte {
            case UInt8(ascii: "\n"):
                lineStart = true
                indent = 0
                last = byte
                continue
            case UInt8(ascii: " "), UInt8(ascii: "\t"):
                if lineStart { indent += 1 }
                continue
            case UInt8(ascii: "-"), UInt8(ascii: "?"):
                if lineStart { indent += 1 }
            case UInt8(ascii: "#") where index == 1 || [UInt8(ascii: " "), UInt8(ascii: "\t"), UInt8(ascii: "\n")].contains(bytes[index - 2]):
                while index < bytes.count, bytes[index] != UInt8(ascii: "\n") { index += 1 }
                continue
            case UInt8(ascii: "\""), UInt8(ascii: "'"):
                lineStart = false
                // A quoted scalar starts after an indicator or at a line's start (a quote
                // anywhere else is part of a plain scalar): skip to its end.
                guard ":-[{,?\n".utf8.contains(last) else { break }
                while index < bytes.count {
                    let inside = bytes[index]
                    index += 1
                    if inside == UInt8(ascii: "\\"), byte == UInt8(ascii: "\"") {
                        index += 1
                    } else if inside == byte {
                        if byte == UInt8(ascii: "'"), index < bytes.count, bytes[index] == byte {
                            index += 1  // '' inside single quotes
                        } else {
                            break
                        }
                    }
                }
            case UInt8(ascii: "["), UInt8(ascii: "{"):
                lineStart = false
                flow += 1
            case UInt8(ascii: "]"), UInt8(ascii: "}"):
                lineStart = false
                flow = max(0, flow - 1)
            default:
                lineStart = false
            }
            last = byte
            deepest = max(deepest, indent + flow)
        }
        return deepest
    }

    private static func convert(_ node: Node, file: String, budget: inout Int) throws -> YAMLValue {
        budget -= 1
        if budget < 0 {
            throw DVCError(.tooLarge, file: file, "document expands to too many nodes (YAML alias bomb?)")
        }
        switch node {
        case .scalar(let scalar):
            let quoted =
                scalar.style == .singleQuoted || scalar.style == .doubleQuoted
                || scalar.style == .literal || scalar.style == .folded
            if !quoted, YAMLValue.plainScalarKind(scalar.string) == .null { return .null }
            return .scalar(scalar.string, quoted: quoted)
        case .sequence(let sequence):
            var items: [YAMLValue] = []
            items.reserveCapacity(sequence.count)
            for item in sequence { items.append(try convert(item, file: file, budget: &budget)) }
            return .sequence(items)
        case .mapping(let mapping):
            var pairs: [(key: String, value: YAMLValue)] = []
            for (key, value) in mapping {
                guard case .scalar(let keyScalar) = key else {
                    throw DVCError(.malformed, file: file, "mapping keys must be scalars")
                }
                pairs.append((keyScalar.string, try convert(value, file: file, budget: &budget)))
            }
            return .mapping(pairs)
        case .alias:
            throw DVCError(.malformed, file: file, "unresolved YAML alias")
        }
    }
}
