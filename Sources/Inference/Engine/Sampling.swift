import CLlama
import Foundation

/// How tokens are chosen. Temperature 0 is greedy (the most likely token, no randomness).
public struct SamplingParameters: Sendable, Hashable, Codable {
    public var temperature: Double
    public var topK: Int
    public var topP: Double
    public var minP: Double
    public var repeatPenalty: Double
    /// The seed of the random draw; always set (a random one is chosen when a request has none)
    /// so that every answer can be reproduced.
    public var seed: UInt32
    public var maxTokens: Int
    public var stop: [String]
    /// OpenAI's penalties (-2 to 2; nil is 0): `presence` is subtracted once from the logit of
    /// every token the answer holds, `frequency` once per time it occurs.
    public var presencePenalty: Double?
    public var frequencyPenalty: Double?
    /// Added to tokens' logits before anything else (-100 to 100; -100 bans a token).
    public var logitBias: [LogitBias]?
    /// What the answer must match, enforced by llama.cpp's grammar sampler.
    public var constraint: Constraint?
    /// Report each generated token's log-probability and this many most likely alternatives
    /// (0 to 20), from the model's distribution (softmax of its logits, before sampling). nil: none.
    public var logprobs: Int?
    /// Functions the model may call in a chat, and how (rendered by the model's Jinja template;
    /// the calls generated under llama.cpp's tool-call grammar).
    public var tools: ToolUse?

    public static let maxTopLogprobs = 20

    /// One token's bias (OpenAI's `logit_bias` map, as a list sorted by token).
    public struct LogitBias: Sendable, Hashable, Codable {
        public var token: Int32
        public var bias: Double

        public init(token: Int32, bias: Double) {
            self.token = token
            self.bias = bias
        }
    }

    public init(
        temperature: Double = 0.8, topK: Int = 40, topP: Double = 0.95, minP: Double = 0.05, repeatPenalty: Double = 1.0,
        seed: UInt32? = nil, maxTokens: Int = 128, stop: [String] = []
    ) {
        self.temperature = temperature
        self.topK = topK
        self.topP = topP
        self.minP = minP
        self.repeatPenalty = repeatPenalty
        // LLAMA_DEFAULT_SEED (0xFFFFFFFF) means "random" to llama.cpp: never use it as a value.
        self.seed = seed ?? UInt32.random(in: 0..<UInt32.max)
        self.maxTokens = maxTokens
        self.stop = stop
    }

    /// A seed as clients send it (any integer): 0 to 4294967294, since llama.cpp reads
    /// 4294967295 as "random".
    public static func seed(_ value: Int64) throws -> UInt32 {
        guard value >= 0, value < Int64(UInt32.max) else { throw InferenceError.badInput("seed must be between 0 and 4294967294") }
        return UInt32(value)
    }

    /// Checks ranges; `limit` caps `maxTokens`.
    func validated(maxTokensLimit: Int) throws -> SamplingParameters {
        guard temperature >= 0, temperature <= 10 else { throw InferenceError.badInput("temperature must be between 0 and 10") }
        // Checked here, where the value enters: the sampler takes an Int32.
        guard topK >= 0, topK <= 1_000_000 else { throw InferenceError.badInput("topK must be between 0 (off) and 1000000") }
        guard topP > 0, topP <= 1 else { throw InferenceError.badInput("topP must be in (0, 1]") }
        guard minP >= 0, minP <= 1 else { throw InferenceError.badInput("minP must be in [0, 1]") }
        guard repeatPenalty > 0, repeatPenalty.isFinite else { throw InferenceError.badInput("repeatPenalty must be above 0") }
        guard seed != UInt32.max else { throw InferenceError.badInput("seed must be below 4294967295") }
        guard maxTokens >= 1, maxTokens <= maxTokensLimit else {
            throw InferenceError.badInput("maxTokens must be between 1 and \(maxTokensLimit)")
        }
        guard stop.count <= 8, stop.allSatisfy({ !$0.isEmpty && $0.utf8.count <= 64 }) else {
            throw InferenceError.badInput("at most 8 stop sequences of 1 to 64 bytes")
        }
        for (name, value) in [("presencePenalty", presencePenalty), ("frequencyPenalty", frequencyPenalty)] {
            guard let value else { continue }
            guard value >= -2, value <= 2 else { throw InferenceError.badInput("\(name) must be between -2 and 2") }
        }
        if let logitBias {
            guard logitBias.count <= 300 else { throw InferenceError.badInput("logitBias holds at most 300 tokens") }
            guard logitBias.allSatisfy({ $0.token >= 0 && $0.bias >= -100 && $0.bias <= 100 }) else {
                throw InferenceError.badInput("logitBias takes token ids from 0 and biases between -100 and 100")
            }
            guard Set(logitBias.map(\.token)).count == logitBias.count else { throw InferenceError.badInput("logitBias names a token twice") }
        }
        if let logprobs, !(0...Self.maxTopLogprobs).contains(logprobs) {
            throw InferenceError.badInput("logprobs takes 0 to \(Self.maxTopLogprobs) alternatives")
        }
        guard constraint == nil || stop.isEmpty else { throw InferenceError.badInput("stop sequences would cut a constrained answer") }
        if let tools {
            _ = try tools.checked()
            if tools.callsPossible {
                guard constraint == nil else {
                    throw InferenceError.badInput("a constrained answer cannot also call tools (or set the tool choice to none)")
                }
                guard stop.isEmpty else { throw InferenceError.badInput("stop sequences would cut a tool call") }
            }
        }
        guard (constraint?.grammar.utf8.count ?? 0) <= Constraint.maxGrammarBytes else {
            throw InferenceError.badInput("a grammar holds at most \(Constraint.maxGrammarBytes) bytes")
        }
        return self
    }

