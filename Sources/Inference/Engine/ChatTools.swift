import CLlama
import Foundation

/// A function the model may call (OpenAI's `tools[].function`). `parameters` is its JSON Schema as
/// JSON text; the call's arguments are generated under the grammar llama.cpp builds from it.
public struct ToolFunction: Sendable, Hashable, Codable {
    public var name: String
    public var description: String?
    public var parameters: String

    public init(name: String, description: String? = nil, parameters: String) {
        self.name = name
        self.description = description
        self.parameters = parameters
    }
}

/// A call the model made: its id, the function's name and the arguments as JSON text.
public struct ToolCall: Sendable, Hashable, Codable {
    public var id: String
    public var name: String
    public var arguments: String

    public init(id: String, name: String, arguments: String) {
        self.id = id
        self.name = name
        self.arguments = arguments
    }
}

/// The tools of a chat and how the model may use them. Recorded with the answer (in the
/// sampling), so a replay renders the same prompt and enforces the same grammar.
public struct ToolUse: Sendable, Hashable, Codable {
    public enum Choice: Sendable, Hashable, Codable, CustomStringConvertible {
        /// The model answers in text or calls, as it likes.
        case auto
        /// The model answers in text (the tools are not shown to it: a model shown tools may
        /// write a call as text).
        case none
        /// The answer is one or more calls.
        case required
        /// The answer is a call of this function.
        case function(String)

        public var description: String {
            switch self {
            case .auto: "auto"
            case .none: "none"
            case .required: "required"
            case .function(let name): "function:\(name)"
            }
        }

        public init(from decoder: any Decoder) throws {
            let text = try decoder.singleValueContainer().decode(String.self)
            switch text {
            case "auto": self = .auto
            case "none": self = .none
            case "required": self = .required
            default:
                guard text.hasPrefix("function:") else {
                    throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "unknown tool choice \(text)"))
                }
                self = .function(String(text.dropFirst("function:".count)))
            }
        }

        public func encode(to encoder: any Encoder) throws {
            var container = encoder.singleValueContainer()
            try container.encode(description)
        }
    }

    public var functions: [ToolFunction]
    public var choice: Choice
    /// Whether one answer may hold several calls.
    public var parallel: Bool
    /// The date a template may print (seconds since 1970): the request's, kept for replays.
    public var date: Int64

    public static let maxFunctions = 64

    public init(functions: [ToolFunction], choice: Choice = .auto, parallel: Bool = true, date: Int64? = nil) {
        self.functions = functions
        self.choice = choice
        self.parallel = parallel
        self.date = date ?? Int64(Date().timeIntervalSince1970)
    }

    /// A name as OpenAI takes it (a function's, a response format's schema's): 1 to 64 letters,
    /// digits, '_' or '-'.
    public static func isValidName(_ name: String) -> Bool {
        !name.isEmpty && name.utf8.count <= 64 && name.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "_-".contains($0)) }
    }

    /// Checks names, the choice and each function's parameters (a JSON Schema object whose
    /// keywords the grammar enforces: `JSONSchemaKeywords`, as for `response_format`).
    public func checked() throws -> ToolUse {
        guard !functions.isEmpty, functions.count <= Self.maxFunctions else {
            throw InferenceError.badInput("tools: 1 to \(Self.maxFunctions) functions")
        }
        guard Set(functions.map(\.name)).count == functions.count else { throw InferenceError.badInput("tools: two functions share a name") }
        for function in functions {
            guard Self.isValidName(function.name) else {
                throw InferenceError.badInput("tools: a function's name is 1 to 64 letters, digits, '_' or '-'")
            }
            guard function.parameters.utf8.count <= Constraint.maxGrammarBytes,
                let schema = try? JSONSerialization.jsonObject(with: Data(function.parameters.utf8)), schema is [String: Any]
            else { throw InferenceError.badInput("tools: \(function.name): parameters must be a JSON Schema object") }
            if let type = (schema as? [String: Any])?["type"], type as? String != "object" {
                throw InferenceError.badInput("tools: \(function.name): parameters must describe an object (type: object)")
            }
            do {
                try JSONSchemaKeywords.check(schema, at: "#")
            } catch let error as InferenceError {
                throw InferenceError.badInput("tools: \(function.name): parameters: \(error.description)")
            }
        }
        if case .function(let name) = choice, !functions.contains(where: { $0.name == name }) {
            throw InferenceError.badInput("tool choice names \(name), which is not among the tools")
        }
        return self
    }

    /// The functions and choice as llama.cpp's chat code takes them: a named function is the
    /// only tool offered, and required.
    var offered: (functions: [ToolFunction], choice: String) {
        switch choice {
        case .auto: (functions, "auto")
        case .none: ([], "none")
        case .required: (functions, "required")
        case .function(let name): (functions.filter { $0.name == name }, "required")
        }
    }

    /// Whether the answer is read for calls.
    var callsPossible: Bool { choice != .none }
}

