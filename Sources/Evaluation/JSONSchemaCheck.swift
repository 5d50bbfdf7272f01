import Foundation

/// Whether a JSON value is valid against a JSON Schema (draft 2020-12), for the `schema` scorer.
///
/// The assertions: `type` (one or a list; `integer` is a number without a fraction), `enum`,
/// `const`, `properties`, `required`, `additionalProperties`, `minProperties`, `maxProperties`,
/// `items`, `prefixItems`, `minItems`, `maxItems`, `uniqueItems`, `minLength`, `maxLength` (in
/// code points), `pattern` (found anywhere), `minimum`, `maximum`, `exclusiveMinimum`,
/// `exclusiveMaximum`, `multipleOf`, `allOf`, `anyOf`, `oneOf`, `not`, and `true`/`false`
/// schemas. Annotations (`title`, `description`, `format`, `default`, `examples`, `$schema`, …)
/// assert nothing, as in `jsonschema`. Any other keyword is refused when the scorer is made, so
/// a score never silently ignores part of a schema.
public struct JSONSchemaCheck: Sendable, Hashable {
    public let schema: JSONValue

    static let assertions: Set<String> = [
        "type", "enum", "const", "properties", "required", "additionalProperties", "minProperties", "maxProperties", "items",
        "prefixItems", "minItems", "maxItems", "uniqueItems", "minLength", "maxLength", "pattern", "minimum", "maximum",
        "exclusiveMinimum", "exclusiveMaximum", "multipleOf", "allOf", "anyOf", "oneOf", "not",
    ]
    static let annotations: Set<String> = [
        "$schema", "$id", "$comment", "$defs", "definitions", "title", "description", "default", "examples", "format", "deprecated",
        "readOnly", "writeOnly", "contentMediaType", "contentEncoding",
    ]
    /// Deepest nesting of subschemas accepted.
    static let maxDepth = 32

    /// `BAD_SCORER`-style refusal for a schema that is not an object or boolean, or uses a keyword
    /// this check does not assert, or a bad value for one it does.
    public init(_ schema: JSONValue) throws {
        try Self.check(schema, depth: 0)
        self.schema = schema
    }

    private static func check(_ schema: JSONValue, depth: Int) throws {
        guard depth < maxDepth else { throw EvaluationError.badScorer("schema: nested deeper than \(maxDepth)") }
        switch schema {
        case .bool: return
        case .object(let keywords):
            for (key, value) in keywords {
                if annotations.contains(key) { continue }
                guard assertions.contains(key) else {
                    throw EvaluationError.badScorer("schema: \(key) is not a keyword the schema scorer checks")
                }
                switch (key, value) {
                case ("properties", .object(let properties)):
                    for property in properties.values { try check(property, depth: depth + 1) }
                case ("additionalProperties", _), ("items", _), ("not", _):
                    try check(value, depth: depth + 1)
                case ("prefixItems", .array(let schemas)), ("allOf", .array(let schemas)), ("anyOf", .array(let schemas)),
                    ("oneOf", .array(let schemas)):
                    guard !schemas.isEmpty else { throw EvaluationError.badScorer("schema: \(key) needs at least one schema") }
                    for schema in schemas { try check(schema, depth: depth + 1) }
                case ("pattern", .string(let pattern)):
                    guard (try? NSRegularExpression(pattern: pattern)) != nil else {
                        throw EvaluationError.badScorer("schema: pattern \(pattern) is not a regular expression")
                    }
                case ("multipleOf", .number(let divisor)):
                    guard divisor > 0, divisor.isFinite else { throw EvaluationError.badScorer("schema: multipleOf must be above 0") }
                case ("required", .array(let names)):
                    guard names.allSatisfy({ if case .string = $0 { true } else { false } }) else {
                        throw EvaluationError.badScorer("schema: required lists property names")
                    }
                case ("type", _):
                    let names: [JSONValue] = if case .array(let list) = value { list } else { [value] }
                    for name in names {
                        guard case .string(let text) = name, Self.typeNames.contains(text) else {
                            throw EvaluationError.badScorer("schema: type \(name.text) is not a JSON Schema type")
                        }
                    }
                case ("enum", .array), ("const", _), ("uniqueItems", .bool):
                    continue
                case ("minimum", .number), ("maximum", .number), ("exclusiveMinimum", .number), ("exclusiveMaximum", .number):
                    continue
                case ("minLength", .number(let n)), ("maxLength", .number(let n)), ("minItems", .number(let n)), ("maxItems", .number(let n)),
                    ("minProperties", .number(let n)), ("maxProperties", .number(let n)):
                    guard n >= 0, n == n.rounded(), n < 1e15 else { throw EvaluationError.badScorer("schema: \(key) takes a count") }
                default:
                    throw EvaluationError.badScorer("schema: \(key) has a value of the wrong kind")
                }
            }
        default:
            throw EvaluationError.badScorer("schema: a schema is an object or a boolean")
        }
    }

    static let typeNames: Set<String> = ["null", "boolean", "object", "array", "number", "integer", "string"]

    /// Whether `value` is valid.
    public func validates(_ value: JSONValue) -> Bool { Self.valid(value, against: schema) }

