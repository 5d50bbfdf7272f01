import Access
import Foundation
import HTTPTypes
import Hummingbird
import Inference
import Ledger
import Lineage
import NIOCore
import Serving
import Tracing

/// A request to OpenAI's Responses API (`POST /v1/responses`), translated into the chat request
/// it means (instructions → a system message, input items → messages, function calls and their
/// outputs → assistant tool calls and tool messages, `text.format` → `response_format`,
/// `max_output_tokens` → `max_tokens`) and read by the same strict reader: every field is
/// honoured, changes nothing (`ignoredFields`), or is refused naming it as the Responses API does.
struct OpenAIResponsesRequest {
    let chat: OpenAIRequest
    /// What the response object echoes back (a JSON object).
    let echo: Data

    /// Fields of the Responses API this server does not serve (state kept between requests,
    /// reasoning, prompts stored at OpenAI).
    static let unsupported: Set<String> = [
        "previous_response_id", "conversation", "background", "prompt", "reasoning", "max_tool_calls", "top_logprobs", "context_management",
    ]

    init(_ data: Data) throws(EdgeError) {
        guard let parsed = try? JSONSerialization.jsonObject(with: data), let object = parsed as? [String: Any] else {
            throw EdgeError(.badUserInput, "the body must be a JSON Responses API request")
        }
        var body = object.filter { !($0.value is NSNull) }
        for name in Self.unsupported.sorted() where body[name] != nil {
            throw .parameter(name, "\(name) is not supported by this server", unsupported: true)
        }
        var messages: [[String: Any]] = []
        if let instructions = body.removeValue(forKey: "instructions") {
            guard let text = instructions as? String else { throw .parameter("instructions", "instructions must be a string") }
            messages.append(["role": "system", "content": text])
        }
        guard let input = body.removeValue(forKey: "input") else { throw .parameter("input", "input is required") }
        messages += try Self.messages(input)
        var chatBody = body
        chatBody["messages"] = messages
        if let limit = chatBody.removeValue(forKey: "max_output_tokens") { chatBody["max_tokens"] = limit }
        if let text = chatBody.removeValue(forKey: "text") {
            guard let options = text as? [String: Any], Set(options.keys).isSubset(of: ["format", "verbosity"]) else {
                throw .parameter("text", "text must be {format, verbosity}")
            }
            if let verbosity = options["verbosity"], verbosity as? String != "medium" {
                throw .parameter("text.verbosity", "text.verbosity is not supported", unsupported: true)
            }
            if let format = options["format"] { chatBody["response_format"] = try Self.responseFormat(format) }
        }
        if let include = chatBody.removeValue(forKey: "include") {
            guard let list = include as? [Any], list.isEmpty else { throw .parameter("include", "include is not supported", unsupported: true) }
        }
        if let truncation = chatBody.removeValue(forKey: "truncation"), truncation as? String != "disabled" {
            throw .parameter("truncation", "truncation must be disabled: a prompt longer than the context is refused", unsupported: true)
        }
        if let tools = chatBody["tools"] {
            guard let list = tools as? [Any] else { throw .parameter("tools", "tools must be an array of function tools") }
            var functions: [Any] = []
            for (index, tool) in list.enumerated() {
                guard var object = tool as? [String: Any], object["type"] as? String == "function" else {
                    throw .parameter("tools[\(index)].type", "tools[\(index)]: only function tools are served", unsupported: true)
                }
                object.removeValue(forKey: "type")
                functions.append(["type": "function", "function": object])
            }
            chatBody["tools"] = functions
        }
        if let choice = chatBody["tool_choice"] as? [String: Any] {
            guard choice["type"] as? String == "function", let name = choice["name"] as? String, choice.count == 2 else {
                throw .parameter("tool_choice", "tool_choice must be auto, none, required or {type: function, name}")
            }
            chatBody["tool_choice"] = ["type": "function", "function": ["name": name]]
        }
        do {
            let translated = try JSONSerialization.data(withJSONObject: chatBody)
            let text = String(decoding: data, as: UTF8.self)
            chat = try OpenAIRequest(translated, chat: true) { OrderedJSON.text(at: ["tools", "\($0)", "parameters"], in: text) }
        } catch let error as EdgeError {
            var renamed = error
            renamed.param = error.param.map(Self.responsesName)
            throw renamed
        } catch {
            throw EdgeError(.badUserInput, "the body must be a JSON Responses API request")
        }
        var echo: [String: Any] = [
            "instructions": object["instructions"] ?? NSNull(), "tools": object["tools"] ?? [Any](), "tool_choice": object["tool_choice"] ?? "auto",
            "parallel_tool_calls": object["parallel_tool_calls"] ?? true, "metadata": object["metadata"] ?? [String: Any](),
            "temperature": chat.sampling.temperature, "top_p": chat.sampling.topP,
            "max_output_tokens": object["max_output_tokens"] ?? NSNull(), "text": object["text"] ?? ["format": ["type": "text"]],
        ]
        echo["truncation"] = "disabled"
        self.echo = (try? JSONSerialization.data(withJSONObject: echo)) ?? Data("{}".utf8)
    }

