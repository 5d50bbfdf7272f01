import CLlama
import Synchronization

/// Whether a backend's matrix products give a row of a batch the same bits however many rows
/// share the call, measured per weight type on this machine (our C shim's probe over ggml's own
/// kernels), never assumed. The invariant mode relies on it: a generating sequence's token goes
/// through the same products as one row alone or as one of several, and llama.cpp's CPU backend
/// picks its kernels by the number of rows (a dot product for one, a tiled GEMM for several;
/// for repacked weights, a GEMM for each group of four rows and a GEMV for the rest).
enum KernelInvariance {
    /// How many rows share a call in the probe: every group size up to it is compared with the
    /// rows alone. Fixed, not the slot count, so that an engine of one slot (a replay) and one of
    /// eight decide alike.
    static let probedRows: Int32 = 16

    /// What one probe found.
    enum Outcome: Sendable, Equatable {
        case invariant
        case varies
        /// Not measurable: the buffer type does not hold this weight type (CPU_REPACK repacks
        /// only some), or the type cannot be quantized without an importance matrix.
        case notApplicable
    }

    private struct Key: Hashable {
        let device: String
        let bufferType: String
        let type: UInt32
        let threads: Int
    }

    private static let measured = Mutex<[Key: Outcome]>([:])

    /// The probe for weights of ggml type `type` in `bufferType` (empty: the device's own) on
    /// `device`, measured once per process and remembered.
    static func outcome(type: UInt32, device: String = "CPU", bufferType: String = "", threads: Int) -> Outcome {
        let key = Key(device: device, bufferType: bufferType, type: type, threads: threads)
        if let known = measured.withLock({ $0[key] }) { return known }
        LlamaBackend.ensureInitialised()
        let result = pedigree_matmul_invariance(device, bufferType, Int32(bitPattern: type), Int32(threads), probedRows)
        let outcome: Outcome = result == 1 ? .invariant : result == 0 ? .varies : .notApplicable
        measured.withLock { $0[key] = outcome }
        return outcome
    }

    /// The CPU weight layout the invariant mode uses for a model whose matrices have `types`,
    /// and whether its products are then batch-invariant: repacked weights where every type's
    /// kernels are invariant both repacked and not (a tensor whose rows do not fit the repacked
    /// layout stays plain), else plain weights where every type's plain kernels are; else plain
    /// layout is no help and the answer is not invariant (repacking stays on: it is faster).
    static func cpuLayout(types: Set<UInt32>, threads: Int) -> (repack: Bool, invariant: Bool) {
        let plain = types.allSatisfy { outcome(type: $0, threads: threads) == .invariant }
        let repacked = types.allSatisfy { outcome(type: $0, bufferType: "CPU_REPACK", threads: threads) != .varies }
        if plain && repacked { return (true, true) }
        if plain { return (false, true) }
        return (true, false)
    }
}