/// What the assistant said, read by the chat template family's parser: its text and its calls.
public struct AssistantMessage: Sendable, Hashable, Codable {
    public var content: String
    public var toolCalls: [ToolCall]

    public init(content: String, toolCalls: [ToolCall]) {
        self.content = content
        self.toolCalls = toolCalls
    }
}

/// A chat rendered by the model's Jinja template through llama.cpp's common chat code: the
/// prompt, the grammar of the calls (with its triggers) as `spec`, and how to read the answer.
struct RenderedChat: Sendable {
    let prompt: String
    /// The shim's JSON (grammar, laziness, triggers, generation prompt): `pedigree_chat_grammar` reads it.
    let spec: String
    let parser: ChatParser
    let stops: [String]
    /// Whether the answer is read for calls (else it is all content).
    let readsCalls: Bool
    /// At most one call.
    let single: Bool
}

/// Reads an answer in the format of a chat template family (llama.cpp's PEG parser, saved with
/// the rendering): its text and its calls.
struct ChatParser: Sendable, Hashable {
    let spec: String

    /// `partial`: the text may stop anywhere (a streaming answer). Nil when it does not parse.
    func parse(_ text: String, partial: Bool) -> AssistantMessage? {
        var error: UnsafeMutablePointer<CChar>?
        guard let result = pedigree_chat_parse(spec, text, partial ? 1 : 0, &error) else {
            pedigree_free(error)
            return nil
        }
        defer { pedigree_free(result) }
        guard let object = try? JSONSerialization.jsonObject(with: Data(String(cString: result).utf8)) as? [String: Any] else { return nil }
        let calls = (object["tool_calls"] as? [[String: Any]] ?? []).map { call in
            ToolCall(id: call["id"] as? String ?? "", name: call["name"] as? String ?? "", arguments: call["arguments"] as? String ?? "")
        }
        return AssistantMessage(content: object["content"] as? String ?? "", toolCalls: calls)
    }
}

/// An answer read while it is generated: its text is emitted as content only once the parser
/// says it is content (never the markup of a call); the calls are read at the end.
struct ChatStream {
    let parser: ChatParser
    /// One call at most (`parallel_tool_calls: false`): llama.cpp's grammar for templates that
    /// mark each call lets another follow, so the answer ends where a second one starts.
    let single: Bool
    private(set) var raw = ""
    private var emitted = ""
    /// Set once a second call started in a single-call answer: the generation ends.
    private(set) var ended = false
    /// Ids given to calls the parser names none for (one per call, random: not model output).
    private var ids: [String] = []

    init(parser: ChatParser, single: Bool) {
        self.parser = parser
        self.single = single
    }

    /// Adds generated text; returns the content that may be emitted now.
    mutating func feed(_ text: String) -> String {
        raw += text
        guard let message = parser.parse(raw, partial: true) else { return "" }
        if single, message.toolCalls.count > 1 { ended = true }
        return advance(to: message.content)
    }

