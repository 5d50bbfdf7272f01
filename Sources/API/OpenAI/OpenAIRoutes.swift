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
        // One model: `{id}` is any revision spec; the answer adds the revision's lineage summary.
        group.get("v1/models/{id}") { _, context -> Response in
            try permit(.readLineage, context)
            // Clients percent-encode the spec's '#' and '@' in the path.
            let raw = try context.parameters.require("id")
            let spec = raw.removingPercentEncoding ?? raw
            let revision = try await services.lineage.lineageOffloaded(spec)
            let service = services.lineage
            let (versions, stages) = try await offload { () -> ([String], [String]) in
                let registry = try service.registry()
                let name = revision.model.name
                let versions = registry.versions(of: name).filter { $0.commit == revision.commit.sha }.map(\.name)
                let stages = registry.stages(of: name).filter { registry.stage($0, of: name) == revision.commit.sha }
                return (versions, stages)
            }
            return jsonObject(
                .ok,
                [
                    "id": spec, "object": "model", "owned_by": "pedigree", "created": Int(revision.commit.author.date.timeIntervalSince1970),
                    "revision": revision.id, "commit": revision.commit.sha, "md5": revision.artifact.md5, "size": revision.artifact.size,
                    "versions": versions, "stages": stages, "pipeline": revision.pipeline.map(\.name),
                    "datasets": revision.datasets.map { ["path": $0.path, "md5": $0.md5] },
                ])
        }
        group.post("v1/embeddings") { request, context -> Response in
            try permit(.generate, context)
            let buffer = try await RequestBody.collect(request, timeout: services.configuration.httpIdleTimeout)
            let body = try OpenAIEmbeddingRequest(Data(buffer.readableBytesView))
            let revision = try await withSpan("resolve") { _ in try await services.lineage.lineageOffloaded(body.model) }
            let embeddings = try await services.inference.embed(body.texts, on: revision)
            let tokens = embeddings.reduce(0) { $0 + $1.tokens }
            let data = embeddings.enumerated().map { index, embedding -> [String: Any] in
                let vector: Any =
                    body.base64
                    ? embedding.vector.withUnsafeBytes { Data($0) }.base64EncodedString() : embedding.vector.map(Double.init)
                return ["object": "embedding", "index": index, "embedding": vector]
            }
            return jsonObject(
                .ok, ["object": "list", "data": data, "model": revision.id, "usage": ["prompt_tokens": tokens, "total_tokens": tokens]],
                headers: [.pedigreeRevision: revision.id])
        }
        group.post("v1/completions") { request, context -> Response in
            try await handle(request, chat: false, context: context)
        }
        group.post("v1/chat/completions") { request, context -> Response in
            try await handle(request, chat: true, context: context)
        }
        group.post("v1/responses") { request, context -> Response in
            try await respond(request, context: context)
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
        let revision = try await withSpan("resolve") { _ in try await services.lineage.lineageOffloaded(body.model) }
        // n choices: n generations, each recorded with its own id and seed (an explicit seed s
        // gives choice i the seed s + i: each equals a single request with that seed).
        var started: [(id: String, events: AsyncThrowingStream<InferenceService.Event, any Error>)] = []
        for index in 0..<body.n {
            var sampling = body.sampling
            if index > 0 { sampling.seed = body.seedGiven ? body.sampling.seed + UInt32(index) : SamplingParameters().seed }
            let id = RecordID.make()
            let events = try await services.inference.start(
                GenerationRequest(input: body.input, sampling: sampling), on: revision, by: context.caller, id: id)
            started.append((id, events))
        }
        let id = started[0].id
        let ids = started.map(\.id)
        let created = Int(Date().timeIntervalSince1970)
        let headers: HTTPFields = [
            .contentType: body.stream ? "text/event-stream" : "application/json",
            .pedigreeRevision: revision.id, .pedigreeInferenceID: ids.joined(separator: ","),
        ]
        let object = chat ? "chat.completion" : "text_completion"
        @Sendable func choice(
            _ index: Int, text: String?, finish: String?, delta: Bool, logprobs: [TokenLogprob]? = nil, calls: [ToolCall] = [],
            seed: UInt32? = nil
        ) -> [String: Any] {
            var choice: [String: Any] = ["index": index, "finish_reason": finish ?? NSNull()]
            // The seed the choice was drawn with (each its own): send it back to get the same answer.
            if let seed { choice["seed"] = Int(seed) }
            if chat {
                var message: [String: Any] = text.map { ["role": "assistant", "content": $0] } ?? [:]
                if !calls.isEmpty {
                    // A message of calls only has no content (null), as OpenAI writes it.
                    if !delta, text?.isEmpty ?? true { message["content"] = NSNull() }
                    message["role"] = "assistant"
                    message["tool_calls"] = calls.enumerated().map { position, call -> [String: Any] in
                        var entry: [String: Any] = [
                            "id": call.id, "type": "function", "function": ["name": call.name, "arguments": call.arguments],
                        ]
                        if delta { entry["index"] = position }
                        return entry
                    }
                }
                choice[delta ? "delta" : "message"] = message
                choice["logprobs"] = logprobs.map(Self.chatLogprobs) ?? NSNull()
            } else {
                choice["text"] = text ?? ""
                choice["logprobs"] = logprobs.map(Self.completionLogprobs) ?? NSNull()
            }
            if ids.count > 1 { choice["inference_id"] = ids[index] }
            return choice
        }
        let events = untilClosed(Self.merged(started.map(\.events)), context.channel)
        guard body.stream else {
            var summaries = [GenerationSummary?](repeating: nil, count: ids.count)
            var receipts = [String?](repeating: nil, count: ids.count)
            for try await (index, event) in events {
                if case .payload(let done) = event {
                    summaries[index] = done.summary
                    receipts[index] = done.receipt
                }
            }
            let done = summaries.compactMap { $0 }
            guard done.count == ids.count else { throw CancellationError() }
            var headers = headers
            // Each choice's signed receipt (base64 of its DSSE envelope), in choice order, while they
            // fit 16 KiB (about three choices; a proxy in front needs header buffers that large, e.g.
            // nginx's proxy_buffer_size 16k); else `Inference.receipt` has them.
            let signed = receipts.compactMap { $0.map { Data($0.utf8).base64EncodedString() } }.joined(separator: ", ")
            if receipts.allSatisfy({ $0 != nil }), signed.utf8.count <= 16_384, let name = HTTPField.Name("Pedigree-Receipt") {
                headers[name] = signed
            }
            return jsonObject(
                .ok,
                [
                    "id": id, "object": object, "created": created, "model": revision.id,
                    "choices": done.enumerated().map {
                        choice(
                            $0, text: $1.message?.content ?? $1.text, finish: Self.finishReason($1), delta: false, logprobs: $1.logprobs,
                            calls: $1.message?.toolCalls ?? [], seed: $1.seed)
                    },
                    "usage": usage(done), "system_fingerprint": "pedigree-seed-\(done[0].seed)",
                ], headers: headers)
        }
        let chunkObject = chat ? "chat.completion.chunk" : "text_completion"
        return Response(
            status: .ok, headers: headers,
            body: ResponseBody { writer in
                func send(_ value: [String: Any]) async throws {
                    var buffer = ByteBuffer(string: "data: ")
                    buffer.writeBytes(try JSONSerialization.data(withJSONObject: value, options: [.sortedKeys]))
                    buffer.writeString("\n\n")
                    try await writer.write(buffer)
                }
                var finished: [GenerationSummary] = []
                do {
                    for try await (index, event) in events {
                        switch event {
                        case .token(let text):
                            try await send([
                                "id": id, "object": chunkObject, "created": created, "model": revision.id,
                                "choices": [choice(index, text: text, finish: nil, delta: true)],
                            ])
                        case .payload(let answer):
                            // One choice: its last chunk carries the usage. Several: a chunk of
                            // usage alone ends the stream, as OpenAI's include_usage does.
                            let summary = answer.summary
                            finished.append(summary)
                            // A tool chat's calls are read once the answer is whole: one delta
                            // each (its id, name and all its arguments), then the finish.
                            if let calls = summary.message?.toolCalls, !calls.isEmpty {
                                try await send([
                                    "id": id, "object": chunkObject, "created": created, "model": revision.id,
                                    "choices": [choice(index, text: nil, finish: nil, delta: true, calls: calls)],
                                ])
                            }
                            var chunk: [String: Any] = [
                                "id": id, "object": chunkObject, "created": created, "model": revision.id,
                                "choices": [choice(index, text: nil, finish: Self.finishReason(summary), delta: true, seed: summary.seed)],
                            ]
                            if ids.count == 1 { chunk["usage"] = usage([summary]) }
                            try await send(chunk)
                        }
                    }
                    if ids.count > 1 {
                        try await send([
                            "id": id, "object": chunkObject, "created": created, "model": revision.id, "choices": [] as [Any],
                            "usage": usage(finished),
                        ])
                    }
                } catch let error as InferenceError {
                    let (code, message) = ErrorCode.classify(error)
                    try await send(["error": ["message": message, "code": code.rawValue]])
                }
                try await writer.write(ByteBuffer(string: "data: [DONE]\n\n"))
                try await writer.finish(nil)
            })
    }

    /// `tool_calls` when the answer is calls, else how the generation ended.
    private static func finishReason(_ summary: GenerationSummary) -> String {
        if summary.finishReason == .stop, !(summary.message?.toolCalls ?? []).isEmpty { return "tool_calls" }
        return summary.finishReason.rawValue
    }

    /// OpenAI's chat `logprobs`: per token its text, bytes, log-probability and alternatives.
    private static func chatLogprobs(_ tokens: [TokenLogprob]) -> [String: Any] {
        func entry(_ token: TokenLogprob.Alternative) -> [String: Any] {
            ["token": token.text, "logprob": token.logprob, "bytes": token.bytes.map(Int.init)]
        }
        let content = tokens.map { token -> [String: Any] in
            var item = entry(token.chosen)
            item["top_logprobs"] = token.top.map(entry)
            return item
        }
        return ["content": content, "refusal": NSNull()]
    }

    /// The legacy completions' `logprobs`: parallel lists, alternatives as text → log-probability.
    private static func completionLogprobs(_ tokens: [TokenLogprob]) -> [String: Any] {
        var offsets: [Int] = []
        var offset = 0
        for token in tokens {
            offsets.append(offset)
            offset += token.chosen.text.utf16.count
        }
        return [
            "tokens": tokens.map(\.chosen.text), "token_logprobs": tokens.map(\.chosen.logprob),
            "top_logprobs": tokens.map { token in
                Dictionary(token.top.map { ($0.text, $0.logprob) }, uniquingKeysWith: { first, _ in first })
            },
            "text_offset": offsets,
        ]
    }

    /// The events of several generations as one stream, each with its choice's index; ending it
    /// ends them all.
    private static func merged(
        _ streams: [AsyncThrowingStream<InferenceService.Event, any Error>]
    ) -> AsyncThrowingStream<(Int, InferenceService.Event), any Error> {
        let (merged, continuation) = AsyncThrowingStream<(Int, InferenceService.Event), any Error>.makeStream()
        let feeder = Task {
            do {
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for (index, stream) in streams.enumerated() {
                        group.addTask { for try await event in stream { continuation.yield((index, event)) } }
                    }
                    try await group.waitForAll()
                }
                continuation.finish()
            } catch {
                continuation.finish(throwing: error)
            }
        }
        continuation.onTermination = { _ in feeder.cancel() }
        return merged
    }

    /// The prompt once, the completions of every choice.
    private func usage(_ summaries: [GenerationSummary]) -> [String: Any] {
        let prompt = summaries.first?.promptTokenCount ?? 0
        let completion = summaries.reduce(0) { $0 + $1.completionTokenCount }
        return [
            "prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion,
            "prompt_tokens_details": ["cached_tokens": summaries.first?.cachedPromptTokens ?? 0],
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
