import Foundation
import Inference
import Serving

/// An OpenAI completion or chat completion request, read strictly: every field is honoured, or
/// is one that changes nothing here (`ignoredFields`), or is refused with 400 and OpenAI's error
/// object naming it (`param`; `code` `unsupported_parameter` or `invalid_value`). A field sent as
/// `null` is a field not sent, as OpenAI reads it.
struct OpenAIRequest {
    let model: String
    let input: GenerationRequest.Input
    let sampling: SamplingParameters
    let stream: Bool
    /// Choices: that many generations (`n`, 1 to `maxChoices`).
    let n: Int
    /// Whether `seed` was sent (choice i then gets seed + i; else each its own random one).
    let seedGiven: Bool

    static let maxChoices = 8

    /// Fields that change no answer here: accepted, recorded nowhere (docs/openai.md lists them).
    static let ignoredFields: Set<String> = [
        "user", "metadata", "store", "service_tier", "safety_identifier", "prompt_cache_key", "prompt_cache_retention",
        "prompt_cache_options",
    ]

    /// Fields of OpenAI's API that this server does not serve: refused as unsupported.
    static let unsupportedChat: Set<String> = [
        "audio", "function_call", "functions", "moderation", "prediction", "reasoning_effort", "verbosity", "web_search_options",
    ]

    /// `orderedParameters(i)`: tool i's parameters as sent, keys in order (the Responses API,
    /// translated into a chat request, names where they are in its own body).
    init(_ data: Data, chat: Bool, orderedParameters: ((Int) -> String?)? = nil) throws(EdgeError) {
        guard let parsed = try? JSONSerialization.jsonObject(with: data), let object = parsed as? [String: Any] else {
            throw EdgeError(.badUserInput, "the body must be a JSON \(chat ? "chat completion" : "completion") request")
        }
        var fields = Fields(object.filter { !($0.value is NSNull) })
        guard let model = try fields.string("model"), !model.isEmpty else { throw .parameter("model", "model is required") }
        self.model = model
        if chat {
            input = .messages(try Self.messages(&fields))
        } else {
            guard let prompt = try fields.take("prompt") else { throw .parameter("prompt", "prompt is required") }
            if let text = prompt as? String {
                input = .prompt(text)
            } else if let list = prompt as? [Any], list.count == 1, let text = list[0] as? String {
                input = .prompt(text)
            } else {
                throw .parameter("prompt", "prompt must be a string (or a list of one string); token arrays are not supported", unsupported: true)
            }
        }
        stream = try fields.bool("stream") ?? false
        // The last chunk carries usage whether or not `include_usage` asks for it.
        if let options = try fields.take("stream_options") {
            guard stream else { throw .parameter("stream_options", "stream_options needs stream: true") }
            guard let options = options as? [String: Any] else { throw .parameter("stream_options", "stream_options must be an object") }
            var inner = Fields(options.filter { !($0.value is NSNull) }, prefix: "stream_options.")
            _ = try inner.bool("include_usage")
            _ = try inner.bool("include_obfuscation")  // no obfuscation padding is ever sent
            try inner.refuseRest()
        }
        seedGiven = object["seed"] != nil && !(object["seed"] is NSNull)
        let n = try fields.integer("n") ?? 1
        guard (1...Self.maxChoices).contains(n) else { throw .parameter("n", "n must be between 1 and \(Self.maxChoices)") }
        self.n = n
        let text = String(decoding: data, as: UTF8.self)
        let ordered = orderedParameters ?? { OrderedJSON.text(at: ["tools", "\($0)", "function", "parameters"], in: text) }
        sampling = try Self.sampling(&fields, chat: chat, orderedParameters: ordered)
        if stream, sampling.logprobs != nil {
            throw .parameter("logprobs", "logprobs are served without stream only", unsupported: true)
        }
        if seedGiven, Int(sampling.seed) + n - 1 >= Int(UInt32.max) {
            throw .parameter("seed", "seed + n - 1 must be below 4294967295 (choice i gets seed + i)")
        }
        try Self.refuseUnserved(&fields, chat: chat)
        for name in Self.ignoredFields { _ = try fields.take(name) }
        try fields.refuseRest()
    }

