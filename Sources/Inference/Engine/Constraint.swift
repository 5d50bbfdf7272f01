import CLlama
import Foundation

/// What an answer must match: a GBNF grammar (rule `root`) that llama.cpp's grammar sampler
/// enforces token by token, and where it came from: any JSON object, a JSON Schema (converted by
/// llama.cpp's own converter, the one llama-server uses), or a grammar as given. Recorded with the
/// answer, so a replay enforces the same grammar.
public struct Constraint: Sendable, Hashable, Codable {
    public enum Kind: String, Sendable, Hashable, Codable {
        case jsonObject = "json_object"
        case jsonSchema = "json_schema"
        case grammar
    }

    public var kind: Kind
    /// The schema's name (OpenAI's `json_schema.name`).
    public var name: String?
    /// The JSON Schema as JSON text (`json_schema`).
    public var schema: String?
    /// The GBNF grammar enforced.
    public var grammar: String

    /// Grammars and schemas larger than this are refused (a request's, not a model's limit).
    public static let maxGrammarBytes = 256 * 1024

    public init(kind: Kind, name: String? = nil, schema: String? = nil, grammar: String) {
        self.kind = kind
        self.name = name
        self.schema = schema
        self.grammar = grammar
    }

    /// Any JSON object (OpenAI's `json_object`).
    public static func jsonObject() throws -> Constraint {
        Constraint(kind: .jsonObject, grammar: try grammar(forSchemaText: #"{"type":"object"}"#))
    }

    /// A raw grammar; it is parsed against the model's vocabulary when the generation starts.
    public static func grammar(_ text: String) throws -> Constraint {
        guard !text.isEmpty, text.utf8.count <= maxGrammarBytes else {
            throw InferenceError.badInput("a grammar holds 1 to \(maxGrammarBytes) bytes")
        }
        try GrammarLimits.check(text, maxUnbounded: GrammarLimits.maxUnboundedInRawGrammar)
        return Constraint(kind: .grammar, grammar: text)
    }

    /// A JSON Schema (a JSON object, as parsed by `JSONSerialization`). A keyword the converter
    /// would not enforce is refused by name (`JSONSchemaKeywords`), never dropped.
    public static func jsonSchema(_ schema: Any, name: String? = nil) throws -> Constraint {
        guard JSONSerialization.isValidJSONObject(schema), schema is [String: Any] else {
            throw InferenceError.badInput("the JSON Schema must be a JSON object")
        }
        try JSONSchemaKeywords.check(schema, at: "#")
        let data = try JSONSerialization.data(withJSONObject: schema, options: [.sortedKeys])
        guard data.count <= maxGrammarBytes else { throw InferenceError.badInput("a JSON Schema holds at most \(maxGrammarBytes) bytes") }
        let text = String(decoding: data, as: UTF8.self)
        return Constraint(kind: .jsonSchema, name: name, schema: text, grammar: try grammar(forSchemaText: text))
    }

    private static func grammar(forSchemaText text: String) throws -> String {
        var error: UnsafeMutablePointer<CChar>?
        guard let converted = pedigree_json_schema_to_grammar(text, &error) else {
            defer { pedigree_free(error) }
            let message = error.map { String(cString: $0) } ?? "the schema could not be converted"
            throw InferenceError.badInput(message.replacingOccurrences(of: "\n", with: " "))
        }
        defer { pedigree_free(converted) }
        let grammar = String(cString: converted)
        try GrammarLimits.check(grammar)
        return grammar
    }
}

/// The JSON Schema keywords llama.cpp's converter enforces, and those that change no answer
/// (annotations). Anything else is refused by name: the converter would ignore it.
enum JSONSchemaKeywords {
    static let annotations: Set<String> = [
        "title", "description", "default", "examples", "$schema", "$id", "$comment", "deprecated", "readOnly", "writeOnly",
    ]
    static let enforced: Set<String> = [
        "type", "properties", "required", "additionalProperties", "items", "prefixItems", "minItems", "maxItems", "anyOf",
        "enum", "const", "$ref", "$defs", "definitions", "minLength", "maxLength", "pattern", "format", "minimum", "maximum",
        "exclusiveMinimum", "exclusiveMaximum",
    ]
    static let formats: Set<String> = ["date", "time", "date-time", "uuid", "uuid1", "uuid2", "uuid3", "uuid4", "uuid5"]
    /// Keywords the converter reads only on these types.
    static let integerOnly: Set<String> = ["minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"]
    /// Deep enough for any real schema; deeper ones are refused rather than walked.
    static let maxDepth = 64

    static func check(_ node: Any, at path: String, depth: Int = 0) throws {
        guard depth < maxDepth else { throw refuse("nests deeper than \(maxDepth) levels", at: path) }
        // true / false schemas (additionalProperties, items); on Linux an integer 0 or 1 casts to Bool too.
        if let flag = node as? NSNumber, isBoolean(flag) { return }
        guard let object = node as? [String: Any] else { throw refuse("a schema must be an object", at: path) }
        for key in object.keys.sorted() where !enforced.contains(key) && !annotations.contains(key) {
            throw refuse("the keyword '\(key)' is not supported", at: path)
        }
        let constraints = Set(object.keys).subtracting(annotations)
        // The converter reads $ref, then anyOf/oneOf, alone: what sits beside them would be dropped.
        for alone in ["$ref", "anyOf", "enum", "const"] where object[alone] != nil {
            // A type beside enum or const is kept when every value has it (Pydantic writes one).
            let typed = (alone == "enum" || alone == "const") && valuesMatch(object, alone)
            let beside = constraints.subtracting([alone, "$defs", "definitions"] + (typed ? ["type"] : []))
            if let other = beside.sorted().first { throw refuse("'\(other)' beside '\(alone)' is not supported", at: path) }
        }
        // A string's pattern, else its format, else its length: the converter enforces one of them.
        for (first, second) in [
            ("pattern", "format"), ("pattern", "minLength"), ("pattern", "maxLength"), ("format", "minLength"), ("format", "maxLength"),
        ]
        where object[first] != nil && object[second] != nil {
            throw refuse("'\(second)' beside '\(first)' is not supported", at: path)
        }
        for (first, second) in [
            ("items", "prefixItems"), ("prefixItems", "minItems"), ("prefixItems", "maxItems"), ("minimum", "exclusiveMinimum"),
            ("maximum", "exclusiveMaximum"),
        ] where object[first] != nil && object[second] != nil {
            throw refuse("'\(second)' beside '\(first)' is not supported", at: path)
        }
        if let reference = object["$ref"] {
            guard let reference = reference as? String,
                reference == "#" || reference.hasPrefix("#/$defs/") || reference.hasPrefix("#/definitions/")
            else { throw refuse("'$ref' must point to '#', '#/$defs/…' or '#/definitions/…'", at: path) }
        }
        // Counts: what the grammar's repetitions can hold (llama.cpp reads a bound above 2000 as none).
        for key in ["minLength", "maxLength", "minItems", "maxItems"] where object[key] != nil {
            guard let count = object[key] as? NSNumber, !isBoolean(count), count.doubleValue == count.doubleValue.rounded(),
                (0...Double(GrammarLimits.maxRepetition)).contains(count.doubleValue)
            else { throw refuse("'\(key)' must be an integer from 0 to \(GrammarLimits.maxRepetition)", at: path) }
        }
        for (lowKey, highKey) in [("minLength", "maxLength"), ("minItems", "maxItems")] {
            if let low = (object[lowKey] as? NSNumber)?.intValue, let high = (object[highKey] as? NSNumber)?.intValue, low > high {
                throw refuse("'\(lowKey)' \(low) is above '\(highKey)' \(high)", at: path)
            }
        }
        for key in integerOnly where object[key] != nil {
            guard let bound = object[key] as? NSNumber, !isBoolean(bound), abs(bound.doubleValue) <= 9_007_199_254_740_991,
                bound.doubleValue == bound.doubleValue.rounded()
            else { throw refuse("'\(key)' must be an integer within ±2^53", at: path) }
        }
        if let required = object["required"] {
            guard let names = required as? [String] else { throw refuse("'required' must be a list of names", at: path) }
            let declared = Set((object["properties"] as? [String: Any])?.keys.map { $0 } ?? [])
            if let missing = names.first(where: { !declared.contains($0) }) {
                throw refuse("required '\(missing)' is not among the properties", at: path)
            }
        }
        let types = (object["type"] as? String).map { [$0] } ?? (object["type"] as? [String]) ?? []
        if let bound = constraints.intersection(integerOnly).sorted().first, types != ["integer"] {
            throw refuse("'\(bound)' is enforced on integers only", at: path)
        }
        if let format = object["format"] {
            guard let format = format as? String, formats.contains(format) else {
                throw refuse("format '\(object["format"].map { "\($0)" } ?? "")' is not supported (date, time, date-time, uuid)", at: path)
            }
        }
        if let pattern = object["pattern"] {
            guard let pattern = pattern as? String, pattern.hasPrefix("^"), pattern.hasSuffix("$") else {
                throw refuse("a pattern must be anchored with ^ and $", at: path)
            }
            if let problem = PatternSyntax.problem(in: pattern) { throw refuse("pattern: \(problem)", at: path) }
        }
        for key in ["properties", "$defs", "definitions"] {
            guard let children = object[key] else { continue }
            guard let children = children as? [String: Any] else { throw refuse("'\(key)' must be an object", at: path) }
            for (name, child) in children.sorted(by: { $0.key < $1.key }) { try check(child, at: "\(path)/\(key)/\(name)", depth: depth + 1) }
        }
        for key in ["anyOf", "prefixItems"] {
            guard let children = object[key] else { continue }
            guard let children = children as? [Any] else { throw refuse("'\(key)' must be an array", at: path) }
            for (index, child) in children.enumerated() { try check(child, at: "\(path)/\(key)/\(index)", depth: depth + 1) }
        }
        if let items = object["items"] {
            if let list = items as? [Any] {
                for (index, child) in list.enumerated() { try check(child, at: "\(path)/items/\(index)", depth: depth + 1) }
            } else {
                try check(items, at: "\(path)/items", depth: depth + 1)
            }
        }
        if let additional = object["additionalProperties"] { try check(additional, at: "\(path)/additionalProperties", depth: depth + 1) }
    }

    private static func isBoolean(_ number: NSNumber) -> Bool { isJSONBoolean(number) }

    /// Whether every value of `enum` (or the `const`) is of the schema's `type`.
    private static func valuesMatch(_ object: [String: Any], _ keyword: String) -> Bool {
        guard let type = object["type"] else { return true }
        let types = (type as? String).map { [$0] } ?? (type as? [String]) ?? []
        let values = keyword == "enum" ? (object["enum"] as? [Any] ?? []) : [object["const"] as Any]
        return values.allSatisfy { value in
            types.contains { type in
                switch type {
                case "string": value is String
                case "null": value is NSNull
                case "boolean": (value as? NSNumber).map(isBoolean) ?? false
                case "number": (value as? NSNumber).map { !isBoolean($0) } ?? false
                case "integer": (value as? NSNumber).map { !isBoolean($0) && $0.doubleValue == $0.doubleValue.rounded() } ?? false
                case "array": value is [Any]
                case "object": value is [String: Any]
                default: false
                }
            }
        }
    }

    private static func refuse(_ message: String, at path: String) -> InferenceError {
        InferenceError.badInput("JSON Schema at \(path): \(message)")
    }
}

/// The regular expressions llama.cpp's converter turns into grammar (anything else it would
/// replace by "any string", with a warning on its standard error): anchored with `^…$`;
/// literal characters, `.`, classes `[…]` with ranges, groups `(…)`, `|`, and `*`, `+`, `?`,
/// `{m}`, `{m,}`, `{m,n}`; escapes of punctuation only (`\.`, `\-`…: not `\d`, `\w`, `\s`, `\b`).
enum PatternSyntax {
    static let escapable = Set(#".^$*+?()[]{}|\/-"#)

    /// Why `pattern` is outside that subset; nil when it is inside.
    static func problem(in pattern: String) -> String? {
        let characters = Array(pattern)
        guard characters.count >= 2, characters.first == "^", characters.last == "$" else { return "must be anchored with ^ and $" }
        let body = characters[1..<(characters.count - 1)]
        var index = body.startIndex
        var depth = 0
        var quantifiable = false
        while index < body.endIndex {
            let character = body[index]
            index += 1
            switch character {
            case "\\":
                guard index < body.endIndex, escapable.contains(body[index]) else {
                    return "the escape \\\(index < body.endIndex ? String(body[index]) : "") is not supported (escape punctuation only)"
                }
                index += 1
                quantifiable = true
            case "[":
                if index < body.endIndex, body[index] == "^" { index += 1 }
                var closed = false
                var first = true
                while index < body.endIndex {
                    let member = body[index]
                    index += 1
                    if member == "]" && !first {
                        closed = true
                        break
                    }
                    first = false
                    if member == "\\" {
                        guard index < body.endIndex, escapable.contains(body[index]) else { return "an escape in a class that is not punctuation" }
                        index += 1
                    } else if member == "[" {
                        return "'[' inside a class"
                    }
                }
                guard closed else { return "an unclosed '['" }
                quantifiable = true
            case "(":
                if index < body.endIndex, body[index] == "?" { return "'(?' groups are not supported" }
                depth += 1
                guard depth <= 16 else { return "groups nest deeper than 16" }
                quantifiable = false
            case ")":
                depth -= 1
                guard depth >= 0 else { return "an unmatched ')'" }
                quantifiable = true
            case "|":
                quantifiable = false
            case "*", "+", "?":
                guard quantifiable else { return "'\(character)' follows nothing to repeat" }
                quantifiable = false
            case "{":
                guard quantifiable else { return "'{' follows nothing to repeat" }
                guard let close = body[index...].firstIndex(of: "}") else { return "an unclosed '{'" }
                let bounds = String(body[index..<close]).split(separator: ",", omittingEmptySubsequences: false)
                let numbers = bounds.map { Int($0) }
                guard (1...2).contains(bounds.count), let low = numbers[0], low <= GrammarLimits.maxRepetition,
                    bounds.count == 1 || bounds[1].isEmpty || (numbers[1].map { $0 >= low && $0 <= GrammarLimits.maxRepetition } ?? false)
                else { return "'{\(String(body[index..<close]))}' must be {m}, {m,} or {m,n} with m ≤ n ≤ \(GrammarLimits.maxRepetition)" }
                index = close + 1
                quantifiable = false
            case "^", "$":
                return "'\(character)' inside the pattern"
            case "]", "}":
                return "an unmatched '\(character)'"
            default:
                quantifiable = true
            }
        }
        return depth == 0 ? nil : "an unclosed '('"
    }
}

/// What a GBNF grammar may hold before llama.cpp parses it: repetitions `{m,n}` with m ≤ n ≤ 2000
/// (llama.cpp loops without end on m > n and reads a bound above 2000 as none), and groups nested
/// at most 64 deep (its recursive-descent parser overflows the stack on thousands).
public enum GrammarLimits {
    public static let maxRepetition = 2000
    public static let maxNesting = 64
    /// Unbounded repetitions (`*`, `+`, `{m,}`) a grammar written by hand may hold: a hundred in a
    /// row over the same characters made llama.cpp's grammar stacks multiply until one token took
    /// minutes of the shared decode loop. Grammars converted from JSON Schemas are delimited by
    /// JSON's punctuation and are not limited so.
    public static let maxUnboundedInRawGrammar = 16

    public static func check(_ grammar: String, maxUnbounded: Int? = nil) throws {
        var unbounded = 0
        func count() throws {
            unbounded += 1
            if let maxUnbounded, unbounded > maxUnbounded {
                throw InferenceError.badInput("grammar: more than \(maxUnbounded) unbounded repetitions (*, +, {m,})")
            }
        }
        let characters = Array(grammar.unicodeScalars)
        var index = 0
        var depth = 0
        func refuse(_ message: String) -> InferenceError { InferenceError.badInput("grammar: \(message)") }
        while index < characters.count {
            let character = characters[index]
            index += 1
            switch character {
            case "#":  // a comment, to the end of the line
                while index < characters.count, characters[index] != "\n" { index += 1 }
            case "\"", "[":  // a literal or a class: skip it, escapes and all
                let end: Unicode.Scalar = character == "\"" ? "\"" : "]"
                while index < characters.count, characters[index] != end {
                    index += characters[index] == "\\" ? 2 : 1
                }
                index += 1
            case "(":
                depth += 1
                guard depth <= maxNesting else { throw refuse("groups nest deeper than \(maxNesting)") }
            case ")":
                depth -= 1
            case "*", "+":
                try count()
            case "{":
                var text = ""
                while index < characters.count, characters[index] != "}" {
                    text.unicodeScalars.append(characters[index])
                    index += 1
                }
                index += 1
                let bounds = text.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
                guard (1...2).contains(bounds.count), let low = Int(bounds[0]), low <= maxRepetition else {
                    throw refuse("a repetition {\(text)} must be {m}, {m,} or {m,n} with m ≤ n ≤ \(maxRepetition)")
                }
                if bounds.count == 2, bounds[1].isEmpty { try count() }
                if bounds.count == 2, !bounds[1].isEmpty {
                    guard let high = Int(bounds[1]), high >= low, high <= maxRepetition else {
                        throw refuse("a repetition {\(text)} must be {m}, {m,} or {m,n} with m ≤ n ≤ \(maxRepetition)")
                    }
                }
            default:
                break
            }
        }
    }
}

/// One generation's sampler: the chain (`SamplingParameters.makeChain`) and, for a constrained
/// answer, the grammar. The chain samples first and the grammar only checks that token; only when
/// it refuses is the grammar applied to the whole vocabulary and the chain run again (as
/// llama.cpp's common sampler does): one grammar check per token instead of one per vocabulary
/// entry. Used on the decode loop's thread only.
struct Sampler {
    let chain: UnsafeMutablePointer<llama_sampler>
    let grammar: UnsafeMutablePointer<llama_sampler>?

    /// Throws `badInput` when the grammar does not parse. A tool chat's grammar is the one its
    /// rendering made (lazy until a call starts when the model may also answer in text).
    init(_ parameters: SamplingParameters, model: LlamaModel, chat: RenderedChat? = nil) throws {
        if let chat, chat.readsCalls {
            grammar = try model.chatGrammar(chat)
        } else if let constraint = parameters.constraint {
            guard let grammar = llama_sampler_init_grammar(model.vocab, constraint.grammar, "root") else {
                throw InferenceError.badInput("the grammar does not parse (GBNF with a rule named root)")
            }
            self.grammar = grammar
        } else {
            grammar = nil
        }
        chain = parameters.makeChain(vocabularySize: model.vocabularySize)
    }

    /// Checks that `parameters` make a sampler for `model` (a grammar that parses, biased tokens
    /// in its vocabulary), before the request is queued.
    static func check(_ parameters: SamplingParameters, model: LlamaModel, chat: RenderedChat? = nil) throws {
        if let bias = parameters.logitBias?.first(where: { $0.token >= model.vocabularySize }) {
            throw InferenceError.badInput("logitBias: token \(bias.token) is not in the model's \(model.vocabularySize)-token vocabulary")
        }
        guard parameters.constraint != nil || chat?.readsCalls == true else { return }
        try Sampler(parameters, model: model, chat: chat).free()
    }

    enum Outcome {
        case token(Int32)
        /// The grammar allows no token at all (it can only end).
        case none
        /// Enforcing the grammar passed `deadline` (an ambiguous grammar's stacks multiply).
        case tooCostly
    }

    /// The next token from the logits at `index`. `candidates` is scratch space the caller keeps
    /// between calls. The whole-vocabulary grammar pass runs in slices, checking `deadline` between
    /// them: a costly grammar is given up on instead of holding the loop for minutes.
    func sample(
        context: OpaquePointer, index: Int32, model: LlamaModel, candidates: inout [llama_token_data], deadline: ContinuousClock.Instant
    ) -> Outcome {
        guard let grammar else { return .token(llama_sampler_sample(chain, context, index)) }
        guard let logits = llama_get_logits_ith(context, index) else { return .none }
        let count = Int(model.vocabularySize)
        func fill() {
            if candidates.count != count { candidates = [llama_token_data](repeating: llama_token_data(), count: count) }
            candidates.withUnsafeMutableBufferPointer { buffer in
                for token in 0..<count { buffer[token] = llama_token_data(id: Int32(token), logit: logits[token], p: 0) }
            }
        }
        func select() -> llama_token_data? {
            candidates.withUnsafeMutableBufferPointer { buffer -> llama_token_data? in
                var array = llama_token_data_array(data: buffer.baseAddress, size: buffer.count, selected: -1, sorted: false)
                llama_sampler_apply(chain, &array)
                guard array.selected >= 0, array.selected < array.size else { return nil }
                return array.data[Int(array.selected)]
            }
        }
        fill()
        guard var chosen = select() else { return .none }
        var single = llama_token_data(id: chosen.id, logit: 1, p: 0)
        let allowed = withUnsafeMutablePointer(to: &single) { pointer -> Bool in
            var array = llama_token_data_array(data: pointer, size: 1, selected: -1, sorted: false)
            llama_sampler_apply(grammar, &array)
            return array.data[0].logit.isFinite
        }
        if !allowed {
            fill()
            // The grammar marks each candidate on its own: slices give what one pass over all would.
            let finished = candidates.withUnsafeMutableBufferPointer { buffer -> Bool in
                var start = 0
                var slice = Self.slice
                while start < buffer.count {
                    let now = ContinuousClock.now
                    guard now < deadline else { return false }
                    let size = min(slice, buffer.count - start)
                    var array = llama_token_data_array(data: buffer.baseAddress! + start, size: size, selected: -1, sorted: false)
                    llama_sampler_apply(grammar, &array)
                    start += size
                    // A cheap grammar gets larger slices (each call sets the grammar up again).
                    if ContinuousClock.now - now < Self.cheapSlice { slice *= 4 }
                }
                return true
            }
            guard finished else { return .tooCostly }
            guard let again = select(), again.logit.isFinite else { return .none }
            chosen = again
        }
        llama_sampler_accept(chain, chosen.id)
        // The grammar ends at the end of generation; accepting one where it cannot end would abort.
        if !model.isEndOfGeneration(chosen.id) { llama_sampler_accept(grammar, chosen.id) }
        return .token(chosen.id)
    }

    /// Candidates the grammar checks between two looks at the clock, at first. Each call sets
    /// the grammar up again: a slice that took under `cheapSlice` makes the next four times
    /// larger (1,024 throughout decoded at 0.90 of llama-server's rate, growing slices at
    /// 1.04–1.11), while a costly grammar keeps small slices and its deadline.
    static let slice = 1024
    static let cheapSlice: Duration = .milliseconds(5)

    func free() {
        llama_sampler_free(chain)
        if let grammar { llama_sampler_free(grammar) }
    }
}

/// Whether `JSONSerialization` read `true` or `false` (on Linux an integer 0 or 1 also casts to
/// `Bool`): the one test the schema check and the OpenAI edge share.
public func isJSONBoolean(_ value: Any) -> Bool {
    (value as? NSNumber).map { String(cString: $0.objCType) == "c" } ?? false
}
