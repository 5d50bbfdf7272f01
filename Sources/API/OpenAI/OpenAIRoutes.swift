import Access
import ArtifactStore
import Foundation
import GitStore
import HTTPTypes
import Hummingbird
import Inference
import Ledger
import Lineage
import Logging
import NIOCore
import Serving
import Tracing

/// The OpenAI-compatible surface: `GET /v1/models`, `POST /v1/completions`,
/// `POST /v1/chat/completions` (`stream: true` → SSE chunks, then `data: [DONE]`). `model` is any
/// revision spec; answers name the canonical revision in `model` and in `X-Pedigree-Revision`,
/// and the answer's id in `id` and `X-Pedigree-Inference-Id`.
struct OpenAIRoutes: Sendable {
    let services: Services
    let logger: Logger

    func add(to group: RouterGroup<PedigreeRequestContext>) {
        group.get("v1/models") { _, context -> Response in
            try permit(.readLineage, context)
            let service = services.lineage
            let models = try await offload {
                try service.models().map { model in (model.name, try? service.lineage(model.name)) }
            }
            let data = models.map { name, revision -> [String: Any] in
                [
                    "id": name, "object": "model", "owned_by": "pedigree",
                    "created": Int(revision?.commit.author.date.timeIntervalSince1970 ?? 0),
                    "revision": revision?.id ?? NSNull(),
                ]
            }
            return jsonObject(.ok, ["object": "list", "data": data])
        }
        group.post("v1/completions") { request, context -> Response in
            try await handle(request, chat: false, context: context)
        }
        group.post("v1/chat/completions") { request, context -> Response in
            try await handle(request, chat: true, context: context)
        }
    }

    /// Refuses a key whose role lacks `permission` (403, before the body is read).
    private func permit(_ permission: Permission, _ context: PedigreeRequestContext) throws(AccessError) {
        guard context.principal.permits(permission) else {
            throw .forbidden("a key with role \(context.principal.role.rawValue) may not use this route")
        }
    }

    private func handle(_ request: Request, chat: Bool, context: PedigreeRequestContext) async throws -> Response {
        try permit(.generate, context)
        let buffer = try await RequestBody.collect(request, timeout: services.configuration.httpIdleTimeout)
        let body = try OpenAIRequest(Data(buffer.readableBytesView), chat: chat)
        let id = RecordID.make()
        let revision = try await withSpan("resolve") { _ in try await services.lineage.lineageOffloaded(body.model) }
        let started = try await services.inference.start(
            GenerationRequest(input: body.input, sampling: body.sampling), on: revision, by: context.caller, id: id)
        let created = Int(Date().timeIntervalSince1970)
        let headers: HTTPFields = [
            .contentType: body.stream ? "text/event-stream" : "application/json",
            .pedigreeRevision: revision.id, .pedigreeInferenceID: id,
        ]
        let object = chat ? "chat.completion" : "text_completion"
        @Sendable func choice(text: String?, finish: String?, delta: Bool) -> [String: Any] {
            var choice: [String: Any] = ["index": 0, "finish_reason": finish ?? NSNull()]
            if chat {
                choice[delta ? "delta" : "message"] = text.map { ["role": "assistant", "content": $0] } ?? [:]
            } else {
                choice["text"] = text ?? ""
                choice["logprobs"] = NSNull()
            }
            return choice
        }
        guard body.stream else {
            var answer: InferenceAnswer?
            for try await event in started { if case .payload(let done) = event { answer = done } }
            guard let summary = answer?.summary else { throw CancellationError() }
            return jsonObject(
                .ok,
                [
                    "id": id, "object": object, "created": created, "model": revision.id,
                    "choices": [choice(text: summary.text, finish: summary.finishReason.rawValue, delta: false)],
                    "usage": usage(summary), "system_fingerprint": "pedigree-seed-\(summary.seed)",
                ], headers: headers)
        }
        let chunkObject = chat ? "chat.completion.chunk" : "text_completion"
        let events = untilClosed(started, context.channel)
        return Response(
            status: .ok, headers: headers,
            body: ResponseBody { writer in
                func send(_ value: [String: Any]) async throws {
                    var buffer = ByteBuffer(string: "data: ")
                    buffer.writeBytes(try JSONSerialization.data(withJSONObject: value, options: [.sortedKeys]))
                    buffer.writeString("\n\n")
                    try await writer.write(buffer)
                }
                do {
                    for try await event in events {
                        switch event {
                        case .token(let text):
                            try await send([
                                "id": id, "object": chunkObject, "created": created, "model": revision.id,
                                "choices": [choice(text: text, finish: nil, delta: true)],
                            ])
                        case .payload(let answer):
                            let summary = answer.summary
                            try await send([
                                "id": id, "object": chunkObject, "created": created, "model": revision.id,
                                "choices": [choice(text: nil, finish: summary.finishReason.rawValue, delta: true)], "usage": usage(summary),
                            ])
                        }
                    }
                } catch let error as InferenceError {
                    let (code, message) = ErrorCode.classify(error)
                    try await send(["error": ["message": message, "code": code.rawValue]])
                }
                try await writer.write(ByteBuffer(string: "data: [DONE]\n\n"))
                try await writer.finish(nil)
            })
    }

    private func usage(_ summary: GenerationSummary) -> [String: Any] {
        [
            "prompt_tokens": summary.promptTokenCount, "completion_tokens": summary.completionTokenCount,
            "total_tokens": summary.promptTokenCount + summary.completionTokenCount,
            "prompt_tokens_details": ["cached_tokens": summary.cachedPromptTokens],
        ]
    }

    private func jsonObject(_ status: HTTPResponse.Status, _ value: [String: Any], headers: HTTPFields = [:]) -> Response {
        var headers = headers
        headers[.contentType] = "application/json"
        let data = (try? JSONSerialization.data(withJSONObject: value, options: [.sortedKeys])) ?? Data("{}".utf8)
        return Response(status: status, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: data)))
    }
}

extension HTTPField.Name {
    /// The canonical revision an OpenAI-compatible answer came from.
    static let pedigreeRevision = Self("X-Pedigree-Revision")!
    /// The ledger id of an OpenAI-compatible answer.
    static let pedigreeInferenceID = Self("X-Pedigree-Inference-Id")!
}
