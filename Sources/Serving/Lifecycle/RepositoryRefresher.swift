public import Foundation
public import Lineage
public import Logging
public import ServiceLifecycle
import Synchronization

/// Fetches the Git remote, one fetch at a time: a `refresh` mutation, a webhook and the periodic
/// timer that arrive while a fetch runs all wait for that fetch instead of starting another.
/// Each fetch is bounded by `timeout`.
public final class RepositoryRefresher: Sendable {
    let lineage: LineageService
    let timeout: Duration
    let logger: Logger
    private let inFlight = Mutex<Task<Void, any Error>?>(nil)
    private let status = Mutex<(last: Date?, failures: Int64)>((nil, 0))

    public init(lineage: LineageService, timeout: Duration = .seconds(60), logger: Logger) {
        self.lineage = lineage
        self.timeout = timeout
        self.logger = logger
    }

    /// When the last fetch succeeded, and how many failed since start (for `/metrics`).
    public var lastSuccess: Date? { status.withLock { $0.last } }
    public var failures: Int64 { status.withLock { $0.failures } }

    /// Fetches now, or joins the fetch that is running.
    public func refresh() async throws {
        let task = inFlight.withLock { current -> Task<Void, any Error> in
            if let current { return current }
            let task = Task { [self] in
                defer { inFlight.withLock { $0 = nil } }
                let before = try? lineage.head()
                do {
                    try await lineage.refresh(timeout: timeout)
                    status.withLock { $0.last = Date() }
                } catch {
                    status.withLock { $0.failures += 1 }
                    logger.warning("refresh failed", metadata: ["error": "\(ErrorCode.classify(error).message)"])
                    throw error
                }
                let after = try? lineage.head()
                if before != after { logger.info("repository refreshed", metadata: ["head": "\(after ?? "-")"]) }
            }
            current = task
            return task
        }
        try await task.value
    }
}

/// Refreshes the repository every `interval` until shutdown (0: never).
public struct PeriodicRefresh: Service {
    let refresher: RepositoryRefresher
    let interval: Duration

    public init(refresher: RepositoryRefresher, interval: Duration) {
        self.refresher = refresher
        self.interval = interval
    }

    public func run() async throws {
        guard interval > .zero else { return try await gracefulShutdown() }
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            do {
                try await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }
            } catch {
                return
            }
            guard !Task.isShuttingDownGracefully else { return }
            try? await refresher.refresh()
        }
    }
}