    /// Whether the OpenAI penalties are on (they look at the whole answer, not 64 tokens).
    var hasOpenAIPenalties: Bool { (presencePenalty ?? 0) != 0 || (frequencyPenalty ?? 0) != 0 }

    /// A sampler chain in llama.cpp's usual order: logit bias, penalties, top-k, top-p, min-p,
    /// temperature, then the seeded draw; greedy when the temperature is 0. The repeat penalty
    /// looks at the last 64 tokens, OpenAI's penalties at the whole answer. The caller frees it
    /// (the grammar is not in it: `Sampler` applies it).
    func makeChain(vocabularySize: Int32) -> UnsafeMutablePointer<llama_sampler> {
        var parameters = llama_sampler_chain_default_params()
        parameters.no_perf = true
        let chain = llama_sampler_chain_init(parameters)!
        if let logitBias, !logitBias.isEmpty {
            let biases = logitBias.map { llama_logit_bias(token: $0.token, bias: Float($0.bias)) }
            llama_sampler_chain_add(chain, llama_sampler_init_logit_bias(vocabularySize, Int32(biases.count), biases))
        }
        if repeatPenalty != 1 || hasOpenAIPenalties {
            llama_sampler_chain_add(
                chain,
                llama_sampler_init_penalties(
                    vocabularySize, hasOpenAIPenalties ? Int32(clamping: maxTokens) : 64, Float(repeatPenalty), Float(frequencyPenalty ?? 0),
                    Float(presencePenalty ?? 0)))
        }
        if temperature <= 0 {
            llama_sampler_chain_add(chain, llama_sampler_init_greedy())
            return chain
        }
        if topK > 0 { llama_sampler_chain_add(chain, llama_sampler_init_top_k(Int32(topK))) }
        llama_sampler_chain_add(chain, llama_sampler_init_top_p(Float(topP), 1))
        if minP > 0 { llama_sampler_chain_add(chain, llama_sampler_init_min_p(Float(minP), 1)) }
        llama_sampler_chain_add(chain, llama_sampler_init_temp(Float(temperature)))
        llama_sampler_chain_add(chain, llama_sampler_init_dist(seed))
        return chain
    }
}

/// What a caller asks a loaded model for.
public struct GenerationRequest: Sendable {
    public enum Input: Sendable, Hashable {
        /// Raw text completion.
        case prompt(String)
        /// A chat, rendered with the model's template.
        case messages([ChatMessage])
    }
    public let input: Input
    public let sampling: SamplingParameters
    /// The weights it runs on, as checked where they were loaded: set by the model manager from
    /// the request's `ModelSource`, returned in the summary.
    public internal(set) var weights: WeightsProvenance?

    public init(input: Input, sampling: SamplingParameters) {
        self.input = input
        self.sampling = sampling
    }
}

/// Why a generation ended.
public enum FinishReason: String, Sendable, Hashable, Codable {
    /// End of generation or a stop sequence.
    case stop
    /// `maxTokens` reached.
    case length
    /// The client left, or the server stopped it (shutdown past its drain deadline).
    case cancelled
}

