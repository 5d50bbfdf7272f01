import Foundation
public import Inference
import Synchronization

/// The generations a remote backend (workers, external servers) is running, so that a drain
/// past its deadline can end them as the local engine ends its own: each with a summary whose
/// finish reason is `cancelled`, its text so far kept.
final class RunningGenerations: Sendable {
    private let tasks = Mutex<[UUID: Task<Void, Never>]>([:])
    private let stopped = Atomic<Bool>(false)

    /// Runs `work` as a task that `stopAll` cancels.
    func start(_ work: @escaping @Sendable () async -> Void) -> Task<Void, Never> {
        let key = UUID()
        // Registered under the lock it removes itself with: it cannot end before it is listed.
        return tasks.withLock { tasks in
            let task = Task {
                await work()
                _ = self.tasks.withLock { $0.removeValue(forKey: key) }
            }
            tasks[key] = task
            return task
        }
    }

    /// Cancels every running generation, and ends each with a cancelled summary.
    func stopAll() {
        stopped.store(true, ordering: .relaxed)
        for task in tasks.withLock({ Array($0.values) }) { task.cancel() }
    }

    /// Ends a generation whose task was cancelled: with a cancelled summary when `stopAll` did it,
    /// else (its client left) with `CancellationError`.
    func endCancelled(_ continuation: AsyncThrowingStream<GenerationEvent, any Error>.Continuation, text: String, seed: UInt32) {
        if stopped.load(ordering: .relaxed) {
            continuation.yield(.finished(.cancelled(text: text, seed: seed)))
            continuation.finish()
        } else {
            continuation.finish(throwing: CancellationError())
        }
    }
}
