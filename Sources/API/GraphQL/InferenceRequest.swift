import Foundation
import GraphQL
import Inference
import Lineage

/// An `InferenceInput` read from GraphQL arguments and checked: exactly one of `prompt` and
/// `messages`, sampling values of the right types (ranges are checked by `Inference`).
struct InferenceRequest: Sendable {
    let spec: String
    let request: GenerationRequest

    init(_ input: Map) throws {
        guard let spec = input["modelRevisionID"].string, !spec.isEmpty else {
            throw APIError(.badUserInput, "modelRevisionID is required")
        }
        self.spec = spec
        let prompt = input["prompt"].string
        let messages = try input["messages"].array.map { list in
            try list.map { item -> ChatMessage in
                guard let role = item["role"].string, let content = item["content"].string else {
                    throw APIError(.badUserInput, "every message needs a role and content")
                }
                return ChatMessage(role: role, content: content)
            }
        }
        let source: GenerationRequest.Input
        switch (prompt, messages) {
        case (let prompt?, nil): source = .prompt(prompt)
        case (nil, let messages?): source = .messages(messages)
        default: throw APIError(.badUserInput, "give exactly one of prompt and messages")
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
        if let value = sampling["seed"].int {
            guard value >= 0, value < Int(UInt32.max) else { throw APIError(.badUserInput, "seed must be between 0 and 4294967294") }
            parameters.seed = UInt32(value)
        }
        request = GenerationRequest(input: source, sampling: parameters)
    }

    /// Resolves the spec, generates, and returns the answer with the revision's lineage.
    func run(on loader: RequestLoader) async throws -> InferenceAnswer {
        let revision = try loader.lineage(spec)
        let stream = try await loader.models.generate(request, on: revision)
        let summary = try await GenerationSummary.collect(stream)
        return InferenceAnswer(id: InferenceAnswer.newID(), revision: revision, summary: summary)
    }
}

extension InferenceRequest {
    /// What `inferStream` yields: text, then the payload.
    enum Event: Sendable {
        case token(String)
        case payload(InferenceAnswer)
    }

    /// Resolves the spec and starts a generation whose events arrive on the stream. Ending the
    /// stream early (the client left) cancels the generation and frees its slot.
    func stream(on loader: RequestLoader) async throws -> AsyncThrowingStream<Event, any Error> {
        let revision = try loader.lineage(spec)
        let generation = try await loader.models.generate(request, on: revision)
        let id = InferenceAnswer.newID()
        return AsyncThrowingStream { continuation in
            let task = Task {
                do {
                    for try await event in generation {
                        switch event {
                        case .token(let text): continuation.yield(.token(text))
                        case .finished(let summary): continuation.yield(.payload(InferenceAnswer(id: id, revision: revision, summary: summary)))
                        }
                    }
                    continuation.finish()
                } catch {
                    continuation.finish(throwing: error)
                }
            }
            continuation.onTermination = { _ in task.cancel() }
        }
    }
}

/// One answer: what `InferencePayload` shows.
struct InferenceAnswer: Sendable {
    let id: String
    let revision: ModelLineage
    let summary: GenerationSummary

    /// A time-sortable id: milliseconds since 1970 in hex, then random bits.
    static func newID() -> String {
        let millis = UInt64(Date().timeIntervalSince1970 * 1000)
        return String(format: "inf_%012llx%016llx", millis, UInt64.random(in: 0...UInt64.max))
    }
}