/// What a stream yields: text as it is produced, then one summary.
public enum GenerationEvent: Sendable {
    case token(String)
    case finished(GenerationSummary)
}

/// The outcome of one generation.
public struct GenerationSummary: Sendable, Hashable, Codable {
    public let text: String
    public let finishReason: FinishReason
    public let promptTokens: [Int32]
    public let completionTokens: [Int32]
    public let seed: UInt32
    /// Time from submission to the first generated token, and to the end.
    public let timeToFirstTokenMs: Double
    public let totalMs: Double
    /// Time the request waited for a free slot.
    public let queuedMs: Double
    /// Prompt tokens whose memory came from the prefix cache (not decoded again).
    public var cachedPromptTokens = 0
    /// The engine that made it (nil when it never ran).
    public var engine: EngineFacts?
    /// The weights it ran on: their SHA-256 and signature check (nil when it never ran, or from
    /// an external backend).
    public var weights: WeightsProvenance?
    /// Each generated token's log-probability and its most likely alternatives, when asked for
    /// (`SamplingParameters.logprobs`).
    public var logprobs: [TokenLogprob]?
    /// Token counts as an external backend reported them (its token ids are not known: the two
    /// id lists are empty); nil from llama.cpp here, whose ids are the lists.
    public var reportedUsage: ReportedUsage?
    /// A tool chat's answer as the template's parser reads it: its text and its calls (`text`
    /// holds the whole generated text, markup included).
    public var message: AssistantMessage?

    public struct ReportedUsage: Sendable, Hashable, Codable {
        public var promptTokens: Int
        public var completionTokens: Int

        public init(promptTokens: Int, completionTokens: Int) {
            self.promptTokens = promptTokens
            self.completionTokens = completionTokens
        }
    }

    /// How many tokens the prompt and the answer took (the reported counts when the ids are unknown).
    public var promptTokenCount: Int { reportedUsage?.promptTokens ?? promptTokens.count }
    public var completionTokenCount: Int { reportedUsage?.completionTokens ?? completionTokens.count }
}

/// Turns token bytes into text safely: a UTF-8 character split over two tokens is held until it
/// is complete, and text that may be the start of a stop sequence is held until it is not.
struct TextAssembler {
    private var bytes: [UInt8] = []
    private var held = ""
    private(set) var text = ""
    let stops: [String]

    init(stops: [String]) { self.stops = stops }

    /// Adds a token's bytes; returns the text that may be emitted now, and whether a stop
    /// sequence ended the generation.
    mutating func append(_ piece: [UInt8]) -> (emit: String, stopped: Bool) {
        bytes += piece
        let complete = Self.completePrefixLength(bytes)
        guard complete > 0 else { return ("", false) }
        held += String(decoding: bytes[..<complete], as: UTF8.self)
        bytes.removeFirst(complete)
        for stop in stops {
            if let range = held.range(of: stop) {
                let emit = String(held[..<range.lowerBound])
                text += emit
                held = ""
                return (emit, true)
            }
        }
        // Keep back the longest tail that could still grow into a stop sequence.
        var keep = 0
        for stop in stops {
            for length in stride(from: min(stop.count - 1, held.count), to: 0, by: -1) where held.hasSuffix(stop.prefix(length)) {
                keep = max(keep, length)
                break
            }
        }
        let emit = String(held.dropLast(keep))
        held = String(held.suffix(keep))
        text += emit
        return (emit, false)
    }

    /// Whatever is held back, at the end of the generation.
    mutating func flush() -> String {
        let rest = held + (bytes.isEmpty ? "" : String(decoding: bytes, as: UTF8.self))
        held = ""
        bytes = []
        text += rest
        return rest
    }

    /// Length of the longest prefix of `bytes` that ends on a UTF-8 character boundary.
    static func completePrefixLength(_ bytes: [UInt8]) -> Int {
        var index = bytes.count
        var back = 0
        while index > 0, back < 4 {
            let byte = bytes[index - 1]
            if byte & 0xC0 != 0x80 {
                let needed = byte < 0x80 ? 1 : byte >= 0xF0 ? 4 : byte >= 0xE0 ? 3 : byte >= 0xC0 ? 2 : 1
                return needed == back + 1 ? bytes.count : index - 1
            }
            index -= 1
            back += 1
        }
        return bytes.count  // not UTF-8 at all: let the decoder replace it
    }
}

