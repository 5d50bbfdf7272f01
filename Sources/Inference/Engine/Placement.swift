import CLlama

/// How many of a model's layers go to the GPUs: a number, all of them, or as many as fit the
/// GPU memory budget (`auto`). Without a GPU (a CPU build, or no device listed) none do.
public enum GPULayers: Sendable, Hashable, LosslessStringConvertible {
    case count(Int)
    case all
    case auto

    public init?(_ description: String) {
        switch description.lowercased() {
        case "all": self = .all
        case "auto": self = .auto
        default:
            guard let count = Int(description), count >= 0, count <= 100_000 else { return nil }
            self = .count(count)
        }
    }

    public var description: String {
        switch self {
        case .count(let count): String(count)
        case .all: "all"
        case .auto: "auto"
        }
    }
}

/// Where one model's weights and work go: its CPU weight layout and its GPU offload. Decided
/// once per load by the plan (`ModelManager`) and used by its dry run and its load alike.
struct Placement: Sendable, Hashable {
    /// Weights repacked for the CPU's GEMM kernels (llama.cpp's extra buffer types).
    var repack = true
    /// Layers offloaded to `devices` (llama.cpp's `n_gpu_layers`; the output layer is the last).
    var gpuLayers = 0
    /// The GPUs (ggml device names) used; empty: none.
    var devices: [String] = []
    /// The KV cache and attention on the GPUs with their layers (llama.cpp's `offload_kqv`).
    var offloadKV = true
    /// Whether an answer's products do not depend on what shares its calls, as measured for
    /// this placement's kernels and the model's weight types.
    var batchInvariant = false

    /// The ggml devices of `names` that exist, in order, as llama.cpp's NULL-terminated list.
    func withDeviceList<T>(_ body: (UnsafeMutablePointer<ggml_backend_dev_t?>) throws -> T) rethrows -> T {
        var list: [ggml_backend_dev_t?] = (gpuLayers > 0 ? devices : []).compactMap { ggml_backend_dev_by_name($0) }
        list.append(nil)
        return try list.withUnsafeMutableBufferPointer { try body($0.baseAddress!) }
    }

    /// The GPUs this build of llama.cpp sees (ggml device names: CUDA0…), with their description.
    static func availableGPUs() -> [(name: String, description: String)] {
        LlamaBackend.ensureInitialised()
        return (0..<ggml_backend_dev_count()).compactMap { index in
            guard let device = ggml_backend_dev_get(index) else { return nil }
            let type = ggml_backend_dev_type(device)
            guard type == GGML_BACKEND_DEVICE_TYPE_GPU || type == GGML_BACKEND_DEVICE_TYPE_IGPU else { return nil }
            return (String(cString: ggml_backend_dev_name(device)), String(cString: ggml_backend_dev_description(device)))
        }
    }
}
