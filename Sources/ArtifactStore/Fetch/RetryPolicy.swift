/// Retries with exponential backoff for transient remote failures (5xx, dropped connections);
/// a refusal or a missing object (4xx) fails at once, since asking again cannot help.
public struct RetryPolicy: Sendable {
    /// Tries in all, the first included.
    public var attempts: Int
    /// Delay before the first retry; doubled for each further one.
    public var baseDelay: Duration

    public init(attempts: Int = 4, baseDelay: Duration = .milliseconds(200)) {
        self.attempts = max(1, attempts)
        self.baseDelay = baseDelay
    }

    /// Runs `body`, retrying while it throws a transient `RemoteFailure`.
    func run<T>(_ body: () async throws -> T) async throws -> T {
        var delay = baseDelay
        for attempt in 1... {
            do {
                return try await body()
            } catch let failure as RemoteFailure where failure.kind == .transient && attempt < attempts {
                try await Task.sleep(for: delay)
                delay *= 2
            }
        }
        fatalError("unreachable: the loop returns or throws")
    }
}
