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
                guard let role = item["role"].string, let content = item["content"].string else {
                    throw ServingError(.badUserInput, "every message needs a role and content")
                }
                return ChatMessage(role: role, content: content)
            }
        }
        let source: GenerationRequest.Input
        switch (prompt, messages) {
        case (let prompt?, nil): source = .prompt(prompt)
        case (nil, let messages?): source = .messages(messages)
        default: throw ServingError(.badUserInput, "give exactly one of prompt and messages")
        }
        let sampling = input["sampling"]
        var parameters = SamplingParameters()
        if let value = sampling["temperature"].double { parameters.temperature = value }
        if let value = sampling["topK"].int { parameters.topK = value }
        if let value = sampling["topP"].double { parameters.topP = value }
        if let value = sampling["minP"].double { parameters.minP = value }
        if let value = sampling["repeatPenalty"].double { parameters.repeatPenalty = value }
        if let value = sampling["maxTokens"].int { parameters.maxTokens = value }
        if let value = sampling["stop"].array { parameters.stop = value.compactMap(\.string) }
        if let value = sampling["seed"].int { parameters.seed = try SamplingParameters.seed(Int64(value)) }
        request = GenerationRequest(input: source, sampling: parameters)
    }
}