    private static func messages(_ fields: inout Fields) throws(EdgeError) -> [ChatMessage] {
        guard let value = try fields.take("messages") else { throw .parameter("messages", "messages is required") }
        guard let list = value as? [Any], !list.isEmpty else { throw .parameter("messages", "messages must be a non-empty array") }
        var messages: [ChatMessage] = []
        for (index, item) in list.enumerated() {
            let param = "messages[\(index)]"
            guard let object = item as? [String: Any] else { throw .parameter(param, "\(param) must be an object") }
            var message = Fields(object.filter { !($0.value is NSNull) }, prefix: "\(param).")
            guard let role = try message.string("role") else { throw .parameter("\(param).role", "\(param).role is required") }
            switch role {
            case "system", "developer", "user", "assistant", "tool": break
            case "function":
                throw .parameter(
                    "\(param).role", "\(param): function messages (the deprecated function_call API) are not supported: use tool", unsupported: true)
            default: throw .parameter("\(param).role", "\(param).role must be system, developer, user, assistant or tool")
            }
            var calls: [ToolCall]?
            if role == "assistant", let value = try message.take("tool_calls") {
                calls = try Self.toolCalls(value, param: "\(param).tool_calls")
            }
            var toolCallID: String?
            if role == "tool" {
                guard let id = try message.string("tool_call_id"), !id.isEmpty else {
                    throw .parameter("\(param).tool_call_id", "\(param): a tool message needs the tool_call_id it answers")
                }
                toolCallID = id
            }
            // An assistant message that only calls tools has no content.
            let rawContent = try message.take("content")
            let content = rawContent == nil && !(calls ?? []).isEmpty ? "" : try Self.content(rawContent, param: "\(param).content")
            // The name of a participant changes nothing here (no template reads it).
            _ = try message.string("name")
            if role == "assistant" { _ = try message.take("refusal") }
            try message.refuseRest()
            // The developer role is the system role of models older than it (OpenAI maps it the same way).
            messages.append(ChatMessage(role: role == "developer" ? "system" : role, content: content, toolCalls: calls, toolCallID: toolCallID))
        }
        return messages
    }

    /// An assistant message's calls: `[{id, type: function, function: {name, arguments}}]`.
    private static func toolCalls(_ value: Any, param: String) throws(EdgeError) -> [ToolCall] {
        guard let list = value as? [Any], list.count <= 64 else { throw .parameter(param, "\(param) must be an array of at most 64 calls") }
        var calls: [ToolCall] = []
        for (index, item) in list.enumerated() {
            let at = "\(param)[\(index)]"
            guard let object = item as? [String: Any], object["type"] as? String == "function", let id = object["id"] as? String,
                let function = object["function"] as? [String: Any], let name = function["name"] as? String,
                let arguments = function["arguments"] as? String, Set(object.keys).isSubset(of: ["id", "type", "function"]),
                Set(function.keys).isSubset(of: ["name", "arguments"])
            else { throw .parameter(at, "\(at) must be {id, type: function, function: {name, arguments}}") }
            guard let parsed = try? JSONSerialization.jsonObject(with: Data(arguments.utf8), options: [.fragmentsAllowed]), parsed is [String: Any]
            else { throw .parameter("\(at).function.arguments", "\(at).function.arguments must be a JSON object as text") }
            calls.append(ToolCall(id: id, name: name, arguments: arguments))
        }
        return calls
    }