    /// A chat request's field as the Responses API names it.
    static func responsesName(_ param: String) -> String {
        if param == "max_tokens" { return "max_output_tokens" }
        if param.hasPrefix("response_format.json_schema.") { return "text.format." + param.dropFirst("response_format.json_schema.".count) }
        if param.hasPrefix("response_format") { return "text.format" }
        if param.hasPrefix("messages") { return "input" }
        if param.hasPrefix("tools["), let range = param.range(of: "].function.") {
            return String(param[..<range.lowerBound]) + "]." + param[range.upperBound...]
        }
        return param
    }

    /// `text.format` as a chat `response_format`: `{type: json_schema, name, schema, strict}` moves
    /// its fields under `json_schema`.
    private static func responseFormat(_ value: Any) throws(EdgeError) -> Any {
        guard var format = value as? [String: Any], let type = format["type"] as? String else {
            throw .parameter("text.format", "text.format must be an object with a type")
        }
        guard type == "json_schema" else { return format }
        format.removeValue(forKey: "type")
        return ["type": "json_schema", "json_schema": format]
    }

    /// Input items as chat messages: messages (text content), function calls (consecutive ones
    /// make one assistant message) and their outputs (tool messages).
    private static func messages(_ input: Any) throws(EdgeError) -> [[String: Any]] {
        if let text = input as? String { return [["role": "user", "content": text]] }
        guard let items = input as? [Any], !items.isEmpty else { throw .parameter("input", "input must be a string or a non-empty array of items") }
        var messages: [[String: Any]] = []
        for (index, item) in items.enumerated() {
            let param = "input[\(index)]"
            guard let object = item as? [String: Any] else { throw .parameter(param, "\(param) must be an object") }
            switch object["type"] as? String ?? "message" {
            case "message":
                guard let role = object["role"] as? String, let content = object["content"] else {
                    throw .parameter(param, "\(param) must be {role, content}")
                }
                let allowed: Set<String> = ["type", "role", "content", "id", "status"]
                if let extra = Set(object.keys).subtracting(allowed).sorted().first {
                    throw .parameter("\(param).\(extra)", "unknown parameter: \(param).\(extra)", unsupported: true)
                }
                messages.append(["role": role, "content": try text(content, param: "\(param).content")])
            case "function_call":
                guard let callID = object["call_id"] as? String, let name = object["name"] as? String, let arguments = object["arguments"] as? String
                else { throw .parameter(param, "\(param) must be {type: function_call, call_id, name, arguments}") }
                let call: [String: Any] = ["id": callID, "type": "function", "function": ["name": name, "arguments": arguments]]
                if var last = messages.last, last["role"] as? String == "assistant", var calls = last["tool_calls"] as? [Any] {
                    calls.append(call)
                    last["tool_calls"] = calls
                    messages[messages.count - 1] = last
                } else {
                    messages.append(["role": "assistant", "tool_calls": [call]])
                }
            case "function_call_output":
                guard let callID = object["call_id"] as? String, let output = object["output"] else {
                    throw .parameter(param, "\(param) must be {type: function_call_output, call_id, output}")
                }
                messages.append(["role": "tool", "tool_call_id": callID, "content": try text(output, param: "\(param).output")])
            case let type:
                throw .parameter("\(param).type", "\(param): \(type) items are not supported", unsupported: true)
            }
        }
        return messages
    }