    private static func valid(_ value: JSONValue, against schema: JSONValue) -> Bool {
        guard case .object(let keywords) = schema else {
            if case .bool(let accepts) = schema { return accepts }
            return false
        }
        for (key, rule) in keywords where !validKeyword(key, rule, value, keywords) { return false }
        return true
    }

    private static func validKeyword(_ key: String, _ rule: JSONValue, _ value: JSONValue, _ keywords: [String: JSONValue]) -> Bool {
        switch key {
        case "type":
            let names: [JSONValue] = if case .array(let list) = rule { list } else { [rule] }
            return names.contains { if case .string(let name) = $0 { isType(value, name) } else { false } }
        case "enum":
            guard case .array(let options) = rule else { return true }
            return options.contains { equal($0, value) }
        case "const":
            return equal(rule, value)
        case "allOf", "anyOf", "oneOf":
            guard case .array(let schemas) = rule else { return true }
            let passed = schemas.filter { valid(value, against: $0) }.count
            return key == "allOf" ? passed == schemas.count : key == "anyOf" ? passed > 0 : passed == 1
        case "not":
            return !valid(value, against: rule)
        default:
            break
        }
        switch value {
        case .object(let object): return validObject(key, rule, object, keywords)
        case .array(let items): return validArray(key, rule, items, keywords)
        case .string(let text): return validString(key, rule, text)
        case .number(let number): return validNumber(key, rule, number)
        case .null, .bool: return true
        }
    }

    private static func validObject(_ key: String, _ rule: JSONValue, _ object: [String: JSONValue], _ keywords: [String: JSONValue]) -> Bool {
        switch (key, rule) {
        case ("properties", .object(let properties)):
            return properties.allSatisfy { name, schema in object[name].map { valid($0, against: schema) } ?? true }
        case ("required", .array(let names)):
            return names.allSatisfy { if case .string(let name) = $0 { object[name] != nil } else { true } }
        case ("additionalProperties", _):
            let declared: Set<String> = if case .object(let properties)? = keywords["properties"] { Set(properties.keys) } else { [] }
            return object.allSatisfy { declared.contains($0.key) || valid($0.value, against: rule) }
        case ("minProperties", .number(let n)): return Double(object.count) >= n
        case ("maxProperties", .number(let n)): return Double(object.count) <= n
        default: return true
        }
    }

    private static func validArray(_ key: String, _ rule: JSONValue, _ items: [JSONValue], _ keywords: [String: JSONValue]) -> Bool {
        switch (key, rule) {
        case ("prefixItems", .array(let schemas)):
            return zip(items, schemas).allSatisfy { valid($0, against: $1) }
        case ("items", _):
            let skipped: Int = if case .array(let prefix)? = keywords["prefixItems"] { prefix.count } else { 0 }
            return items.dropFirst(skipped).allSatisfy { valid($0, against: rule) }
        case ("minItems", .number(let n)): return Double(items.count) >= n
        case ("maxItems", .number(let n)): return Double(items.count) <= n
        case ("uniqueItems", .bool(true)):
            for (index, item) in items.enumerated() where items[(index + 1)...].contains(where: { equal($0, item) }) { return false }
            return true
        default: return true
        }
    }

    private static func validString(_ key: String, _ rule: JSONValue, _ text: String) -> Bool {
        switch (key, rule) {
        case ("minLength", .number(let n)): return Double(text.unicodeScalars.count) >= n
        case ("maxLength", .number(let n)): return Double(text.unicodeScalars.count) <= n
        case ("pattern", .string(let pattern)):
            guard let expression = try? NSRegularExpression(pattern: pattern) else { return false }
            return expression.firstMatch(in: text, range: NSRange(text.startIndex..., in: text)) != nil
        default: return true
        }
    }

    private static func validNumber(_ key: String, _ rule: JSONValue, _ number: Double) -> Bool {
        guard case .number(let limit) = rule else { return true }
        switch key {
        case "minimum": return number >= limit
        case "maximum": return number <= limit
        case "exclusiveMinimum": return number > limit
        case "exclusiveMaximum": return number < limit
        case "multipleOf":
            let quotient = number / limit
            return quotient.isFinite && quotient == quotient.rounded()
        default: return true
        }
    }

    private static func isType(_ value: JSONValue, _ name: String) -> Bool {
        switch (value, name) {
        case (.null, "null"), (.bool, "boolean"), (.object, "object"), (.array, "array"), (.string, "string"), (.number, "number"): true
        case (.number(let number), "integer"): number == number.rounded() && number.isFinite
        default: false
        }
    }

    /// JSON equality as JSON Schema means it: numbers by value (1 equals 1.0), booleans apart from numbers.
    static func equal(_ a: JSONValue, _ b: JSONValue) -> Bool {
        switch (a, b) {
        case (.array(let x), .array(let y)): x.count == y.count && zip(x, y).allSatisfy { equal($0, $1) }
        case (.object(let x), .object(let y)): x.count == y.count && x.allSatisfy { key, value in y[key].map { equal(value, $0) } ?? false }
        default: a == b
        }
    }
}
