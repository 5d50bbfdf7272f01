import CBuildInfo
import CLlama
import Foundation

/// How the decode loop puts tokens into `llama_decode` calls.
public enum DecodeMode: String, Sendable, Codable, CaseIterable {
    /// Every answer's token ids are independent of what ran beside it: a prompt is prefilled in
    /// fixed-size chunks at fixed positions, each chunk in a call of its own; generating
    /// sequences share calls (one token each). The default.
    case invariant
    /// As llama-server: prompt tokens and the next token of every generating sequence in one
    /// call, split by llama.cpp as it sees fit. Slightly faster; an answer may depend on its
    /// neighbours in the last bits, and so in tokens.
    case mixed
}

/// Pedigree's version and the commit it was built from.
public enum PedigreeBuild {
    /// The release this source tree is.
    public static let version = "0.25.0"
    /// The Git commit built (`-dirty` with uncommitted changes; `unknown` outside `script/build`).
    public static let commit = String(cString: pedigree_build_commit())
    /// `pedigree 0.25.0 (commit)`.
    public static var description: String { "pedigree \(version) (\(commit))" }
}

/// The engine facts that decide whether an answer can be reproduced bit for bit: recorded with
/// every inference, compared when one is replayed.
public struct EngineFacts: Sendable, Codable, Hashable {
    /// llama.cpp's ggml version and commit (`ggml 0.25.3 (0c1e570)`).
    public var build: String
    /// Pedigree's own version and build commit (`pedigree 0.25.0 (9f3c…)`); not an engine fact of
    /// its own (`reproduces` ignores it). Nil in records made before it was recorded.
    public var server: String? = PedigreeBuild.description
    /// The CPU features llama.cpp was built for and uses (`llama_print_system_info`).
    public var cpu: String
    public var threads: Int
    /// `n_batch` and `n_ubatch` of the context.
    public var batch: Int
    public var ubatch: Int
    /// Prompt chunk size in the invariant mode (positions of chunk boundaries are multiples of it).
    public var prefillChunk: Int
    public var flashAttention: Bool
    public var mode: DecodeMode
    /// Whether prompt prefixes are reused from the prefix cache (at chunk boundaries; does not
    /// change answers in the invariant mode).
    public var prefixCache: Bool
    /// The inference worker that ran it (its URL), when a gateway sent it to one; not an engine
    /// fact of its own (`reproduces` ignores it).
    public var worker: String?
    /// The external OpenAI-compatible backend that ran it (its name in the configuration): an
    /// engine Pedigree does not know, so nothing it made is expected to be reproduced.
    public var external: String?
    /// Whether ggml's tiled GEMM for K-quants is on (batches of eight rows or more; off in the
    /// invariant mode, where it would change a row's sums by how many rows share the call).
    public var tiledMatmul: Bool?
    /// The GPUs the engine may offload to (ggml name, model, driver); empty on a CPU engine.
    public var devices: [String]?
    /// Whether the KV cache and attention go to the GPUs with their layers.
    public var offloadKV: Bool?

    // What one model's load decided (nil in the facts of an engine not yet given a model).

    /// Layers offloaded to the GPUs (0 on a CPU engine).
    public var gpuLayers: Int?
    /// Whether the weights were repacked for the CPU's GEMM kernels.
    public var repack: Bool?
    /// Whether an answer's tokens do not depend on what shared its calls: the invariant mode, on
    /// kernels measured invariant for every weight type of the model (`KernelInvariance`), on
    /// the CPU. False in the mixed mode, for a weight type whose kernels vary, and on a GPU
    /// (not measured there): a replay of such an answer is not guaranteed.
    public var batchInvariant: Bool?

    public init(
        build: String, cpu: String, threads: Int, batch: Int, ubatch: Int, prefillChunk: Int, flashAttention: Bool, mode: DecodeMode,
        prefixCache: Bool
    ) {
        self.build = build
        self.cpu = cpu
        self.threads = threads
        self.batch = batch
        self.ubatch = ubatch
        self.prefillChunk = prefillChunk
        self.flashAttention = flashAttention
        self.mode = mode
        self.prefixCache = prefixCache
    }

    /// The ledger's form: JSON with sorted keys (the same facts give the same text).
    public var json: String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        guard let data = try? encoder.encode(self) else { return build }
        return String(decoding: data, as: UTF8.self)
    }

    /// The facts of an external backend: its name, as `external:<name>`, and nothing else known.
    public static func external(_ name: String) -> EngineFacts {
        var facts = EngineFacts(
            build: "external:\(name)", cpu: "", threads: 0, batch: 0, ubatch: 0, prefillChunk: 0, flashAttention: false, mode: .mixed,
            prefixCache: false)
        facts.external = name
        return facts
    }

    /// Facts from a ledger's `engine` text; nil for records made before the facts were recorded
    /// (those hold llama.cpp's system information only).
    public init?(json: String) {
        guard let facts = try? JSONDecoder().decode(Self.self, from: Data(json.utf8)) else { return nil }
        self = facts
    }

    /// Whether answers made under `other` are expected to be reproduced under these facts: every
    /// fact must be equal but the prefix cache (it reuses exactly what would be computed), the
    /// worker, and `batch` (llama.cpp caps it at a model's context, so it differs between models
    /// of one engine; it only bounds how many tokens one call may take, and the invariant mode's
    /// calls are a chunk or one token per sequence), and in the invariant mode `ubatch` too (it
    /// is at least the largest call, which llama.cpp then never splits: 512 in earlier builds,
    /// the largest call itself since the compute buffers were sized to it).
    /// An external backend's answers are never expected to be reproduced (its engine is unknown).
    /// What a model's load decided (`gpuLayers`, `repack`) is compared only where both facts hold
    /// it (an engine's configured facts, which route replays to workers, know no model), and
    /// `batchInvariant` not at all: it follows from the other facts and the weights.
    public func reproduces(_ other: EngineFacts) -> Bool {
        guard external == nil, other.external == nil else { return false }
        func essential(_ facts: EngineFacts, beside other: EngineFacts) -> EngineFacts {
            var facts = facts
            facts.prefixCache = false
            facts.worker = nil
            facts.server = nil
            if facts.mode == .invariant {
                facts.batch = 0
                facts.ubatch = 0
            }
            facts.batchInvariant = nil
            if other.gpuLayers == nil { facts.gpuLayers = nil }
            if other.repack == nil { facts.repack = nil }
            // Records made before these were recorded ran as ggml does by default: the tiled GEMM
            // on, no GPU named.
            facts.tiledMatmul = facts.tiledMatmul ?? true
            facts.devices = facts.devices ?? []
            return facts
        }
        return essential(self, beside: other) == essential(other, beside: self)
    }

    /// Whether a replay of an answer made under these facts must give the same tokens on an
    /// engine of `other` (of the same weights): the same engine, and kernels measured
    /// batch-invariant for both (the answer, or the replay, may have shared its calls).
    public func guarantees(_ other: EngineFacts) -> Bool {
        batchInvariant == true && other.batchInvariant != false && reproduces(other)
    }

    /// llama.cpp's build as the library reports it.
    static let libraryBuild: String = {
        let version = ggml_version().map { String(cString: $0) } ?? "unknown"
        let commit = ggml_commit().map { String(cString: $0) } ?? "unknown"
        return "ggml \(version) (\(commit))"
    }()
}
