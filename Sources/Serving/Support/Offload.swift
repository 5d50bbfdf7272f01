public import Lineage
import NIOPosix

/// Runs blocking work (libgit2 reads, YAML parsing, hashing) on NIO's thread pool instead of the
/// cooperative pool that every request, health check and token write shares: a heavy lineage
/// query then occupies a pool thread, and `/healthz` and cached answers keep flowing.
public func offload<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await NIOThreadPool.singleton.runIfActive(body)
}

extension LineageService {
    /// The lineage of a revision spec: at once when every step is cached, else computed on the
    /// thread pool.
    public func lineageOffloaded(_ spec: String) async throws -> ModelLineage {
        if let cached = cachedLineage(spec) { return cached }
        return try await offload { try self.lineage(spec) }
    }

    /// The lineage of `model` as of `commit`, computed on the thread pool.
    public func lineageOffloaded(model: String, at commit: String) async throws -> ModelLineage {
        try await offload { try self.lineage(model: model, at: commit) }
    }
}
