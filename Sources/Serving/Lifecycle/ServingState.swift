import Synchronization

/// Where the server is in its life. `/readyz` answers from it, and new work is admitted only
/// while it is `serving`.
public final class ServingState: Sendable {
    public enum Phase: String, Sendable {
        /// Accepting work.
        case serving
        /// A shutdown signal arrived: running generations finish, new ones are refused.
        case draining
        /// Drained: only the last steps of shutdown remain.
        case stopped
    }

    private let current = Mutex<Phase>(.serving)
    private let streams = Atomic<Int>(0)

    public init() {}

    public var phase: Phase { current.withLock { $0 } }

    /// Moves to `phase` (never back to `serving`).
    public func enter(_ phase: Phase) {
        current.withLock { current in
            if phase != .serving { current = phase }
        }
    }

    /// Answers an edge is still streaming to a client whose connection a shutdown would close
    /// (WebSocket subscriptions): the drain waits for them too.
    public var openStreams: Int { streams.load(ordering: .relaxed) }

    /// Runs `body`, counted in `openStreams`.
    public func streaming(_ body: () async -> Void) async {
        streams.add(1, ordering: .relaxed)
        await body()
        streams.subtract(1, ordering: .relaxed)
    }

    /// Throws `SHUTTING_DOWN` unless new work is taken now.
    public func admit() throws {
        guard phase == .serving else { throw ServingError(.shuttingDown, "the server is shutting down: retry on another replica or later") }
    }
}
