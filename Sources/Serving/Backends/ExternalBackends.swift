import AsyncHTTPClient
import Foundation
public import Inference
public import Lineage
public import Logging
import NIOCore
import NIOHTTP1

/// OpenAI-compatible servers (vLLM, llama-server) that the operator declares, each bound to the
/// artifact md5 it attests to serve. A revision whose weights have that md5 is generated there;
/// every other goes to `fallback` (this process or the workers). Pedigree still resolves the
/// lineage, checks the key and records the answer; the engine is recorded as `external:<name>`
/// with no other facts, and no replay of such an answer is guaranteed (the engine is unknown,
/// and so are its token ids: answers are compared by text).
public final class ExternalBackends: GenerationBackend {
    /// One declared backend: `name=… url=… md5=… [model=…] [api-key-file=…]` (space-separated:
    /// a list in an environment variable is comma-separated).
    public struct Declaration: Sendable, Hashable {
        public var name: String
        /// Base URL: requests go to `<url>/v1/chat/completions` and `<url>/v1/completions`.
        public var url: String
        /// The artifact md5 of the weights it serves (the operator's attestation).
        public var md5: String
        /// The `model` sent in each request; the name when not given.
        public var model: String?
        /// A file holding the backend's API key (sent as `Authorization: Bearer`).
        public var apiKeyFile: String?

