import CLlama
import Foundation
import Logging
import Synchronization

/// llama.cpp's process-wide set-up, done once: backend initialisation and a log callback that
/// keeps llama.cpp's chatter out of standard error (warnings and errors still pass).
enum LlamaBackend {
    private static let initialised = Mutex(false)

    static func ensureInitialised() {
        initialised.withLock { done in
            guard !done else { return }
            llama_log_set(logCallback, nil)
            llama_backend_init()
            done = true
        }
    }

    /// The library's build and features, recorded with every inference (read once: it does not
    /// change while the process runs, and every answer used to build the string again).
    static let systemInfo: String = String(cString: llama_print_system_info())

    /// Whether ggml's tiled K-quant GEMM is on: its variable `GGML_CPU_TILED_MM`, read by ggml
    /// once, at the first product (`ModelManager` turns it off for the invariant mode before).
    static var tiledMatmul: Bool {
        // Read as ggml reads it (`atoi(env) != 0`: " 1" and "1x" are on, "x" is off).
        guard let value = getenv("GGML_CPU_TILED_MM") else { return true }
        return atoi(value) != 0
    }

    /// Turns ggml's tiled K-quant GEMM off for this process unless the operator set it: it sums a
    /// row differently when eight or more rows share a call. Only before the first product.
    static func disableTiledMatmul() {
        setenv("GGML_CPU_TILED_MM", "0", 0)
    }

    /// `CUDA0 NVIDIA H100 80GB HBM3 (driver 550.54.15)`: a GPU as the engine facts name it.
    static func describeDevice(_ name: String) -> String {
        ensureInitialised()
        var text = name
        if let device = ggml_backend_dev_by_name(name) { text += " " + String(cString: ggml_backend_dev_description(device)) }
        if let driver = gpuDriver { text += " (driver \(driver))" }
        return text
    }

    /// The NVIDIA kernel module's version, where there is one.
    static let gpuDriver: String? = {
        guard let text = try? String(contentsOfFile: "/proc/driver/nvidia/version", encoding: .utf8) else { return nil }
        // NVRM version: NVIDIA UNIX x86_64 Kernel Module  550.54.15  Tue Mar  5 …
        let words = text.split(whereSeparator: \.isWhitespace)
        return words.first { word in word.split(separator: ".").count >= 2 && word.allSatisfy { $0.isNumber || $0 == "." } }.map(String.init)
    }()

    /// A GPU's free and total bytes as its driver reports them, by ggml device name (`CUDA0`);
    /// nil when there is no such device.
    static func deviceMemory(_ name: String) -> (free: Int64, total: Int64)? {
        ensureInitialised()
        guard let device = ggml_backend_dev_by_name(name) else { return nil }
        var free = 0
        var total = 0
        ggml_backend_dev_memory(device, &free, &total)
        return (Int64(free), Int64(total))
    }
}

/// The host's memory as a process here may use it.
public enum HostMemory {
    /// The cgroup's memory limit where one is set (a container's), else the machine's memory.
    public static let total: UInt64 = {
        let machine = meminfo("MemTotal") ?? 8 << 30
        let limits = ["/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"].compactMap { path in
            (try? String(contentsOfFile: path, encoding: .utf8)).flatMap { UInt64($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
        }
        return min(machine, limits.min() ?? machine)
    }()

    /// A `/proc/meminfo` figure in bytes.
    static func meminfo(_ field: String) -> UInt64? {
        guard let text = try? String(contentsOfFile: "/proc/meminfo", encoding: .utf8) else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix(field + ":") {
            let parts = line.split(separator: " ")
            if parts.count >= 2, let kib = UInt64(parts[1]) { return kib * 1024 }
        }
        return nil
    }
}

/// llama.cpp's warnings and errors, through the process's log system (so a JSON log stays JSON).
private let llamaLogger = Logger(label: "llama.cpp")

/// A plain C function (no captures), as `llama_log_set` requires.
private func logCallback(level: ggml_log_level, text: UnsafePointer<CChar>?, _: UnsafeMutableRawPointer?) {
    guard level.rawValue >= GGML_LOG_LEVEL_WARN.rawValue, level != GGML_LOG_LEVEL_CONT, let text else { return }
    let message = String(cString: text).trimmingCharacters(in: .whitespacesAndNewlines)
    guard !message.isEmpty else { return }
    if level == GGML_LOG_LEVEL_ERROR { llamaLogger.error("\(message)") } else { llamaLogger.warning("\(message)") }
}
