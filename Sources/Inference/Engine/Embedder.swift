import CLlama
import Foundation

/// One text's embedding: the pooled hidden state of its tokens, scaled to unit length (as
/// OpenAI's and llama-server's are), and how many tokens it took.
public struct Embedding: Sendable, Hashable {
    public let vector: [Float]
    public let tokens: Int
}

/// Embeddings of texts by a loaded model, on a context of their own (the generation context
/// keeps its slots): pooled as the model declares (an embedding model's GGUF names its pooling),
/// by the mean of its tokens for a model that declares none (a chat model), as llama-server's
/// `--pooling mean` does. The whole text is one batch (pooling needs every token at once).
enum Embedder {
    /// Texts longer than this many tokens are refused (one batch holds the whole text).
    static let maxTokens = 8192

    static func embed(_ texts: [String], model: LlamaModel, threads: Int) throws -> [Embedding] {
        let tokenized = texts.map { model.tokenize($0, addSpecial: true, parseSpecial: true) }
        let limit = min(maxTokens, model.trainedContext > 0 ? model.trainedContext : maxTokens)
        for (index, tokens) in tokenized.enumerated() {
            guard !tokens.isEmpty else { throw InferenceError.badInput("input[\(index)] is empty") }
            guard tokens.count <= limit else {
                throw InferenceError.badInput("input[\(index)] takes \(tokens.count) tokens: at most \(limit) are embedded at once")
            }
        }
        let longest = tokenized.map(\.count).max() ?? 1
        let context = try makeContext(model: model, tokens: longest, threads: threads)
        defer { llama_free(context) }
        let width = Int(llama_model_n_embd(model.pointer))
        var batch = llama_batch_init(Int32(longest), 0, 1)
        defer { llama_batch_free(batch) }
        return try tokenized.map { tokens in
            llama_memory_clear(llama_get_memory(context), true)
            batch.n_tokens = Int32(tokens.count)
            for (position, token) in tokens.enumerated() {
                batch.token[position] = token
                batch.pos[position] = Int32(position)
                batch.n_seq_id[position] = 1
                batch.seq_id[position]![0] = 0
                batch.logits[position] = 1
            }
            let status = llama_model_has_encoder(model.pointer) ? llama_encode(context, batch) : llama_decode(context, batch)
            guard status == 0, let pooled = llama_get_embeddings_seq(context, 0) else {
                throw InferenceError.badInput("the model could not embed the input (llama.cpp status \(status))")
            }
            var vector = Array(UnsafeBufferPointer(start: pooled, count: width))
            let norm = vector.reduce(Double(0)) { $0 + Double($1) * Double($1) }.squareRoot()
            if norm > 0 { vector = vector.map { Float(Double($0) / norm) } }
            return Embedding(vector: vector, tokens: tokens.count)
        }
    }

    /// A context for one text of up to `tokens` tokens, pooled as the model declares, else by mean.
    private static func makeContext(model: LlamaModel, tokens: Int, threads: Int) throws -> OpaquePointer {
        func make(_ pooling: llama_pooling_type) -> OpaquePointer? {
            var parameters = llama_context_default_params()
            parameters.embeddings = true
            parameters.pooling_type = pooling
            parameters.n_ctx = UInt32(max(tokens, 64))
            parameters.n_batch = parameters.n_ctx
            parameters.n_ubatch = parameters.n_ctx
            parameters.n_seq_max = 1
            parameters.n_threads = Int32(threads)
            parameters.n_threads_batch = Int32(threads)
            parameters.no_perf = true
            return llama_init_from_model(model.pointer, parameters)
        }
        guard let declared = make(LLAMA_POOLING_TYPE_UNSPECIFIED) else {
            throw InferenceError.badInput("llama.cpp could not make an embedding context for this model")
        }
        switch llama_pooling_type(declared) {
        case LLAMA_POOLING_TYPE_NONE:
            llama_free(declared)
            guard let mean = make(LLAMA_POOLING_TYPE_MEAN) else {
                throw InferenceError.badInput("llama.cpp could not make an embedding context for this model")
            }
            return mean
        case LLAMA_POOLING_TYPE_RANK:
            llama_free(declared)
            throw InferenceError.badInput("this model ranks (a reranker): it gives no embeddings")
        default:
            return declared
        }
    }
}