    /// `tools` (function tools), `tool_choice` and `parallel_tool_calls`; nil when no tool is offered.
    private static func tools(_ fields: inout Fields, orderedParameters: (Int) -> String?) throws(EdgeError) -> ToolUse? {
        let list = try fields.take("tools")
        let choiceValue = try fields.take("tool_choice")
        let parallel = try fields.bool("parallel_tool_calls")
        guard let tools = (list ?? [Any]()) as? [Any], tools.count <= ToolUse.maxFunctions else {
            throw .parameter("tools", "tools must be an array of at most \(ToolUse.maxFunctions) function tools")
        }
        if tools.isEmpty {
            if let choice = choiceValue, choice as? String != "none", choice as? String != "auto" {
                throw .parameter("tool_choice", "tool_choice needs tools")
            }
            return nil
        }
        var functions: [ToolFunction] = []
        for (index, item) in tools.enumerated() {
            let param = "tools[\(index)]"
            guard let object = item as? [String: Any], let type = object["type"] as? String else {
                throw .parameter(param, "\(param) must be {type: function, function: {...}}")
            }
            guard type == "function" else {
                throw .parameter("\(param).type", "\(param): \(type) tools are not supported (function only)", unsupported: true)
            }
            guard let function = object["function"] as? [String: Any], Set(object.keys) == ["type", "function"] else {
                throw .parameter(param, "\(param) must be {type: function, function: {name, description, parameters, strict}}")
            }
            var inner = Fields(function.filter { !($0.value is NSNull) }, prefix: "\(param).function.")
            guard let name = try inner.string("name"), ToolUse.isValidName(name) else {
                throw .parameter("\(param).function.name", "\(param).function.name is 1 to 64 letters, digits, '_' or '-'")
            }
            let description = try inner.string("description")
            // strict: false lets OpenAI's calls stray from the schema; here every call matches it.
            _ = try inner.bool("strict")
            let parameters = try inner.take("parameters") ?? ["type": "object", "properties": [String: Any]()] as [String: Any]
            try inner.refuseRest()
            // The schema as sent, keys in their order (the template prints it for the model).
            let sent = orderedParameters(index)
            guard parameters is [String: Any],
                let text = sent ?? (try? JSONSerialization.data(withJSONObject: parameters)).map({ String(decoding: $0, as: UTF8.self) })
            else {
                throw .parameter("\(param).function.parameters", "\(param).function.parameters must be a JSON Schema object")
            }
            functions.append(ToolFunction(name: name, description: description, parameters: text))
        }
        var choice = ToolUse.Choice.auto
        switch choiceValue {
        case nil: break
        case let text as String:
            switch text {
            case "auto": choice = .auto
            case "none": choice = .none
            case "required": choice = .required
            default: throw .parameter("tool_choice", "tool_choice must be auto, none, required or {type: function, function: {name}}")
            }
        case let object as [String: Any]:
            guard object["type"] as? String == "function", let function = object["function"] as? [String: Any],
                let name = function["name"] as? String, function.count == 1, object.count == 2
            else { throw .parameter("tool_choice", "tool_choice must be auto, none, required or {type: function, function: {name}}") }
            choice = .function(name)
        default:
            throw .parameter("tool_choice", "tool_choice must be auto, none, required or {type: function, function: {name}}")
        }
        if case .function(let name) = choice, !functions.contains(where: { $0.name == name }) {
            throw .parameter("tool_choice", "tool_choice names \(name), which is not among the tools")
        }
        do {
            return try ToolUse(functions: functions, choice: choice, parallel: parallel ?? true).checked()
        } catch {
            throw .parameter("tools", "\(error)")
        }
    }