    /// The whole answer read; the content not emitted yet. An answer the parser cannot read
    /// (a text cut by maxTokens mid-call) is all content.
    mutating func finish() -> (message: AssistantMessage, rest: String) {
        var message: AssistantMessage
        if let whole = parser.parse(raw, partial: false) {
            message = whole
        } else if var cut = parser.parse(raw, partial: true) {
            // Cut by maxTokens: a call whose arguments did not close is not a call.
            cut.toolCalls.removeAll { call in
                (try? JSONSerialization.jsonObject(with: Data(call.arguments.utf8))) as? [String: Any] == nil
            }
            message = cut
        } else {
            message = AssistantMessage(content: raw, toolCalls: [])
        }
        // With no call the answer is its text, whole: a read may hold back a tail that could
        // have opened a call.
        if message.toolCalls.isEmpty { message.content = raw }
        if single, message.toolCalls.count > 1 { message.toolCalls.removeSubrange(1...) }
        for index in message.toolCalls.indices where message.toolCalls[index].id.isEmpty {
            while ids.count <= index { ids.append("call_" + Self.randomID()) }
            message.toolCalls[index].id = ids[index]
        }
        return (message, advance(to: message.content))
    }

    /// The part of `content` past what was emitted (nothing when the parser revised earlier text).
    private mutating func advance(to content: String) -> String {
        guard content.hasPrefix(emitted), content.count > emitted.count else { return "" }
        let delta = String(content.dropFirst(emitted.count))
        emitted = content
        return delta
    }

    private static func randomID() -> String {
        let alphabet = Array("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
        return String((0..<24).map { _ in alphabet.randomElement()! })
    }
}

extension ChatMessage {
    /// Checks the calls and tool results of a chat: each call names a function as tools are
    /// named and has an id; each tool message answers a call made before it (the ids are the
    /// only link a template has between them).
    public static func checkToolHistory(_ messages: [ChatMessage]) throws {
        var called: Set<String> = []
        for (index, message) in messages.enumerated() {
            for call in message.toolCalls ?? [] {
                guard message.role == "assistant" else { throw InferenceError.badInput("messages[\(index)]: only an assistant makes tool calls") }
                guard ToolUse.isValidName(call.name) else {
                    throw InferenceError.badInput("messages[\(index)]: a call's function name is 1 to 64 letters, digits, '_' or '-'")
                }
                guard !call.id.isEmpty, call.id.utf8.count <= 256 else {
                    throw InferenceError.badInput("messages[\(index)]: a call's id is 1 to 256 bytes")
                }
                called.insert(call.id)
            }
            if message.role == "tool" {
                guard let id = message.toolCallID, called.contains(id) else {
                    throw InferenceError.badInput(
                        "messages[\(index)]: a tool message answers a call an assistant message made before it (tool_call_id)")
                }
            }
        }
    }

    /// The message as OpenAI's chat API writes it (what llama.cpp's chat code reads).
    var openAIObject: [String: Any] {
        var object: [String: Any] = ["role": role, "content": content]
        if let toolCalls, !toolCalls.isEmpty {
            object["tool_calls"] = toolCalls.map { call in
                ["id": call.id, "type": "function", "function": ["name": call.name, "arguments": call.arguments]] as [String: Any]
            }
        }
        if let toolCallID { object["tool_call_id"] = toolCallID }
        return object
    }
}

extension LlamaModel {
    /// Whether a chat needs the Jinja template (tools, calls or tool results in it); other chats
    /// keep llama.cpp's built-in rendering (`applyChatTemplate`).
    static func needsJinja(_ messages: [ChatMessage], tools: ToolUse?) -> Bool {
        tools != nil || messages.contains { $0.role == "tool" || !($0.toolCalls ?? []).isEmpty }
    }