extension GenerationSummary {
    /// Generated tokens per second, from the first token to the last.
    public var tokensPerSecond: Double {
        Self.tokensPerSecond(tokens: completionTokens.count, totalMs: totalMs, firstTokenMs: timeToFirstTokenMs)
    }

    /// The same from the figures a record keeps.
    public static func tokensPerSecond(tokens: Int, totalMs: Double, firstTokenMs: Double) -> Double {
        let generating = (totalMs - firstTokenMs) / 1000
        return tokens > 1 && generating > 0 ? Double(tokens - 1) / generating : 0
    }

    /// Collects a stream to its summary (the non-streaming `infer`).
    public static func collect(_ stream: AsyncThrowingStream<GenerationEvent, any Error>) async throws -> GenerationSummary {
        for try await event in stream {
            if case .finished(let summary) = event { return summary }
        }
        throw CancellationError()
    }
}

extension GenerationSummary {
    /// The summary of a generation that ended before its end (the client left, or it failed).
    public static func cancelled(text: String, seed: UInt32) -> GenerationSummary {
        GenerationSummary(
            text: text, finishReason: .cancelled, promptTokens: [], completionTokens: [], seed: seed, timeToFirstTokenMs: 0, totalMs: 0,
            queuedMs: 0)
    }

    /// The summary of an answer from an external backend: its text and the token counts it
    /// reported, no token ids.
    public static func external(
        text: String, finishReason: FinishReason, usage: ReportedUsage, seed: UInt32, timeToFirstTokenMs: Double, totalMs: Double,
        engine: EngineFacts
    ) -> GenerationSummary {
        var summary = GenerationSummary(
            text: text, finishReason: finishReason, promptTokens: [], completionTokens: [], seed: seed, timeToFirstTokenMs: timeToFirstTokenMs,
            totalMs: totalMs, queuedMs: 0)
        summary.reportedUsage = usage
        summary.engine = engine
        return summary
    }
}

/// A generated token's log-probability under the model (natural log of the softmax of the raw
/// logits, as llama-server's `n_probs` reports it), with the most likely tokens at that step.
public struct TokenLogprob: Sendable, Hashable, Codable {
    public struct Alternative: Sendable, Hashable, Codable {
        public var token: Int32
        /// The token's bytes (a UTF-8 character may span tokens) and their text.
        public var bytes: [UInt8]
        public var logprob: Double

        public var text: String { String(decoding: bytes, as: UTF8.self) }

        public init(token: Int32, bytes: [UInt8], logprob: Double) {
            self.token = token
            self.bytes = bytes
            self.logprob = logprob
        }
    }

    public var chosen: Alternative
    /// Most likely first.
    public var top: [Alternative]

    public init(chosen: Alternative, top: [Alternative]) {
        self.chosen = chosen
        self.top = top
    }

    /// The log-probabilities at `logits` (a vocabulary's): the chosen token's and the `count` most likely.
    static func measure(logits: UnsafePointer<Float>, vocabularySize: Int, chosen: Int32, count: Int, piece: (Int32) -> [UInt8]) -> TokenLogprob {
        // In single precision and in this order, as llama-server computes its n_probs: the same
        // figures to the last bits, not figures more exact than the reference's.
        var maximum = -Float.infinity
        for index in 0..<vocabularySize { maximum = max(maximum, logits[index]) }
        var sum: Float = 0
        for index in 0..<vocabularySize { sum += expf(logits[index] - maximum) }
        func alternative(_ token: Int32) -> Alternative {
            Alternative(token: token, bytes: piece(token), logprob: Double(logf(expf(logits[Int(token)] - maximum) / sum)))
        }
        // The `count` largest logits, ties by lower id (a bounded insertion: count ≤ 20).
        var best: [(logit: Float, token: Int32)] = []
        if count > 0 {
            for index in 0..<vocabularySize {
                let logit = logits[index]
                guard best.count < count || logit > best[best.count - 1].logit else { continue }
                let position = best.firstIndex { logit > $0.logit } ?? best.count
                best.insert((logit, Int32(index)), at: position)
                if best.count > count { best.removeLast() }
            }
        }
        return TokenLogprob(chosen: alternative(chosen), top: best.map { alternative($0.token) })
    }
}
