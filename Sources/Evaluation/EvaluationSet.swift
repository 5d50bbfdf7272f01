public import Foundation

/// A JSON value as an evaluation set's lines hold it (`expected`, metadata): Sendable and
/// comparable, unlike what `JSONSerialization` returns.
public indirect enum JSONValue: Sendable, Hashable {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    /// The value `JSONSerialization` read (nil for anything it cannot return).
    public init?(_ value: Any) {
        switch value {
        case is NSNull: self = .null
        case let number as NSNumber where String(cString: number.objCType) == "c": self = .bool(number.boolValue)
        case let number as NSNumber: self = .number(number.doubleValue)
        case let text as String: self = .string(text)
        case let list as [Any]:
            var values: [JSONValue] = []
            for item in list {
                guard let value = JSONValue(item) else { return nil }
                values.append(value)
            }
            self = .array(values)
        case let object as [String: Any]:
            var values: [String: JSONValue] = [:]
            for (key, item) in object {
                guard let value = JSONValue(item) else { return nil }
                values[key] = value
            }
            self = .object(values)
        default: return nil
        }
    }

    /// The value as `JSONSerialization` writes it.
    public var foundation: Any {
        switch self {
        case .null: NSNull()
        case .bool(let value): value
        case .number(let value): value
        case .string(let value): value
        case .array(let values): values.map(\.foundation)
        case .object(let values): values.mapValues(\.foundation)
        }
    }

    /// Compact JSON text, keys sorted.
    public var text: String {
        guard let data = try? JSONSerialization.data(withJSONObject: foundation, options: [.sortedKeys, .fragmentsAllowed]) else { return "null" }
        return String(decoding: data, as: UTF8.self)
    }
}

/// One line of an evaluation set: what to ask (`prompt`, or `messages`), what a good answer is
/// (`expected`: a string, a list of acceptable strings, or any JSON), and its id (`id`, else
/// its line number).
public struct EvaluationItem: Sendable, Hashable {
    public struct Message: Sendable, Hashable {
        public let role: String
        public let content: String
    }

    public enum Input: Sendable, Hashable {
        case prompt(String)
        case messages([Message])
    }

    public let id: String
    /// 1-based line number in the file.
    public let line: Int
    public let input: Input
    public let expected: JSONValue?

    /// The acceptable answers as text: a string, each string of a list, or other JSON as its text.
    public var acceptable: [String] {
        switch expected {
        case nil: []
        case .string(let text): [text]
        case .array(let values) where values.allSatisfy({ if case .string = $0 { true } else { false } }):
            values.compactMap { if case .string(let text) = $0 { text } else { nil } }
        case let value?: [value.text]
        }
    }
}

/// An evaluation set read from JSONL: the items of the good lines, and each bad line's number
/// and why (a bad line never stops the others).
public struct EvaluationSet: Sendable {
    public struct LineError: Sendable, Hashable, CustomStringConvertible {
        public let line: Int
        public let reason: String
        public var description: String { "line \(line): \(reason)" }

        public init(line: Int, reason: String) {
            self.line = line
            self.reason = reason
        }
    }

    public let items: [EvaluationItem]
    public let errors: [LineError]

    /// Items at most; a larger file is refused (an evaluation is a set, not a corpus).
    public static let maxItems = 10_000

    public init(jsonl data: Data) throws {
        var items: [EvaluationItem] = []
        var errors: [LineError] = []
        var ids: Set<String> = []
        let lines = data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false)
        for (index, raw) in lines.enumerated() {
            let number = index + 1
            let text = String(decoding: raw, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            if text.isEmpty { continue }
            do {
                let item = try Self.item(text, line: number)
                guard ids.insert(item.id).inserted else { throw Self.bad("id \(item.id) is used twice") }
                items.append(item)
                guard items.count <= Self.maxItems else {
                    throw EvaluationError.badSet("the set holds more than \(Self.maxItems) items")
                }
            } catch let error as LineError {
                errors.append(LineError(line: number, reason: error.reason))
            }
        }
        self.items = items
        self.errors = errors
    }

    private static func bad(_ reason: String) -> LineError { LineError(line: 0, reason: reason) }

    private static func item(_ text: String, line: Int) throws -> EvaluationItem {
        guard let parsed = try? JSONSerialization.jsonObject(with: Data(text.utf8)), let object = parsed as? [String: Any] else {
            throw bad("not a JSON object")
        }
        let input: EvaluationItem.Input
        switch (object["prompt"], object["messages"]) {
        case (let prompt as String, nil):
            guard !prompt.isEmpty else { throw bad("prompt is empty") }
            input = .prompt(prompt)
        case (nil, let list as [Any]):
            var messages: [EvaluationItem.Message] = []
            for entry in list {
                guard let message = entry as? [String: Any], let role = message["role"] as? String, let content = message["content"] as? String
                else { throw bad("each message needs a role and a content string") }
                messages.append(EvaluationItem.Message(role: role, content: content))
            }
            guard !messages.isEmpty else { throw bad("messages is empty") }
            input = .messages(messages)
        default:
            throw bad("give prompt (a string) or messages (a list), one of them")
        }
        let id: String
        switch object["id"] {
        case nil: id = String(line)
        case let text as String where !text.isEmpty && text.utf8.count <= 128: id = text
        case let number as NSNumber where String(cString: number.objCType) != "c" && number.doubleValue == number.doubleValue.rounded():
            id = String(number.int64Value)
        default: throw bad("id must be a string of 1 to 128 bytes or an integer")
        }
        let expected = try object["expected"].map { value -> JSONValue in
            guard let json = JSONValue(value) else { throw bad("expected is not JSON") }
            return json
        }
        return EvaluationItem(id: id, line: line, input: input, expected: expected)
    }
}

extension EvaluationSet.LineError: Error {}

/// Why an evaluation cannot run.
public enum EvaluationError: Error, Sendable, Equatable, CustomStringConvertible {
    case badSet(String)
    case badScorer(String)

    public var description: String {
        switch self {
        case .badSet(let message): "the evaluation set: \(message)"
        case .badScorer(let message): "scorer: \(message)"
        }
    }
}
