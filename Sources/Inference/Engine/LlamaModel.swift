import CLlama
import Foundation

/// A GGUF model loaded with mmap. Immutable once loaded: llama.cpp allows many contexts over one
/// model from different threads, which is why this may be shared (`@unchecked Sendable`); the
/// pointers are freed once, in `deinit`.
final class LlamaModel: @unchecked Sendable {
    let pointer: OpaquePointer
    let vocab: OpaquePointer
    let trainedContext: Int
    let vocabularySize: Int32
    let chatTemplate: String?

    /// Loads `path`. A file that is not GGUF, is truncated or declares what it does not hold fails
    /// with `loadFailed` instead of reaching llama.cpp's asserts: `GGUFHeader` checks it first.
    /// A dry run reads the metadata only and allocates nothing: a context made over it tells what
    /// the real load would allocate (`ModelMemory.read`), and it cannot generate.
    let placement: Placement
    /// Transformer layers (the output layer comes after them: `n_gpu_layers` counts it too).
    let layers: Int

    init(path: String, placement: Placement, dryRun: Bool = false) throws {
        LlamaBackend.ensureInitialised()
        do {
            _ = try GGUFHeader(path: path)
        } catch {
            throw InferenceError.loadFailed("invalid GGUF: \(error.description)")
        }
        var parameters = llama_model_default_params()
        parameters.load_mode = dryRun ? LLAMA_LOAD_MODE_NONE : LLAMA_LOAD_MODE_MMAP
        parameters.no_alloc = dryRun
        parameters.n_gpu_layers = Int32(clamping: placement.gpuLayers)
        parameters.use_extra_bufts = placement.repack
        let loaded = placement.withDeviceList { devices in
            parameters.devices = devices
            return llama_model_load_from_file(path, parameters)
        }
        guard let model = loaded else {
            throw InferenceError.loadFailed("llama.cpp rejected the file (truncated or unsupported)")
        }
        self.placement = placement
        layers = Int(llama_model_n_layer(model))
        pointer = model
        vocab = llama_model_get_vocab(model)
        trainedContext = Int(llama_model_n_ctx_train(model))
        vocabularySize = llama_vocab_n_tokens(vocab)
        chatTemplate = llama_model_chat_template(model, nil).map { String(cString: $0) }
    }

    /// The vocabulary and metadata were freed into the allocator's arena of whichever thread ran
    /// the load (a dry run's, an unloaded model's): give the pages back, or the process keeps
    /// holding them beside the next load's.
    deinit {
        llama_model_free(pointer)
        ModelMemory.trimHeap()
    }

    /// Tokens of `text`; `addSpecial` adds BOS as the model asks, `parseSpecial` reads special
    /// tokens written in the text (chat templates produce them).
    func tokenize(_ text: String, addSpecial: Bool, parseSpecial: Bool) -> [Int32] {
        let utf8 = Array(text.utf8)
        var capacity = utf8.count + 8
        while true {
            var tokens = [Int32](repeating: 0, count: capacity)
            let count = utf8.withUnsafeBufferPointer { bytes in
                bytes.withMemoryRebound(to: CChar.self) { chars in
                    llama_tokenize(vocab, chars.baseAddress, Int32(utf8.count), &tokens, Int32(capacity), addSpecial, parseSpecial)
                }
            }
            if count >= 0 { return Array(tokens.prefix(Int(count))) }
            capacity = Int(-count)
        }
    }

    /// The bytes a token stands for (special tokens render as nothing).
    func piece(_ token: Int32) -> [UInt8] {
        var buffer = [CChar](repeating: 0, count: 64)
        var count = llama_token_to_piece(vocab, token, &buffer, Int32(buffer.count), 0, false)
        if count < 0 {
            buffer = [CChar](repeating: 0, count: Int(-count))
            count = llama_token_to_piece(vocab, token, &buffer, Int32(buffer.count), 0, false)
        }
        return buffer.prefix(Int(max(0, count))).map { UInt8(bitPattern: $0) }
    }

    func isEndOfGeneration(_ token: Int32) -> Bool { llama_vocab_is_eog(vocab, token) }

    /// The first of the model's control tokens (`<|im_end|>`, `<|im_start|>`…) written in `text`,
    /// if any: a chat's prompt is tokenized reading them, so text holding one could forge the
    /// template's turns (a tool result that closes its turn and opens a system one).
    func controlToken(in text: String) -> String? {
        guard !text.isEmpty else { return nil }
        for token in tokenize(text, addSpecial: false, parseSpecial: true)
        where llama_vocab_get_attr(vocab, token).rawValue & LLAMA_TOKEN_ATTR_CONTROL.rawValue != 0 {
            var buffer = [CChar](repeating: 0, count: 128)
            let count = llama_token_to_piece(vocab, token, &buffer, Int32(buffer.count), 0, true)
            return String(decoding: buffer.prefix(Int(max(0, count))).map { UInt8(bitPattern: $0) }, as: UTF8.self)
        }
        return nil
    }

    /// Refuses a chat whose text (messages, calls, tools) writes one of the model's control tokens.
    func refuseControlTokens(_ messages: [ChatMessage], tools: ToolUse?) throws {
        var texts: [(String, String)] = []
        for (index, message) in messages.enumerated() {
            texts.append(("messages[\(index)].content", message.content))
            for call in message.toolCalls ?? [] {
                texts += [("messages[\(index)].tool_calls", call.name), ("messages[\(index)].tool_calls", call.arguments)]
                texts.append(("messages[\(index)].tool_calls", call.id))
            }
            if let id = message.toolCallID { texts.append(("messages[\(index)].tool_call_id", id)) }
        }
        for function in tools?.functions ?? [] {
            texts += [("tools", function.description ?? ""), ("tools", function.parameters)]
        }
        for (place, text) in texts {
            if let token = controlToken(in: text) {
                throw InferenceError.badInput("\(place) writes the model's control token \(token): it would be read as the chat template's markup")
            }
        }
    }

    /// `messages` rendered with the model's chat template, ending where the assistant speaks.
    func applyChatTemplate(_ messages: [ChatMessage]) throws -> String {
        guard let template = chatTemplate else { throw InferenceError.badInput("this model has no chat template: send a prompt") }
        let roles = messages.map { strdup($0.role) }
        let contents = messages.map { strdup($0.content) }
        defer {
            for pointer in roles + contents { free(pointer) }
        }
        let chat = zip(roles, contents).map { llama_chat_message(role: $0, content: $1) }
        var capacity = max(1024, messages.reduce(0) { $0 + $1.content.utf8.count + $1.role.utf8.count } * 2 + 256)
        while true {
            var buffer = [CChar](repeating: 0, count: capacity)
            let count = llama_chat_apply_template(template, chat, chat.count, true, &buffer, Int32(capacity))
            if count < 0 { throw InferenceError.badInput("the model's chat template is not one llama.cpp supports: send a prompt") }
            if Int(count) <= capacity {
                return String(decoding: buffer.prefix(Int(count)).map { UInt8(bitPattern: $0) }, as: UTF8.self)
            }
            capacity = Int(count)
        }
    }
}

/// One message of a chat. An assistant's may hold the calls it made (`toolCalls`); a `tool`
/// message answers one of them (`toolCallID`).
public struct ChatMessage: Sendable, Hashable, Codable {
    public let role: String
    public let content: String
    public var toolCalls: [ToolCall]?
    public var toolCallID: String?

    public init(role: String, content: String, toolCalls: [ToolCall]? = nil, toolCallID: String? = nil) {
        self.role = role
        self.content = content
        self.toolCalls = toolCalls
        self.toolCallID = toolCallID
    }
}
