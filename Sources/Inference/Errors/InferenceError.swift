/// Why an inference could not run.
public enum InferenceError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The request itself is wrong (no prompt, limits exceeded, bad sampling values).
    case badInput(String)
    /// Slots and queue are full, or no model can be evicted to make room: retry later.
    case overloaded(String)
    /// The file is not a loadable GGUF (truncated, another format, unsupported architecture).
    case loadFailed(String)

    public var description: String {
        switch self {
        case .badInput(let message), .overloaded(let message): message
        case .loadFailed(let message): "the model could not be loaded: \(message)"
        }
    }
}