    /// A message's content: a string, or text parts (`[{type: "text", text}]`) joined.
    private static func content(_ value: Any?, param: String) throws(EdgeError) -> String {
        guard let value else { throw .parameter(param, "\(param) is required") }
        if let text = value as? String { return text }
        guard let parts = value as? [Any], !parts.isEmpty else { throw .parameter(param, "\(param) must be a string or an array of parts") }
        var text = ""
        for (index, part) in parts.enumerated() {
            guard let object = part as? [String: Any], let type = object["type"] as? String else {
                throw .parameter("\(param)[\(index)]", "\(param)[\(index)] must be a part with a type")
            }
            guard type == "text" else {
                throw .parameter("\(param)[\(index)].type", "\(param)[\(index)]: \(type) parts are not supported (text only)", unsupported: true)
            }
            guard let piece = object["text"] as? String, Set(object.keys).isSubset(of: ["type", "text"]) else {
                throw .parameter("\(param)[\(index)]", "\(param)[\(index)] must be {type: text, text}")
            }
            text += piece
        }
        return text
    }

    private static func sampling(_ fields: inout Fields, chat: Bool, orderedParameters: (Int) -> String?) throws(EdgeError) -> SamplingParameters {
        var parameters = SamplingParameters()
        if let value = try fields.number("temperature") { parameters.temperature = value }
        if let value = try fields.number("top_p") { parameters.topP = value }
        if let value = try fields.integer("top_k") { parameters.topK = value }
        if let value = try fields.number("min_p") { parameters.minP = value }
        // llama-server's name and vLLM's for the same multiplicative penalty of the last 64 tokens.
        let repeatPenalty = try fields.number("repeat_penalty")
        let repetitionPenalty = try fields.number("repetition_penalty")
        if repeatPenalty != nil, repetitionPenalty != nil {
            throw .parameter("repetition_penalty", "give repeat_penalty or repetition_penalty, not both")
        }
        if let value = repeatPenalty ?? repetitionPenalty { parameters.repeatPenalty = value }
        parameters.presencePenalty = try fields.number("presence_penalty")
        parameters.frequencyPenalty = try fields.number("frequency_penalty")
        let maxTokens = try fields.integer("max_tokens")
        let maxCompletionTokens = chat ? try fields.integer("max_completion_tokens") : nil
        if maxTokens != nil, maxCompletionTokens != nil {
            throw .parameter("max_tokens", "give max_tokens or max_completion_tokens, not both")
        }
        if let value = maxCompletionTokens ?? maxTokens { parameters.maxTokens = value }
        if let value = try fields.take("stop") {
            if let one = value as? String {
                parameters.stop = [one]
            } else if let many = value as? [Any], let strings = many as? [String] {
                parameters.stop = strings
            } else {
                throw .parameter("stop", "stop must be a string or an array of strings")
            }
        }
        if let value = try fields.integer("seed") {
            do {
                parameters.seed = try SamplingParameters.seed(Int64(value))
            } catch {
                throw .parameter("seed", "seed must be between 0 and 4294967294")
            }
        }
        if let value = try fields.take("logit_bias") {
            guard let map = value as? [String: Any] else { throw .parameter("logit_bias", "logit_bias must map token ids to biases") }
            var biases: [SamplingParameters.LogitBias] = []
            for (key, bias) in map {
                guard let token = Int32(key), let number = bias as? NSNumber, !isJSONBoolean(number) else {
                    throw .parameter("logit_bias", "logit_bias must map token ids (strings of digits) to numbers")
                }
                biases.append(.init(token: token, bias: number.doubleValue))
            }
            parameters.logitBias = biases.sorted { $0.token < $1.token }
        }
        if chat {
            let wanted = try fields.bool("logprobs") ?? false
            let top = try fields.integer("top_logprobs")
            if top != nil, !wanted { throw .parameter("top_logprobs", "top_logprobs needs logprobs: true") }
            if wanted { parameters.logprobs = top ?? 0 }
        } else if let top = try fields.integer("logprobs") {
            parameters.logprobs = top
        }
        if let top = parameters.logprobs, !(0...SamplingParameters.maxTopLogprobs).contains(top) {
            throw .parameter(chat ? "top_logprobs" : "logprobs", "at most \(SamplingParameters.maxTopLogprobs) alternatives per token")
        }
        if let value = try fields.take("response_format") {
            parameters.constraint = try Self.responseFormat(value)
        }
        if parameters.constraint != nil, !parameters.stop.isEmpty {
            throw .parameter("stop", "stop sequences would cut an answer the response_format constrains")
        }
        parameters.tools = chat ? try Self.tools(&fields, orderedParameters: orderedParameters) : nil
        if let tools = parameters.tools, tools.choice != .none {
            if parameters.constraint != nil {
                throw .parameter("response_format", "response_format cannot be combined with tools (unless tool_choice is none)", unsupported: true)
            }
            if !parameters.stop.isEmpty { throw .parameter("stop", "stop sequences would cut a tool call") }
        }
        if let biases = parameters.logitBias {
            guard biases.count <= 300, biases.allSatisfy({ $0.token >= 0 && abs($0.bias) <= 100 }),
                Set(biases.map(\.token)).count == biases.count
            else { throw .parameter("logit_bias", "logit_bias maps at most 300 distinct token ids (from 0) to biases from -100 to 100") }
        }
        return parameters
    }