        public init(parsing text: String) throws {
            var fields: [String: String] = [:]
            for part in text.split(whereSeparator: \.isWhitespace) {
                guard let equals = part.firstIndex(of: "=") else {
                    throw ConfigurationError("external-backends: '\(part)' is not key=value (name=… url=… md5=… [model=…] [api-key-file=…])")
                }
                let key = part[..<equals].trimmingCharacters(in: .whitespaces)
                guard ["name", "url", "md5", "model", "api-key-file"].contains(key), fields[key] == nil else {
                    throw ConfigurationError("external-backends: unknown or repeated key '\(key)' (name, url, md5, model, api-key-file)")
                }
                fields[key] = part[part.index(after: equals)...].trimmingCharacters(in: .whitespaces)
            }
            guard let name = fields["name"], !name.isEmpty, name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "._-".contains($0)) })
            else { throw ConfigurationError("external-backends: name= is required (letters, digits, '.', '_', '-')") }
            guard let url = fields["url"], let parsed = URL(string: url), ["http", "https"].contains(parsed.scheme ?? ""), parsed.host != nil,
                parsed.user == nil, parsed.password == nil
            else {
                throw ConfigurationError(
                    "external-backends: \(name): url= must be http(s)://host[:port] without credentials (api-key-file= for a key)")
            }
            guard let md5 = fields["md5"], md5.count == 32, md5.allSatisfy(\.isHexDigit) else {
                throw ConfigurationError("external-backends: \(name): md5= must be the 32-hex-digit artifact md5 the backend serves")
            }
            self.name = name
            self.url = url.hasSuffix("/") ? String(url.dropLast()) : url
            self.md5 = md5.lowercased()
            self.model = fields["model"].flatMap { $0.isEmpty ? nil : $0 }
            self.apiKeyFile = fields["api-key-file"].flatMap { $0.isEmpty ? nil : $0 }
        }

        /// The declaration as it is written (what `init(parsing:)` reads).
        public var text: String {
            (["name=\(name)", "url=\(url)", "md5=\(md5)"] + [model.map { "model=\($0)" }, apiKeyFile.map { "api-key-file=\($0)" }].compactMap { $0 })
                .joined(separator: " ")
        }
    }

    private struct Backend: Sendable {
        let declaration: Declaration
        let authorization: String?
    }

    private let byMD5: [String: Backend]
    private let fallback: any GenerationBackend
    private let client: HTTPClient
    private let validate: @Sendable (GenerationRequest) throws -> GenerationRequest
    private let generationTimeout: Duration
    private let logger: Logger
    /// Generations running on the backends (a drain past its deadline ends them).
    private let running = RunningGenerations()

    /// Reads each declaration's key file now (a missing file is a configuration error).
    public init(
        _ declarations: [Declaration], fallback: any GenerationBackend, generationTimeout: Duration,
        validate: @escaping @Sendable (GenerationRequest) throws -> GenerationRequest, logger: Logger
    ) throws {
        var byMD5: [String: Backend] = [:]
        for declaration in declarations {
            guard byMD5[declaration.md5] == nil else {
                throw ConfigurationError("external-backends: two backends attest md5 \(declaration.md5); declare one")
            }
            var authorization: String?
            if let path = declaration.apiKeyFile {
                guard let key = ServingConfiguration.trimmedText(ofFile: path) else {
                    throw ConfigurationError("external-backends: \(declaration.name): api-key-file \(path) cannot be read")
                }
                authorization = "Bearer " + key
            }
            byMD5[declaration.md5] = Backend(declaration: declaration, authorization: authorization)
        }
        self.byMD5 = byMD5
        self.fallback = fallback
        self.generationTimeout = generationTimeout
        self.validate = validate
        self.logger = logger
        // A backend may think for a while before its first token (a long prompt); a redirect
        // would carry the key elsewhere: none is followed.
        var configuration = HTTPClient.Configuration(timeout: .init(connect: .seconds(2), read: .seconds(60)))
        configuration.redirectConfiguration = .disallow
        client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }

    deinit {
        client.shutdown { _ in }
    }

    public func engineFacts(for revision: ModelLineage) -> EngineFacts {
        byMD5[revision.artifact.md5].map { .external($0.declaration.name) } ?? fallback.engineFacts(for: revision)
    }

    public func load(_ revision: ModelLineage) async throws -> ModelManager.Status {
        if let backend = byMD5[revision.artifact.md5] { throw Self.loadsItsOwn(backend.declaration) }
        return try await fallback.load(revision)
    }

    public func unload(_ revision: ModelLineage) async throws -> Bool {
        if let backend = byMD5[revision.artifact.md5] { throw Self.loadsItsOwn(backend.declaration) }
        return try await fallback.unload(revision)
    }

    public func stopGenerating() async {
        running.stopAll()
        await fallback.stopGenerating()
    }

    /// The fallback's: an external backend's weights are its own business.
    public func loadedModels() async -> [ModelManager.Status] { await fallback.loadedModels() }

    public func accept(_ revision: ModelLineage) throws { try fallback.accept(revision) }

    public func embed(_ texts: [String], on revision: ModelLineage) async throws -> [Embedding] {
        guard let backend = byMD5[revision.artifact.md5] else { return try await fallback.embed(texts, on: revision) }
        throw ServingError(.badUserInput, "embeddings are not served by the external backend '\(backend.declaration.name)'")
    }

    private static func loadsItsOwn(_ declaration: Declaration) -> ServingError {
        ServingError(.badUserInput, "these weights are served by the external backend '\(declaration.name)', which loads its own")
    }

    public func generate(
        _ request: GenerationRequest, on revision: ModelLineage, engine: EngineFacts?
    ) async throws -> AsyncThrowingStream<GenerationEvent, any Error> {
        guard let backend = byMD5[revision.artifact.md5] else { return try await fallback.generate(request, on: revision, engine: engine) }
        let request = try validate(request)
        guard request.sampling.logprobs == nil else {
            throw ServingError(.badUserInput, "logprobs are not served by the external backend '\(backend.declaration.name)'")
        }
        // Tool calls are read by the template's parser, which this server runs on its own engine only.
        if request.sampling.tools != nil || request.input.holdsToolMessages {
            throw ServingError(.badUserInput, "tools are not served by the external backend '\(backend.declaration.name)'")
        }
        let chat: Bool
        var body: [String: Any] = [
            "model": backend.declaration.model ?? backend.declaration.name, "stream": true, "stream_options": ["include_usage": true],
            "max_tokens": request.sampling.maxTokens, "temperature": request.sampling.temperature, "top_p": request.sampling.topP,
            "seed": Int64(request.sampling.seed),
            // llama-server's and vLLM's extensions to the OpenAI request.
            "top_k": request.sampling.topK, "min_p": request.sampling.minP, "repeat_penalty": request.sampling.repeatPenalty,
        ]
        if !request.sampling.stop.isEmpty { body["stop"] = request.sampling.stop }
        if let value = request.sampling.presencePenalty { body["presence_penalty"] = value }
        if let value = request.sampling.frequencyPenalty { body["frequency_penalty"] = value }
        if let biases = request.sampling.logitBias, !biases.isEmpty {
            body["logit_bias"] = Dictionary(uniqueKeysWithValues: biases.map { (String($0.token), $0.bias) })
        }
        // llama-server's extension: the grammar itself (the schema was converted here, by the same converter).
        if let constraint = request.sampling.constraint { body["grammar"] = constraint.grammar }
        switch request.input {
        case .prompt(let text):
            chat = false
            body["prompt"] = text
        case .messages(let messages):
            chat = true
            body["messages"] = messages.map { ["role": $0.role, "content": $0.content] }
        }
        var outgoing = HTTPClientRequest(url: backend.declaration.url + (chat ? "/v1/chat/completions" : "/v1/completions"))
        outgoing.method = .POST
        outgoing.headers.add(name: "Content-Type", value: "application/json")
        outgoing.headers.add(name: "Accept", value: "text/event-stream")
        if let authorization = backend.authorization { outgoing.headers.add(name: "Authorization", value: authorization) }
        outgoing.body = .bytes(ByteBuffer(bytes: try JSONSerialization.data(withJSONObject: body)))
        let run = Run(
            client: client, request: outgoing, chat: chat, seed: request.sampling.seed, name: backend.declaration.name,
            timeout: generationTimeout, running: running, logger: logger)
        return AsyncThrowingStream { continuation in
            let task = running.start { await run.stream(into: continuation) }
            continuation.onTermination = { _ in task.cancel() }
        }
    }

    /// One request to one backend, read as OpenAI's server-sent events.
    private struct Run: Sendable {
        let client: HTTPClient
        let request: HTTPClientRequest
        let chat: Bool
        let seed: UInt32
        let name: String
        let timeout: Duration
        let running: RunningGenerations
        let logger: Logger

        func stream(into continuation: AsyncThrowingStream<GenerationEvent, any Error>.Continuation) async {
            let started = ContinuousClock.now
            var firstToken: ContinuousClock.Instant?
            var text = ""
            var pieces = 0
            var finish: FinishReason?
            var usage: GenerationSummary.ReportedUsage?
            do {
                let response = try await client.execute(request, timeout: .seconds(Int64(timeout.components.seconds)))
                guard response.status == .ok else {
                    let answer = try? await response.body.collect(upTo: 64 << 10)
                    throw refusal(response.status, answer.map { Data($0.readableBytesView) })
                }
                var lines = LineSplitter()
                reading: for try await chunk in response.body {
                    guard let fed = lines.feed(chunk) else {
                        throw ServingError(.workerUnavailable, "external backend '\(name)' sent a line longer than \(LineSplitter.maxLine) bytes")
                    }
                    for line in fed where line.hasPrefix("data:") {
                        let payload = line.dropFirst(5).trimmingCharacters(in: .whitespaces)
                        if payload == "[DONE]" { break reading }
                        guard let object = try? JSONSerialization.jsonObject(with: Data(payload.utf8)) as? [String: Any] else {
                            throw ServingError(.workerUnavailable, "external backend '\(name)' sent an event that is not JSON")
                        }
                        if object["error"] != nil {
                            throw ServingError(.workerUnavailable, "external backend '\(name)' failed during the generation")
                        }
                        if let reported = object["usage"] as? [String: Any], let prompt = reported["prompt_tokens"] as? Int,
                            let completion = reported["completion_tokens"] as? Int
                        {
                            usage = .init(promptTokens: prompt, completionTokens: completion)
                        }
                        guard let choice = (object["choices"] as? [[String: Any]])?.first else { continue }
                        let piece = chat ? (choice["delta"] as? [String: Any])?["content"] as? String : choice["text"] as? String
                        if let piece, !piece.isEmpty {
                            if firstToken == nil { firstToken = .now }
                            text += piece
                            pieces += 1
                            continuation.yield(.token(piece))
                        }
                        if let reason = choice["finish_reason"] as? String { finish = reason == "length" ? .length : .stop }
                    }
                }
                guard let finish else { throw ServingError(.workerUnavailable, "external backend '\(name)' ended its answer without finishing it") }
                let now = ContinuousClock.now
                // Each streamed piece counts as one token (as llama-server and vLLM stream them): a
                // backend's report is taken only when it is not lower (the key's quota is charged
                // with it).
                let counted = GenerationSummary.ReportedUsage(
                    promptTokens: usage?.promptTokens ?? 0, completionTokens: max(usage?.completionTokens ?? 0, pieces))
                let summary = GenerationSummary.external(
                    text: text, finishReason: finish, usage: counted, seed: seed,
                    timeToFirstTokenMs: ((firstToken ?? now) - started).milliseconds, totalMs: (now - started).milliseconds, engine: .external(name))
                continuation.yield(.finished(summary))
                continuation.finish()
            } catch {
                if Task.isCancelled { return running.endCancelled(continuation, text: text, seed: seed) }
                if let error = error as? ServingError { return continuation.finish(throwing: error) }
                logger.warning("external backend failed", metadata: ["backend": "\(name)", "error": "\(error)"])
                let during = pieces > 0 ? "failed during the generation" : "could not be reached"
                continuation.finish(throwing: ServingError(.workerUnavailable, "external backend '\(name)' \(during)"))
            }
        }

        /// A backend's refusal as our code: busy → OVERLOADED, refused input → BAD_USER_INPUT,
        /// anything else → WORKER_UNAVAILABLE; its own message (when it gave one) kept short.
        private func refusal(_ status: HTTPResponseStatus, _ body: Data?) -> ServingError {
            let object = body.flatMap { try? JSONSerialization.jsonObject(with: $0) as? [String: Any] }
            let message = ((object?["error"] as? [String: Any])?["message"] as? String).map { ": " + String($0.prefix(200)) } ?? ""
            switch status.code {
            case 429, 503: return ServingError(.overloaded, "external backend '\(name)' is busy (HTTP \(status.code))\(message)")
            case 400, 413, 422: return ServingError(.badUserInput, "external backend '\(name)' refused the request (HTTP \(status.code))\(message)")
            default: return ServingError(.workerUnavailable, "external backend '\(name)' answered HTTP \(status.code)\(message)")
            }
        }
    }
}

/// Splits a byte stream into lines (`\n` or `\r\n`), keeping an unfinished line for the next chunk.
struct LineSplitter {
    /// The longest line kept: a peer that sends more without a line end is not buffered on.
    static let maxLine = 1 << 20
    private var pending: [UInt8] = []

    /// The lines `buffer` completes; nil when the unfinished line grew past `maxLine`.
    mutating func feed(_ buffer: ByteBuffer) -> [String]? {
        pending.append(contentsOf: buffer.readableBytesView)
        var lines: [String] = []
        var start = 0
        for index in pending.indices where pending[index] == UInt8(ascii: "\n") {
            var end = index
            if end > start, pending[end - 1] == UInt8(ascii: "\r") { end -= 1 }
            lines.append(String(decoding: pending[start..<end], as: UTF8.self))
            start = index + 1
        }
        pending.removeFirst(start)
        return pending.count > Self.maxLine ? nil : lines
    }
}
