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
        return String(cString: converted)
    }
}

/// The JSON Schema keywords llama.cpp's converter enforces, and those that change no answer
/// (annotations). Anything else is refused by name: the converter would ignore it.
enum JSONSchemaKeywords {
    static let annotations: Set<String> = [
        "title", "description", "default", "examples", "$schema", "$id", "$comment", "deprecated", "readOnly", "writeOnly",
    ]
    static let enforced: Set<String> = [
        "type", "properties", "required", "additionalProperties", "items", "prefixItems", "minItems", "maxItems", "anyOf", "oneOf",
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
        if let flag = node as? NSNumber, String(cString: flag.objCType) == "c" { return }
        guard let object = node as? [String: Any] else { throw refuse("a schema must be an object", at: path) }
        for key in object.keys.sorted() where !enforced.contains(key) && !annotations.contains(key) {
            throw refuse("the keyword '\(key)' is not supported", at: path)
        }
        let constraints = Set(object.keys).subtracting(annotations)
        // The converter reads $ref, then anyOf/oneOf, alone: what sits beside them would be dropped.
        for alone in ["$ref", "anyOf", "oneOf"] where object[alone] != nil {
            let beside = constraints.subtracting([alone, "$defs", "definitions"])
            if let other = beside.sorted().first { throw refuse("'\(other)' beside '\(alone)' is not supported", at: path) }
        }
        // A string's pattern, else its format, else its length: the converter enforces one of them.
        for (first, second) in [
            ("pattern", "format"), ("pattern", "minLength"), ("pattern", "maxLength"), ("format", "minLength"), ("format", "maxLength"),
        ]
        where object[first] != nil && object[second] != nil {
            throw refuse("'\(second)' beside '\(first)' is not supported", at: path)
        }
        if object["items"] != nil, object["prefixItems"] != nil { throw refuse("'items' beside 'prefixItems' is not supported", at: path) }
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
            for unsupported in ["(?=", "(?!", "(?<", "\\b", "\\B"] where pattern.contains(unsupported) {
                throw refuse("a pattern with '\(unsupported)' is not supported", at: path)
            }
            if pattern.range(of: #"\\[1-9]"#, options: .regularExpression) != nil { throw refuse("back-references are not supported", at: path) }
        }
        for key in ["properties", "$defs", "definitions"] {
            guard let children = object[key] else { continue }
            guard let children = children as? [String: Any] else { throw refuse("'\(key)' must be an object", at: path) }
            for (name, child) in children.sorted(by: { $0.key < $1.key }) { try check(child, at: "\(path)/\(key)/\(name)", depth: depth + 1) }
        }
        for key in ["anyOf", "oneOf", "prefixItems"] {
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

    private static func refuse(_ message: String, at path: String) -> InferenceError {
        InferenceError.badInput("JSON Schema at \(path): \(message)")
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

    /// Throws `badInput` when the grammar does not parse.
    init(_ parameters: SamplingParameters, model: LlamaModel) throws {
        if let constraint = parameters.constraint {
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
    static func check(_ parameters: SamplingParameters, model: LlamaModel) throws {
        if let bias = parameters.logitBias?.first(where: { $0.token >= model.vocabularySize }) {
            throw InferenceError.badInput("logitBias: token \(bias.token) is not in the model's \(model.vocabularySize)-token vocabulary")
        }
        guard parameters.constraint != nil else { return }
        try Sampler(parameters, model: model).free()
    }

    /// The next token from the logits at `index`; nil when the grammar allows no token at all.
    /// `candidates` is scratch space the caller keeps between calls.
    func sample(context: OpaquePointer, index: Int32, model: LlamaModel, candidates: inout [llama_token_data]) -> Int32? {
        guard let grammar else { return llama_sampler_sample(chain, context, index) }
        guard let logits = llama_get_logits_ith(context, index) else { return nil }
        let count = Int(model.vocabularySize)
        func fill() {
            candidates.removeAll(keepingCapacity: true)
            for token in 0..<count { candidates.append(llama_token_data(id: Int32(token), logit: logits[token], p: 0)) }
        }
        func run(_ samplers: [UnsafeMutablePointer<llama_sampler>]) -> llama_token_data? {
            candidates.withUnsafeMutableBufferPointer { buffer -> llama_token_data? in
                var array = llama_token_data_array(data: buffer.baseAddress, size: buffer.count, selected: -1, sorted: false)
                for sampler in samplers { llama_sampler_apply(sampler, &array) }
                guard array.selected >= 0, array.selected < array.size else { return nil }
                return array.data[Int(array.selected)]
            }
        }
        fill()
        guard var chosen = run([chain]) else { return nil }
        var single = llama_token_data(id: chosen.id, logit: 1, p: 0)
        let allowed = withUnsafeMutablePointer(to: &single) { pointer -> Bool in
            var array = llama_token_data_array(data: pointer, size: 1, selected: -1, sorted: false)
            llama_sampler_apply(grammar, &array)
            return array.data[0].logit.isFinite
        }
        if !allowed {
            fill()
            guard let again = run([grammar, chain]), again.logit.isFinite else { return nil }
            chosen = again
        }
        llama_sampler_accept(chain, chosen.id)
        // The grammar ends at the end of generation; accepting one where it cannot end would abort.
        if !model.isEndOfGeneration(chosen.id) { llama_sampler_accept(grammar, chosen.id) }
        return chosen.id
    }

    func free() {
        llama_sampler_free(chain)
        if let grammar { llama_sampler_free(grammar) }
    }
}