    /// `{type: text}`, `{type: json_object}` or `{type: json_schema, json_schema: {name, schema, strict, description}}`.
    private static func responseFormat(_ value: Any) throws(EdgeError) -> Constraint? {
        let param = "response_format"
        guard let object = value as? [String: Any], let type = object["type"] as? String else {
            throw .parameter(param, "response_format must be an object with a type")
        }
        do {
            switch type {
            case "text":
                guard object.count == 1 else { throw EdgeError.parameter(param, "response_format {type: text} takes no other field") }
                return nil
            case "json_object":
                guard object.count == 1 else { throw EdgeError.parameter(param, "response_format {type: json_object} takes no other field") }
                return try Constraint.jsonObject()
            case "json_schema":
                guard let format = object["json_schema"] as? [String: Any], Set(object.keys) == ["type", "json_schema"] else {
                    throw EdgeError.parameter(param, "response_format {type: json_schema} needs json_schema: {name, schema}")
                }
                var fields = Fields(format.filter { !($0.value is NSNull) }, prefix: "response_format.json_schema.")
                guard let name = try fields.string("name"), ToolUse.isValidName(name) else {
                    throw EdgeError.parameter(
                        "response_format.json_schema.name", "json_schema.name is required: up to 64 letters, digits, '_' or '-'")
                }
                _ = try fields.string("description")
                // strict: false lets OpenAI answer outside the schema; here every answer matches it.
                _ = try fields.bool("strict")
                let schema = try fields.take("schema") ?? ["type": "object"] as [String: Any]
                try fields.refuseRest()
                return try Constraint.jsonSchema(schema, name: name)
            default:
                throw EdgeError.parameter("response_format.type", "response_format.type must be text, json_object or json_schema")
            }
        } catch let error as EdgeError {
            throw error
        } catch let error as InferenceError {
            throw .parameter(param, "response_format: \(error.description)")
        } catch {
            throw .parameter(param, "response_format: \(error)")
        }
    }

    /// Fields of OpenAI's API not served here, refused unless sent with the value that asks for
    /// nothing (`modalities: ["text"]`, `best_of: 1`, `echo: false`).
    private static func refuseUnserved(_ fields: inout Fields, chat: Bool) throws(EdgeError) {
        if chat {
            if let modalities = try fields.take("modalities") {
                guard let list = modalities as? [String], list == ["text"] else {
                    throw .parameter("modalities", "modalities must be [\"text\"]", unsupported: true)
                }
            }
            for name in unsupportedChat.sorted() where try fields.take(name) != nil {
                throw .parameter(name, "\(name) is not supported by this server", unsupported: true)
            }
        } else {
            if let bestOf = try fields.integer("best_of"), bestOf != 1 { throw .parameter("best_of", "best_of must be 1", unsupported: true) }
            if let echo = try fields.bool("echo"), echo { throw .parameter("echo", "echo is not supported", unsupported: true) }
            if try fields.take("suffix") != nil { throw .parameter("suffix", "suffix (fill-in-the-middle) is not supported", unsupported: true) }
        }
    }
}