    /// `messages` (and `tools`) rendered by the model's own Jinja chat template, ending where
    /// the assistant speaks.
    func renderChat(_ messages: [ChatMessage], tools: ToolUse?) throws -> RenderedChat {
        var request: [String: Any] = ["messages": messages.map(\.openAIObject)]
        var declared: [String] = []
        if let tools {
            let (functions, choice) = tools.offered
            // Written by hand: the template prints each schema, keys in the order they were sent.
            func quoted(_ text: String) throws -> String {
                String(decoding: try JSONSerialization.data(withJSONObject: text, options: [.fragmentsAllowed]), as: UTF8.self)
            }
            for function in functions {
                let description = try function.description.map { #""description":\#(try quoted($0)),"# } ?? ""
                declared.append(
                    #"{"type":"function","function":{"name":\#(try quoted(function.name)),\#(description)"parameters":\#(function.parameters)}}"#)
            }
            request["tool_choice"] = choice
            request["parallel_tool_calls"] = tools.parallel
            request["now"] = tools.date
        }
        var body = String(decoding: try JSONSerialization.data(withJSONObject: request, options: [.sortedKeys]), as: UTF8.self)
        if tools != nil { body = String(body.dropLast()) + #","tools":[\#(declared.joined(separator: ","))]}"# }
        var error: UnsafeMutablePointer<CChar>?
        guard let result = pedigree_chat_render(pointer, body, &error) else {
            defer { pedigree_free(error) }
            let message = error.map { String(cString: $0) } ?? "the chat could not be rendered"
            throw InferenceError.badInput("the model's chat template: \(message.prefix(400))")
        }
        defer { pedigree_free(result) }
        let spec = String(cString: result)
        guard let object = try JSONSerialization.jsonObject(with: Data(spec.utf8)) as? [String: Any],
            let prompt = object["prompt"] as? String, let parser = object["parser"] as? String
        else { throw InferenceError.badInput("the model's chat template gave no prompt") }
        return RenderedChat(
            prompt: prompt, spec: spec, parser: ChatParser(spec: parser), stops: object["stops"] as? [String] ?? [],
            readsCalls: tools?.callsPossible ?? false, single: !(tools?.parallel ?? true))
    }

    /// The grammar sampler of a rendered chat's calls; nil when it has none.
    func chatGrammar(_ chat: RenderedChat) throws -> UnsafeMutablePointer<llama_sampler>? {
        var error: UnsafeMutablePointer<CChar>?
        let sampler = pedigree_chat_grammar(pointer, chat.spec, &error)
        if let error {
            defer { pedigree_free(error) }
            let message = String(cString: error)
            throw InferenceError.badInput(
                message.contains("does not parse")
                    ? "llama.cpp refuses the grammar built from the tools' parameters (too many rules: lower maxItems, minItems or the recursion of $defs)"
                    : "the chat's tool-call grammar: \(message.prefix(400))")
        }
        return sampler
    }
}

extension GenerationRequest.Input {
    /// Whether a chat holds calls or tool results (which only a Jinja template renders).
    public var holdsToolMessages: Bool {
        guard case .messages(let messages) = self else { return false }
        return LlamaModel.needsJinja(messages, tools: nil)
    }
}

/// JSON read with its objects' keys in the order they were written (llama.cpp's JSON, through
/// the shim): what Foundation's parser cannot keep.
public enum OrderedJSON {
    /// The value at `path` (keys and array indices) in `json`, as JSON text; nil when there is none.
    public static func text(at path: [String], in json: String) -> String? {
        var error: UnsafeMutablePointer<CChar>?
        let pointers = path.map { strdup($0) }
        defer { for pointer in pointers { free(pointer) } }
        let result = pointers.map { UnsafePointer($0) }.withUnsafeBufferPointer { buffer in
            pedigree_json_at(json, buffer.baseAddress, Int32(buffer.count), &error)
        }
        pedigree_free(error)
        guard let result else { return nil }
        defer { pedigree_free(result) }
        return String(cString: result)
    }
}