    /// Content as text: a string, or `input_text` / `output_text` parts.
    private static func text(_ content: Any, param: String) throws(EdgeError) -> String {
        if let text = content as? String { return text }
        guard let parts = content as? [Any], !parts.isEmpty else { throw .parameter(param, "\(param) must be a string or an array of text parts") }
        var text = ""
        for (index, part) in parts.enumerated() {
            guard let object = part as? [String: Any], let type = object["type"] as? String else {
                throw .parameter("\(param)[\(index)]", "\(param)[\(index)] must be a part with a type")
            }
            guard type == "input_text" || type == "output_text", let piece = object["text"] as? String else {
                throw .parameter("\(param)[\(index)].type", "\(param)[\(index)]: \(type) parts are not supported (text only)", unsupported: true)
            }
            text += piece
        }
        return text
    }
}

extension OpenAIRoutes {
    /// `POST /v1/responses`: one answer as a Response object, or (stream) its events: created,
    /// the message's text deltas, each function call, completed.
    func respond(_ request: Request, context: PedigreeRequestContext) async throws -> Response {
        guard context.principal.permits(.generate) else {
            throw AccessError.forbidden("a key with role \(context.principal.role.rawValue) may not use this route")
        }
        let buffer = try await RequestBody.collect(request, timeout: services.configuration.httpIdleTimeout)
        let body = try OpenAIResponsesRequest(Data(buffer.readableBytesView))
        let revision = try await withSpan("resolve") { _ in try await services.lineage.lineageOffloaded(body.chat.model) }
        let id = RecordID.make()
        let events = try await services.inference.start(
            GenerationRequest(input: body.chat.input, sampling: body.chat.sampling), on: revision, by: context.caller, id: id)
        let created = Int(Date().timeIntervalSince1970)
        let headers: HTTPFields = [
            .contentType: body.chat.stream ? "text/event-stream" : "application/json", .pedigreeRevision: revision.id, .pedigreeInferenceID: id,
        ]
        let messageID = "msg_\(id)"
        let echo = body.echo
        @Sendable func response(_ status: String, _ summary: GenerationSummary?) -> [String: Any] {
            var object = (try? JSONSerialization.jsonObject(with: echo)) as? [String: Any] ?? [:]
            object.merge([
                "id": "resp_\(id)", "object": "response", "created_at": created, "status": status, "model": revision.id,
                "error": NSNull(), "incomplete_details": NSNull(), "output": summary.map { Self.outputItems($0, messageID: messageID) } ?? [Any](),
            ]) { _, new in new }
            if let summary {
                if summary.finishReason == .length { object["incomplete_details"] = ["reason": "max_output_tokens"] }
                let input = summary.promptTokenCount
                let output = summary.completionTokenCount
                object["usage"] = [
                    "input_tokens": input, "output_tokens": output, "total_tokens": input + output,
                    "input_tokens_details": ["cached_tokens": summary.cachedPromptTokens], "output_tokens_details": ["reasoning_tokens": 0],
                ]
            }
            return object
        }
        let stream = untilClosed(events, context.channel)
        guard headers[.contentType] == "text/event-stream" else {
            var done: GenerationSummary?
            for try await event in stream { if case .payload(let answer) = event { done = answer.summary } }
            guard let done else { throw CancellationError() }
            let status = done.finishReason == .stop ? "completed" : "incomplete"
            let data = (try? JSONSerialization.data(withJSONObject: response(status, done), options: [.sortedKeys])) ?? Data("{}".utf8)
            return Response(status: .ok, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: data)))
        }
        return Response(
            status: .ok, headers: headers,
            body: ResponseBody { writer in
                var sequence = 0
                func send(_ type: String, _ fields: [String: Any]) async throws {
                    var event = fields
                    event["type"] = type
                    event["sequence_number"] = sequence
                    sequence += 1
                    var buffer = ByteBuffer(string: "event: \(type)\ndata: ")
                    buffer.writeBytes(try JSONSerialization.data(withJSONObject: event, options: [.sortedKeys]))
                    buffer.writeString("\n\n")
                    try await writer.write(buffer)
                }
                try await send("response.created", ["response": response("in_progress", nil)])
                try await send("response.in_progress", ["response": response("in_progress", nil)])
                var text = ""
                let part: [String: Any] = ["item_id": messageID, "output_index": 0, "content_index": 0]
                do {
                    for try await event in stream {
                        switch event {
                        case .token(let piece):
                            if text.isEmpty {
                                try await send(
                                    "response.output_item.added",
                                    [
                                        "output_index": 0,
                                        "item": [
                                            "type": "message", "id": messageID, "status": "in_progress", "role": "assistant", "content": [Any](),
                                        ],
                                    ])
                                try await send(
                                    "response.content_part.added", part.merging(["part": Self.textPart("")]) { _, new in new })
                            }
                            text += piece
                            try await send("response.output_text.delta", part.merging(["delta": piece]) { _, new in new })
                        case .payload(let answer):
                            let summary = answer.summary
                            let items = Self.outputItems(summary, messageID: messageID)
                            var index = 0
                            if !text.isEmpty {
                                try await send("response.output_text.done", part.merging(["text": text]) { _, new in new })
                                try await send("response.content_part.done", part.merging(["part": Self.textPart(text)]) { _, new in new })
                                try await send("response.output_item.done", ["output_index": 0, "item": items[0]])
                                index = 1
                            }
                            for item in items.dropFirst(index) where item["type"] as? String == "function_call" {
                                var opened = item
                                opened["arguments"] = ""
                                opened["status"] = "in_progress"
                                try await send("response.output_item.added", ["output_index": index, "item": opened])
                                let call: [String: Any] = ["item_id": item["id"] ?? "", "output_index": index]
                                try await send(
                                    "response.function_call_arguments.delta", call.merging(["delta": item["arguments"] ?? ""]) { _, new in new })
                                try await send(
                                    "response.function_call_arguments.done", call.merging(["arguments": item["arguments"] ?? ""]) { _, new in new })
                                try await send("response.output_item.done", ["output_index": index, "item": item])
                                index += 1
                            }
                            let status = summary.finishReason == .stop ? "completed" : "incomplete"
                            try await send("response.\(status)", ["response": response(status, summary)])
                        }
                    }
                } catch let error as InferenceError {
                    let (code, message) = ErrorCode.classify(error)
                    try await send("error", ["code": code.rawValue, "message": message, "param": NSNull()])
                }
                try await writer.finish(nil)
            })
    }

    private static func textPart(_ text: String) -> [String: Any] { ["type": "output_text", "text": text, "annotations": [Any]()] }

    /// The answer as output items: its text (a message, when there is text or no call), then each call.
    private static func outputItems(_ summary: GenerationSummary, messageID: String) -> [[String: Any]] {
        let content = summary.message?.content ?? summary.text
        let calls = summary.message?.toolCalls ?? []
        var items: [[String: Any]] = []
        if !content.isEmpty || calls.isEmpty {
            items.append([
                "type": "message", "id": messageID, "status": summary.finishReason == .stop ? "completed" : "incomplete", "role": "assistant",
                "content": [textPart(content)],
            ])
        }
        for call in calls {
            items.append([
                "type": "function_call", "id": "fc_\(call.id)", "call_id": call.id, "name": call.name, "arguments": call.arguments,
                "status": "completed",
            ])
        }
        return items
    }
}
