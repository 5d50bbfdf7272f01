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
