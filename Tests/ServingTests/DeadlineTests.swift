import Foundation
import Testing

@testable import Serving

/// `withDeadline` answers at the deadline, without waiting for work that ignores cancellation.
@Suite struct DeadlineTests {
    @Test func workWithinTheDeadlineAnswers() async throws {
        let value = try await withDeadline(.seconds(5), "slow") { 42 }
        #expect(value == 42)
        await #expect(throws: CancellationError.self) {
            try await withDeadline(.seconds(5), "slow") { () async throws -> Int in throw CancellationError() }
        }
    }

    @Test func blockingWorkPastTheDeadlineIsAbandoned() async throws {
        let started = ContinuousClock.now
        do {
            _ = try await withDeadline(.milliseconds(200), "too slow") {
                // Blocks a pool thread for 4 s and never looks at cancellation.
                try await offload { Thread.sleep(forTimeInterval: 4) }
            }
            Issue.record("no deadline error")
        } catch let error as ServingError {
            #expect(error.code == .deadlineExceeded && error.message == "too slow")
        }
        // Well before the work ends, with room for a loaded machine (2 cores running tests in parallel
        // once took 1.5 s to answer a 200 ms deadline).
        let waited = ContinuousClock.now - started
        #expect(waited < .seconds(3), "waited \(waited)")
    }

    @Test func cancellingTheCallerCancelsTheWork() async throws {
        let task = Task {
            try await withDeadline(.seconds(30), "slow") { () async throws -> Int in
                try await Task.sleep(for: .seconds(30))
                return 1
            }
        }
        try await Task.sleep(for: .milliseconds(50))
        task.cancel()
        await #expect(throws: CancellationError.self) { try await task.value }
    }
}
