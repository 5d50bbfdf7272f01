import Foundation
import GraphQL
import Inference
import Serving

/// An `InferenceInput` read from GraphQL arguments and checked: exactly one of `prompt` and
/// `messages`, sampling values of the right types (ranges are checked by `Inference`).
struct InferenceRequest: Sendable {
    let spec: String
    let request: GenerationRequest

    init(_ input: Map) throws {
        guard let spec = input["modelRevisionID"].string, !spec.isEmpty else {
            throw ServingError(.badUserInput, "modelRevisionID is required")
        }
        self.spec = spec
        let prompt = input["prompt"].string
        let messages = try input["messages"].array.map { list in
            try list.map { item -> ChatMessage in
                let calls = try item["toolCalls"].array.map { calls in
                    try calls.map { call -> ToolCall in
                        guard let id = call["id"].string, let name = call["name"].string, let arguments = call["arguments"].string,
                            (try? JSONSerialization.jsonObject(with: Data(arguments.utf8))) is [String: Any]
                        else { throw ServingError(.badUserInput, "a tool call needs an id, a name and arguments (a JSON object's text)") }
                        return ToolCall(id: id, name: name, arguments: arguments)
                    }
                }
                guard let role = item["role"].string, let content = item["content"].string ?? (calls?.isEmpty == false ? "" : nil) else {
                    throw ServingError(.badUserInput, "every message needs a role and content (an assistant's calls may stand for its content)")
                }
                guard role != "tool" || item["toolCallID"].string != nil else {
                    throw ServingError(.badUserInput, "a tool message needs the toolCallID it answers")
                }
                return ChatMessage(role: role, content: content, toolCalls: calls, toolCallID: item["toolCallID"].string)
            }
        }
        let source: GenerationRequest.Input
        switch (prompt, messages) {
        case (let prompt?, nil): source = .prompt(prompt)
        case (nil, let messages?): source = .messages(messages)
        default: throw ServingError(.badUserInput, "give exactly one of prompt and messages")
        }
        var parameters = try Self.sampling(input["sampling"])
        if case .dictionary = input["constraint"] { parameters.constraint = try Self.constraint(input["constraint"]) }
        parameters.tools = try Self.tools(input)
        request = GenerationRequest(input: source, sampling: parameters)
    }

    /// A `SamplingInput` (ranges are checked by `Inference`); `defaults` for what it does not give.
    static func sampling(_ sampling: Map, defaults: SamplingParameters = SamplingParameters()) throws -> SamplingParameters {
        var parameters = defaults
        if let value = sampling["temperature"].double { parameters.temperature = value }
        if let value = sampling["topK"].int { parameters.topK = value }
        if let value = sampling["topP"].double { parameters.topP = value }
        if let value = sampling["minP"].double { parameters.minP = value }
        if let value = sampling["repeatPenalty"].double { parameters.repeatPenalty = value }
        if let value = sampling["maxTokens"].int { parameters.maxTokens = value }
        if let value = sampling["stop"].array { parameters.stop = value.compactMap(\.string) }
        if let value = sampling["seed"].int { parameters.seed = try SamplingParameters.seed(Int64(value)) }
        if let value = sampling["logprobs"].int { parameters.logprobs = value }
        if let value = sampling["presencePenalty"].double { parameters.presencePenalty = value }
        if let value = sampling["frequencyPenalty"].double { parameters.frequencyPenalty = value }
        if let list = sampling["logitBias"].array {
            parameters.logitBias = try list.map { item in
                guard let token = item["token"].int, let bias = item["bias"].double, let id = Int32(exactly: token) else {
                    throw ServingError(.badUserInput, "logitBias entries need a token and a bias")
                }
                return SamplingParameters.LogitBias(token: id, bias: bias)
            }.sorted { $0.token < $1.token }
        }
        return parameters
    }

    /// `tools`, `toolChoice` and `parallelToolCalls`; nil when no tool is offered.
    private static func tools(_ input: Map) throws -> ToolUse? {
        guard let list = input["tools"].array, !list.isEmpty else {
            if let choice = input["toolChoice"].string, choice != "auto", choice != "none" {
                throw ServingError(.badUserInput, "toolChoice needs tools")
            }
            return nil
        }
        let functions = try list.map { tool -> ToolFunction in
            guard let name = tool["name"].string else { throw ServingError(.badUserInput, "a tool needs a name") }
            return ToolFunction(
                name: name, description: tool["description"].string, parameters: tool["parameters"].string ?? #"{"type":"object","properties":{}}"#)
        }
        let choice: ToolUse.Choice
        switch input["toolChoice"].string {
        case nil, "auto": choice = .auto
        case "none": choice = .none
        case "required": choice = .required
        case let name?: choice = .function(name)
        }
        do {
            return try ToolUse(functions: functions, choice: choice, parallel: input["parallelToolCalls"].bool ?? true).checked()
        } catch let error as InferenceError {
            throw ServingError(.badUserInput, error.description)
        }
    }

    static func constraint(_ input: Map) throws -> Constraint {
        do {
            switch input["type"].string {
            case "json_object":
                return try Constraint.jsonObject()
            case "json_schema":
                guard let text = input["schema"].string, let schema = try? JSONSerialization.jsonObject(with: Data(text.utf8)) else {
                    throw ServingError(.badUserInput, "constraint: json_schema needs schema, a JSON Schema as JSON text")
                }
                return try Constraint.jsonSchema(schema, name: input["name"].string)
            case "grammar":
                guard let grammar = input["grammar"].string else { throw ServingError(.badUserInput, "constraint: grammar needs grammar (GBNF)") }
                return try Constraint.grammar(grammar)
            default:
                throw ServingError(.badUserInput, "constraint.type must be json_object, json_schema or grammar")
            }
        } catch let error as InferenceError {
            throw ServingError(.badUserInput, "constraint: \(error.description)")
        }
    }
}