/// An OpenAI embeddings request (`POST /v1/embeddings`), read as strictly as the others.
struct OpenAIEmbeddingRequest {
    let model: String
    let texts: [String]
    /// `base64`: each vector as the bytes of its little-endian 32-bit floats.
    let base64: Bool

    init(_ data: Data) throws(EdgeError) {
        guard let parsed = try? JSONSerialization.jsonObject(with: data), let object = parsed as? [String: Any] else {
            throw EdgeError(.badUserInput, "the body must be a JSON embeddings request")
        }
        var fields = Fields(object.filter { !($0.value is NSNull) })
        guard let model = try fields.string("model"), !model.isEmpty else { throw .parameter("model", "model is required") }
        self.model = model
        guard let input = try fields.take("input") else { throw .parameter("input", "input is required") }
        if let text = input as? String {
            texts = [text]
        } else if let list = input as? [Any], !list.isEmpty, let strings = list as? [String] {
            texts = strings
        } else if input is [Any] {
            throw .parameter("input", "input must be a string or a non-empty array of strings; token arrays are not supported", unsupported: true)
        } else {
            throw .parameter("input", "input must be a string or a non-empty array of strings")
        }
        guard texts.allSatisfy({ !$0.isEmpty }) else { throw .parameter("input", "input must not hold an empty string") }
        switch try fields.string("encoding_format") ?? "float" {
        case "float": base64 = false
        case "base64": base64 = true
        default: throw .parameter("encoding_format", "encoding_format must be float or base64")
        }
        if try fields.integer("dimensions") != nil {
            throw .parameter("dimensions", "dimensions is not supported: a model's embeddings have its own width", unsupported: true)
        }
        _ = try fields.string("user")
        try fields.refuseRest()
    }
}

/// A JSON object's fields, taken one by one: what is left at the end was not read, and is refused.
struct Fields {
    private var remaining: [String: Any]
    private let prefix: String

    init(_ object: [String: Any], prefix: String = "") {
        remaining = object
        self.prefix = prefix
    }

    mutating func take(_ name: String) throws(EdgeError) -> Any? { remaining.removeValue(forKey: name) }

    mutating func string(_ name: String) throws(EdgeError) -> String? {
        guard let value = remaining.removeValue(forKey: name) else { return nil }
        guard let string = value as? String else { throw .parameter(prefix + name, "\(prefix + name) must be a string") }
        return string
    }

    mutating func bool(_ name: String) throws(EdgeError) -> Bool? {
        guard let value = remaining.removeValue(forKey: name) else { return nil }
        guard let number = value as? NSNumber, isJSONBoolean(number) else {
            throw .parameter(prefix + name, "\(prefix + name) must be true or false")
        }
        return number.boolValue
    }

    mutating func number(_ name: String) throws(EdgeError) -> Double? {
        guard let value = remaining.removeValue(forKey: name) else { return nil }
        guard let number = value as? NSNumber, !isJSONBoolean(number), number.doubleValue.isFinite else {
            throw .parameter(prefix + name, "\(prefix + name) must be a number")
        }
        return number.doubleValue
    }

    mutating func integer(_ name: String) throws(EdgeError) -> Int? {
        guard let value = try number(name) else { return nil }
        guard value == value.rounded(), abs(value) < 1e15 else {
            throw .parameter(prefix + name, "\(prefix + name) must be an integer within ±10^15")
        }
        return Int(value)
    }

    /// Refuses the first field not read (by name order).
    func refuseRest() throws(EdgeError) {
        guard let name = remaining.keys.sorted().first else { return }
        throw .parameter(prefix + name, "unknown parameter: \(prefix + name)", unsupported: true)
    }
}
