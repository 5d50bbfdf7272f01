import Synchronization

/// Runs `body` for at most `limit`: past it, the caller gets `ServingError(.deadlineExceeded)` at
/// once and `body` is cancelled. The caller does not wait for `body` to notice the cancellation
/// (blocking work handed to a thread pool cannot be interrupted, only abandoned; what it computes
/// still fills the caches). Cancelling the caller cancels `body`.
public func withDeadline<T: Sendable>(
    _ limit: Duration, _ message: @autoclosure () -> String, _ body: @escaping @Sendable () async throws -> T
) async throws -> T {
    let race = Race<T>(message: message())
    return try await withTaskCancellationHandler {
        try await withCheckedThrowingContinuation { continuation in
            race.start(continuation, limit: limit, body)
        }
    } onCancel: {
        race.finish(.failure(CancellationError()))
    }
}

/// The work and the timer of one `withDeadline`: whichever ends first resumes the caller and
/// cancels the other.
private final class Race<T: Sendable>: Sendable {
    private struct State {
        var continuation: CheckedContinuation<T, any Error>?
        var tasks: [Task<Void, Never>] = []
        var finished = false
    }
    private let state = Mutex(State())
    private let message: String

    init(message: String) { self.message = message }

    func start(_ continuation: CheckedContinuation<T, any Error>, limit: Duration, _ body: @escaping @Sendable () async throws -> T) {
        let cancelledAlready = state.withLock { state in
            state.continuation = continuation
            return state.finished
        }
        if cancelledAlready {
            finishNow(.failure(CancellationError()), continuation)
            return
        }
        let work = Task {
            do { self.finish(.success(try await body())) } catch { self.finish(.failure(error)) }
        }
        let message = self.message
        let timer = Task {
            do { try await Task.sleep(for: limit) } catch { return }
            self.finish(.failure(ServingError(.deadlineExceeded, message)))
        }
        let late = state.withLock { state in
            state.tasks = [work, timer]
            return state.finished
        }
        if late {
            work.cancel()
            timer.cancel()
        }
    }

    /// Resumes the caller with the first result; later ones are dropped.
    func finish(_ result: Result<T, any Error>) {
        let (continuation, tasks) = state.withLock { state in
            let taken = (state.continuation, state.tasks)
            state.continuation = nil
            state.finished = true
            return taken
        }
        for task in tasks { task.cancel() }
        if let continuation { continuation.resume(with: result) }
    }

    private func finishNow(_ result: Result<T, any Error>, _ continuation: CheckedContinuation<T, any Error>) {
        state.withLock { $0.continuation = nil }
        continuation.resume(with: result)
    }
}
