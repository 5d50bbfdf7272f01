import Foundation
public import Inference
public import Ledger
public import Lineage
public import Logging
public import ServiceLifecycle
import UnixSignals

/// On shutdown (SIGTERM/SIGINT through the `ServiceGroup`): `/readyz` turns 503 and new work is
/// refused at once; running generations finish up to `deadline`; the rest are cancelled (each
/// answer ends with finish reason `cancelled` and is recorded). A second signal ends the wait at
/// once. Placed after the HTTP server in the group, it shuts down first, while the server still
/// answers.
public struct DrainService: Service {
    let state: ServingState
    let inference: InferenceService
    let deadline: Duration
    let logger: Logger

    public init(state: ServingState, inference: InferenceService, deadline: Duration, logger: Logger) {
        self.state = state
        self.inference = inference
        self.deadline = deadline
        self.logger = logger
    }

    public func run() async throws {
        do { try await gracefulShutdown() } catch { return }
        state.enter(.draining)
        let inference = self.inference
        let state = self.state
        logger.info("shutting down: draining", metadata: ["running": "\(inference.runningCount)", "deadline": "\(deadline)"])
        let signals = await UnixSignalsSequence(trapping: .sigterm, .sigint)
        let deadline = self.deadline
        let interrupted = await withTaskGroup(of: Bool.self) { group in
            group.addTask { await Self.waitUntilIdle(inference, state, within: nil) }
            group.addTask {
                try? await Task.sleep(for: deadline)
                return false
            }
            group.addTask {
                for await _ in signals { return true }
                return false
            }
            let first = await group.next() ?? false
            group.cancelAll()
            return first
        }
        if inference.runningCount > 0 || state.openStreams > 0 {
            logger.warning(
                interrupted ? "second signal: cancelling running generations" : "drain deadline passed: cancelling running generations",
                metadata: ["running": "\(inference.runningCount)"])
            await inference.stopGenerating()
            // Each cancelled generation is recorded before it leaves the count.
            _ = await Self.waitUntilIdle(inference, state, within: .seconds(10))
        }
        state.enter(.stopped)
        logger.info("drained")
    }

    /// Waits until no generation runs and no edge streams one (true), or `limit` passes or the
    /// task is cancelled (false).
    private static func waitUntilIdle(_ inference: InferenceService, _ state: ServingState, within limit: Duration?) async -> Bool {
        let start = ContinuousClock.now
        while inference.runningCount > 0 || state.openStreams > 0 {
            if Task.isCancelled { return false }
            if let limit, ContinuousClock.now - start > limit { return false }
            try? await Task.sleep(for: .milliseconds(10))
        }
        return true
    }
}

/// Unloads models idle past their keep-alive, until shutdown; then unloads every model.
public struct ModelSweeper: Service {
    let models: ModelManager

    public init(models: ModelManager) { self.models = models }

    public func run() async throws {
        await cancelWhenGracefulShutdown { await models.sweepIdleModels() }
        await models.unloadAll()
    }
}

/// The ledger's background work (checkpoints, the PostgreSQL pool and migrations) from start to
/// shutdown, then a last flush.
public struct LedgerService: Service {
    let ledger: any InferenceLedger

    public init(ledger: any InferenceLedger) { self.ledger = ledger }

    public func run() async throws {
        try await cancelWhenGracefulShutdown { try await ledger.run() }
    }
}

/// Applies the ledger's retention (age and row count) every hour, until shutdown.
public struct LedgerRetention: Service {
    let ledger: any InferenceLedger
    let maxAge: Duration?
    let maxRows: Int?
    let interval: Duration
    let logger: Logger

    public init(ledger: any InferenceLedger, maxAge: Duration?, maxRows: Int?, interval: Duration = .seconds(3600), logger: Logger) {
        self.ledger = ledger
        self.maxAge = maxAge
        self.maxRows = maxRows
        self.interval = interval
        self.logger = logger
    }

    public func run() async throws {
        guard maxAge != nil || maxRows != nil else { return try await gracefulShutdown() }
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            do {
                let removed = try await ledger.applyRetention(maxAge: maxAge, maxRows: maxRows)
                if removed > 0 { logger.info("ledger retention", metadata: ["removed": "\(removed)"]) }
            } catch {
                logger.warning("ledger retention failed", metadata: ["error": "\(error)"])
            }
            do { try await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) } } catch { return }
        }
    }
}

/// Loads the configured revisions once at start (in parallel, each failure logged), then waits
/// for shutdown.
public struct Preload: Service {
    let specs: [String]
    let lineage: LineageService
    /// Loads where generations run (this process or the workers).
    let inference: InferenceService
    let logger: Logger

    public init(specs: [String], lineage: LineageService, inference: InferenceService, logger: Logger) {
        self.specs = specs
        self.lineage = lineage
        self.inference = inference
        self.logger = logger
    }

    public func run() async throws {
        await cancelWhenGracefulShutdown {
            await withTaskGroup(of: Void.self) { group in
                for spec in specs {
                    group.addTask {
                        do {
                            let revision = try lineage.lineage(spec)
                            try await inference.load(revision)
                            logger.info("preloaded", metadata: ["revision": "\(revision.id)"])
                        } catch {
                            logger.error("preload failed", metadata: ["spec": "\(spec)", "error": "\(ErrorCode.classify(error).message)"])
                        }
                    }
                }
            }
        }
        try? await gracefulShutdown()
    }
}
