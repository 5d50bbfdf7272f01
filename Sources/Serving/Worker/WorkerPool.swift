import ArtifactStore
import AsyncHTTPClient
import Crypto
import Foundation
public import Inference
public import Lineage
public import Logging
import Metrics
import NIOCore
import NIOHTTP1
public import ServiceLifecycle
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// The gateway's inference workers (`pedigree worker`), and which one runs each generation.
///
/// Placement: rendezvous hashing of the artifact md5 over the healthy workers, so each model
/// stays on one worker (its weights fetched and loaded once) and moves only when that worker
/// leaves. Bounded load: a worker whose queue is full answers `OVERLOADED` and the request spills
/// to the next-ranked worker. Health: a status poll every second, and any failure to connect or
/// a stream that breaks marks a worker down until its next good poll. A request that has streamed
/// nothing yet is retried once on another worker; one that has streamed ends with
/// `WORKER_UNAVAILABLE`. A client that leaves cancels the request, which closes the connection,
/// which ends the worker's generation.
public final class WorkerPool: GenerationBackend, Service {
    public struct Member: Sendable {
        public let url: String
        public var healthy = true
        public var status: WorkerWire.Status?
        public var failures = 0
        /// Status polls that timed out in a row (a busy worker may answer late: three make it down).
        public var slowPolls = 0
    }

    private let members: Mutex<[String: Member]>
    /// Workers named in the configuration: kept whatever DNS says.
    private let listed: Set<String>
    /// A DNS name whose addresses are workers (a Kubernetes headless Service), and their port.
    private let dns: (host: String, port: Int)?
    private let authorization: String?
    private let client: HTTPClient
    private let validate: @Sendable (GenerationRequest) throws -> GenerationRequest
    /// The gateway's check of a revision's weights (`RevisionArtifacts.admit`: signature and
    /// policy), made before anything is sent; its outcome is what the record carries.
    private let admit: (@Sendable (ModelLineage) async throws -> WeightsProvenance)?
    private let fallbackFacts: EngineFacts
    /// Generations running on the workers (a drain past its deadline ends them).
    private let running = RunningGenerations()
    private let logger: Logger
    let pollInterval: Duration
    let dnsInterval: Duration

    /// - Parameters:
    ///   - urls: the workers' base URLs (`http://host:port`).
    ///   - validate: the gateway's own request limits, checked before anything is sent.
    ///   - admit: the gateway's check of the weights (nil: none), before anything is sent.
    ///   - dns: `host:port`, re-resolved every `dnsInterval`; each address is a worker.
    public init(
        urls: [String], dns: String? = nil, token: String?, facts: EngineFacts, pollInterval: Duration = .seconds(1),
        dnsInterval: Duration = .seconds(5), validate: @escaping @Sendable (GenerationRequest) throws -> GenerationRequest,
        admit: (@Sendable (ModelLineage) async throws -> WeightsProvenance)? = nil, logger: Logger
    ) {
        self.admit = admit
        let trimmed = urls.map { $0.hasSuffix("/") ? String($0.dropLast()) : $0 }
        members = Mutex(Dictionary(trimmed.map { ($0, Member(url: $0)) }, uniquingKeysWith: { first, _ in first }))
        listed = Set(trimmed)
        self.dns = dns.flatMap(Self.hostAndPort)
        self.dnsInterval = dnsInterval
        authorization = token.map { "Bearer \($0)" }
        // A worker sends a heartbeat every second while it works: three silent seconds mean it
        // hung or its link is cut.
        var configuration = HTTPClient.Configuration(timeout: .init(connect: .seconds(2), read: .seconds(3)))
        // Every running generation holds a connection: as many as the workers have slots.
        configuration.connectionPool.concurrentHTTP1ConnectionsPerHostSoftLimit = 256
        client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        self.validate = validate
        fallbackFacts = facts
        self.pollInterval = pollInterval
        self.logger = logger
    }

    /// A pool whose `run` never ran (a command that opened the services without serving) still
    /// shuts its client down; after `run` this finds it shut down already.
    deinit {
        client.shutdown { _ in }
    }

    public func engineFacts(for revision: ModelLineage) -> EngineFacts { fallbackFacts }

    /// The workers and what they last reported.
    public var snapshot: [Member] { members.withLock { Array($0.values) }.sorted { $0.url < $1.url } }

    /// The models the healthy workers last reported holding, each with its worker.
    public func loadedModels() async -> [ModelManager.Status] { reportedModels }

    /// Workers fetch from DVC remotes only: weights kept in Git or Git LFS are refused here, before
    /// the gateway fetches or checks anything.
    public func accept(_ revision: ModelLineage) throws { _ = try Self.artifact(of: revision) }

    private var reportedModels: [ModelManager.Status] {
        snapshot.filter(\.healthy).flatMap { member in
            (member.status?.models ?? []).map { ModelManager.Status($0, on: member.url, revisions: []) }
        }
    }

    /// Rendezvous order of `urls` for an artifact: highest SHA-256(md5 "\n" url) first (its first
    /// eight bytes, big-endian).
    public static func rank(_ md5: String, _ urls: [String]) -> [String] {
        func score(_ url: String) -> UInt64 {
            SHA256.hash(data: Data("\(md5)\n\(url)".utf8)).prefix(8).reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        }
        return urls.map { ($0, score($0)) }.sorted { $0.1 > $1.1 }.map(\.0)
    }

    /// The healthy workers in rendezvous order for `md5` (every worker, if none is healthy);
    /// with `engine`, only those that last reported facts reproducing it. Workers whose last
    /// report says they would make the request wait — the model loaded with every slot busy and
    /// requests queued, or not loaded and less free memory than its `size` — move to the end
    /// (still tried, in order: the report may be a second old).
    func candidates(_ md5: String, size: Int64 = 0, engine: EngineFacts? = nil) -> [String] {
        let (healthy, all, reports) = members.withLock { members in
            let fitting = members.values.filter { member in engine.map { member.status?.engine.reproduces($0) ?? false } ?? true }
            return (fitting.filter(\.healthy).map(\.url), fitting.map(\.url), members.mapValues(\.status))
        }
        let ranked = Self.rank(md5, healthy.isEmpty ? all : healthy)
        func wouldWait(_ url: String) -> Bool {
            guard let report = reports[url] ?? nil else { return false }
            if let model = report.models.first(where: { $0.md5 == md5 }) {
                return model.activeSlots >= model.slots && model.queueDepth > 0
            }
            return report.memoryFree.map { $0 < size } ?? false
        }
        return ranked.filter { !wouldWait($0) } + ranked.filter(wouldWait)
    }

    /// Records a worker's report (the status poll).
    func update(_ url: String, status: WorkerWire.Status) -> Bool {
        members.withLock { members -> Bool in
            let was = members[url]?.healthy ?? true
            members[url]?.healthy = !status.draining
            members[url]?.status = status
            members[url]?.slowPolls = 0
            return !was && !status.draining
        }
    }

    private func markFailed(_ url: String, _ reason: String) {
        let wasHealthy = members.withLock { members -> Bool in
            let was = members[url]?.healthy ?? false
            members[url]?.healthy = false
            members[url]?.failures += 1
            return was
        }
        if wasHealthy { logger.warning("worker down", metadata: ["worker": "\(url)", "reason": "\(reason)"]) }
    }

    // MARK: Generation

    public func generate(
        _ request: GenerationRequest, on revision: ModelLineage, engine: EngineFacts?
    ) async throws -> AsyncThrowingStream<GenerationEvent, any Error> {
        let request = try validate(request)
        let artifact = try Self.artifact(of: revision)  // before anything is fetched or checked
        let provenance = try await admit?(revision)
        let body = try JSONEncoder().encode(WorkerWire.GenerateRequest(artifact: artifact, request: request))
        let order = candidates(revision.artifact.md5, size: revision.artifact.size, engine: engine)
        if let engine, order.isEmpty {
            throw ServingError(
                .workerUnavailable,
                "no inference worker has the engine facts of the record (\(engine.mode.rawValue) mode, prefill chunk \(engine.prefillChunk), "
                    + "flash attention \(engine.flashAttention ? "on" : "off"), \(engine.threads) threads, \(engine.build)): start one with them to replay it"
            )
        }
        return AsyncThrowingStream { continuation in
            let seed = request.sampling.seed
            let task = running.start { await self.run(body, order: order, seed: seed, weights: provenance, into: continuation) }
            continuation.onTermination = { _ in task.cancel() }
        }
    }

    /// Tries the workers in `order`: spills past those that are full, retries once past one that
    /// fails before streaming anything.
    private func run(
        _ body: Data, order: [String], seed: UInt32, weights: WeightsProvenance?,
        into continuation: AsyncThrowingStream<GenerationEvent, any Error>.Continuation
    ) async {
        var text = ""
        var retried = false
        var lastError = ServingError(.overloaded, "no inference worker is configured")
        for url in order {
            if Task.isCancelled { return running.endCancelled(continuation, text: text, seed: seed) }
            var streamed = false
            do {
                let response: HTTPClientResponse
                switch try await post(url, WorkerWire.generatePath, body) {
                case .success(let answer): response = answer
                case .failure(let error):
                    guard let passed = passOn(error, url) else { return continuation.finish(throwing: error) }
                    lastError = passed
                    Self.count(.spills, url, code: error.code)
                    continue  // full, leaving, or refusing our token: the next-ranked worker
                }
                var parser = EventStreamParser()
                for try await chunk in response.body {
                    for event in parser.feed(chunk) {
                        switch event {
                        case .token(let piece):
                            streamed = true
                            text += piece
                            continuation.yield(.token(piece))
                        case .summary(var summary):
                            summary.engine?.worker = url
                            summary.weights = weights
                            continuation.yield(.finished(summary))
                            return continuation.finish()
                        case .error(let code, let message):
                            let code = ErrorCode(rawValue: code) ?? .internalError
                            if !streamed, code == .overloaded || code == .shuttingDown {
                                lastError = ServingError(code, message)
                                Self.count(.spills, url, code: code)
                                throw SpillToNext()
                            }
                            return continuation.finish(throwing: ServingError(code, message))
                        case .loaded:
                            break  // not an event of a generation
                        }
                    }
                }
                throw ServingError(.workerUnavailable, "the worker's stream ended without a summary")
            } catch is SpillToNext {
                continue
            } catch {
                if Task.isCancelled { return running.endCancelled(continuation, text: text, seed: seed) }
                markFailed(url, "\(error)")
                if streamed {
                    Self.count(.streamFailures, url)
                    return continuation.finish(throwing: ServingError(.workerUnavailable, "the inference worker failed during the generation"))
                }
                lastError = ServingError(.workerUnavailable, "no inference worker could run the generation")
                if retried { break }
                retried = true
                Self.count(.retries, url)
            }
        }
        continuation.finish(throwing: lastError)
    }

    private struct SpillToNext: Error {}

    /// What the routing counts, by worker (`/metrics`).
    enum Count: String {
        /// Requests a worker refused as full or leaving (or refusing the token), sent to the next one.
        case spills = "pedigree_worker_spills_total"
        /// Requests that failed on a worker before streaming anything, tried once more elsewhere.
        case retries = "pedigree_worker_retries_total"
        /// Streams a worker broke after sending tokens (ended with `WORKER_UNAVAILABLE`).
        case streamFailures = "pedigree_worker_stream_failures_total"
    }

    static func count(_ count: Count, _ url: String, code: ErrorCode? = nil) {
        Counter(label: count.rawValue, dimensions: [("worker", url)] + (code.map { [("code", $0.rawValue)] } ?? [])).increment()
    }

    /// The wire form of `revision`'s weights.
    static func artifact(of revision: ModelLineage) throws -> WorkerWire.Artifact {
        let artifact = revision.artifact
        guard case .dvc = artifact.origin else {
            // Workers fetch from DVC remotes with their own configuration; they hold no repository.
            throw ServingError(
                .artifactUnavailable,
                "\(revision.id): weights kept in \(artifact.origin.kind) reach no inference worker (workers fetch from DVC remotes)")
        }
        let location = try ArtifactLocation(artifact)
        return .init(md5: artifact.md5, hashName: artifact.hashName, size: artifact.size, pathInOut: location.pathInOut, remote: location.remote)
    }

    /// POSTs `body` to a worker: its answer, or the error it answered with (its code and
    /// message); throws when the worker cannot be reached.
    private func post(_ url: String, _ path: String, _ body: Data) async throws -> Result<HTTPClientResponse, ServingError> {
        var outgoing = HTTPClientRequest(url: url + path)
        outgoing.method = .POST
        outgoing.headers.add(name: "Content-Type", value: "application/json")
        if let authorization { outgoing.headers.add(name: "Authorization", value: authorization) }
        outgoing.body = .bytes(ByteBuffer(bytes: body))
        let response = try await client.execute(outgoing, timeout: .hours(24))
        guard response.status == .ok else {
            let answer = try? await response.body.collect(upTo: 1 << 20)
            let fields = answer.flatMap { try? JSONDecoder().decode([String: String].self, from: Data($0.readableBytesView)) } ?? [:]
            let code = fields["code"].flatMap(ErrorCode.init(rawValue:)) ?? .internalError
            return .failure(ServingError(code, fields["message"] ?? "worker answered \(response.status.code)"))
        }
        return .success(response)
    }

    /// A worker's refusal that sends the request to the next worker (it is full or leaving, or
    /// refuses the gateway's token: then it is marked down), as the error to report when no
    /// worker is left; nil for one that ends the request (bad input, …).
    private func passOn(_ error: ServingError, _ url: String) -> ServingError? {
        switch error.code {
        case .overloaded, .shuttingDown: return error
        case .unauthenticated:
            markFailed(url, "it refused the gateway's token")
            return ServingError(.workerUnavailable, "a worker refused the gateway's token (worker-token-file)")
        default: return nil
        }
    }

    /// Ends every generation running on the workers (closing its connection cancels it there),
    /// each with finish reason `cancelled` and its text so far.
    public func stopGenerating() async { running.stopAll() }

    // MARK: Loading

    /// Loads `revision`'s weights on the worker its md5 ranks first (the next one when that one
    /// is full, leaving or unreachable), as a generation would; the worker fetches them first.
    public func load(_ revision: ModelLineage) async throws -> ModelManager.Status {
        let artifact = try Self.artifact(of: revision)  // before anything is fetched or checked
        _ = try await admit?(revision)
        let body = try JSONEncoder().encode(WorkerWire.LoadRequest(artifact: artifact))
        var lastError = ServingError(.workerUnavailable, "no inference worker could load the model")
        for url in candidates(revision.artifact.md5, size: revision.artifact.size) {
            let outcome: Result<WorkerWire.Status.Model, ServingError>
            do {
                outcome = try await load(body, on: url)
            } catch {
                if Task.isCancelled { throw CancellationError() }
                markFailed(url, "\(error)")
                continue
            }
            switch outcome {
            case .success(let model):
                return ModelManager.Status(model, on: url, revisions: [revision.id])
            case .failure(let error):
                guard let passed = passOn(error, url) else { throw error }
                lastError = passed
            }
        }
        throw lastError
    }

    /// One worker's load: the model it reports, or the error it gave; throws when the worker
    /// cannot be reached or its stream breaks.
    private func load(_ body: Data, on url: String) async throws -> Result<WorkerWire.Status.Model, ServingError> {
        let response: HTTPClientResponse
        switch try await post(url, WorkerWire.loadPath, body) {
        case .success(let answer): response = answer
        case .failure(let error): return .failure(error)
        }
        var parser = EventStreamParser()
        for try await chunk in response.body {
            for event in parser.feed(chunk) {
                switch event {
                case .loaded(let model): return .success(model)
                case .error(let code, let message): return .failure(ServingError(ErrorCode(rawValue: code) ?? .internalError, message))
                case .token, .summary: break
                }
            }
        }
        throw ServingError(.workerUnavailable, "the worker's load stream ended without an answer")
    }

    /// Unloads `revision`'s weights from every healthy worker holding them (if idle there);
    /// whether any held them. A worker where they are busy answers `OVERLOADED`, which is thrown.
    public func unload(_ revision: ModelLineage) async throws -> Bool {
        let body = try JSONEncoder().encode(WorkerWire.UnloadRequest(md5: revision.artifact.md5))
        var unloaded = false
        for url in snapshot.filter(\.healthy).map(\.url) {
            let outcome: Result<HTTPClientResponse, ServingError>
            do {
                outcome = try await post(url, WorkerWire.unloadPath, body)
            } catch {
                markFailed(url, "\(error)")
                continue
            }
            let response = try outcome.get()
            let answer = try await response.body.collect(upTo: 1 << 16)
            unloaded = try JSONDecoder().decode([String: Bool].self, from: Data(answer.readableBytesView))["unloaded"] == true || unloaded
        }
        return unloaded
    }

    // MARK: Health

    /// Polls every worker's status until shutdown.
    public func run() async throws {
        // Placed before the HTTP server in the group, so it stops after it (routing goes on
        // while the gateway drains).
        try? await cancelWhenGracefulShutdown {
            var resolved: ContinuousClock.Instant?
            while !Task.isCancelled {
                if self.dns != nil, resolved.map({ ContinuousClock.now - $0 >= self.dnsInterval }) ?? true {
                    await self.resolve()
                    resolved = .now
                }
                await withTaskGroup(of: Void.self) { group in
                    for url in self.members.withLock({ Array($0.keys) }) {
                        group.addTask { await self.poll(url) }
                    }
                }
                try await Task.sleep(for: self.pollInterval)
            }
        }
        try await client.shutdown()
    }

    /// Sets the members to the listed workers plus the addresses the DNS name has now (a name
    /// that does not resolve keeps the last answer: a DNS hiccup must not empty the pool).
    private func resolve() async {
        guard let dns else { return }
        guard let addresses = try? await offload({ try Self.addresses(of: dns.host) }), !addresses.isEmpty else {
            logger.warning("workers: DNS name did not resolve; keeping the last members", metadata: ["name": "\(dns.host)"])
            return
        }
        let found = Set(addresses.map { $0.contains(":") ? "http://[\($0)]:\(dns.port)" : "http://\($0):\(dns.port)" })
        let (added, removed) = members.withLock { members -> ([String], [String]) in
            let added = found.filter { members[$0] == nil }
            let removed = members.keys.filter { !found.contains($0) && !listed.contains($0) }
            for url in added { members[url] = Member(url: url) }
            for url in removed { members[url] = nil }
            return (added.sorted(), removed.sorted())
        }
        if !added.isEmpty || !removed.isEmpty {
            logger.info("workers from DNS", metadata: ["name": "\(dns.host)", "added": "\(added)", "removed": "\(removed)"])
        }
    }

    static func hostAndPort(_ text: String) -> (host: String, port: Int)? {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]), (1...65535).contains(port) else { return nil }
        let host = text[..<colon].trimmingCharacters(in: CharacterSet(charactersIn: "[]"))
        return host.isEmpty ? nil : (host, port)
    }

    /// The IPv4 and IPv6 addresses of `host` (getaddrinfo: /etc/hosts, then DNS).
    static func addresses(of host: String) throws -> [String] {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, nil, &hints, &list) == 0, let first = list else { return [] }
        defer { freeaddrinfo(first) }
        var found: [String] = []
        var cursor: UnsafeMutablePointer<addrinfo>? = first
        while let entry = cursor {
            var buffer = [CChar](repeating: 0, count: Int(NI_MAXHOST))
            if let address = entry.pointee.ai_addr,
                getnameinfo(address, entry.pointee.ai_addrlen, &buffer, socklen_t(buffer.count), nil, 0, NI_NUMERICHOST) == 0
            {
                let text = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
                if !found.contains(text) { found.append(text) }
            }
            cursor = entry.pointee.ai_next
        }
        return found
    }

    private func poll(_ url: String) async {
        var request = HTTPClientRequest(url: url + WorkerWire.statusPath)
        if let authorization { request.headers.add(name: "Authorization", value: authorization) }
        do {
            let response = try await client.execute(request, timeout: .seconds(3))
            let body = try await response.body.collect(upTo: 1 << 20)
            guard response.status == .ok else { throw ServingError(.workerUnavailable, "status \(response.status.code)") }
            let status = try JSONDecoder().decode(WorkerWire.Status.self, from: Data(body.readableBytesView))
            if update(url, status: status) { logger.info("worker up", metadata: ["worker": "\(url)"]) }
        } catch let error as HTTPClientError where error == .deadlineExceeded {
            let slow = members.withLock { members -> Int in
                members[url]?.slowPolls += 1
                return members[url]?.slowPolls ?? 0
            }
            if slow >= 3 { markFailed(url, "three status polls in a row timed out") }
        } catch {
            markFailed(url, "\(error)")
        }
    }
}

/// Splits a server-sent-event byte stream into `WorkerWire` events.
struct EventStreamParser {
    private var pending = Data()

    mutating func feed(_ buffer: ByteBuffer) -> [WorkerWire.Event] {
        pending.append(contentsOf: buffer.readableBytesView)
        var events: [WorkerWire.Event] = []
        let separator = Data("\n\n".utf8)
        while let range = pending.range(of: separator) {
            let block = String(decoding: pending[pending.startIndex..<range.lowerBound], as: UTF8.self)
            pending.removeSubrange(pending.startIndex..<range.upperBound)
            var name = ""
            var data = ""
            for line in block.split(separator: "\n", omittingEmptySubsequences: false) {
                if line.hasPrefix("event:") { name = line.dropFirst(6).trimmingCharacters(in: .whitespaces) }
                if line.hasPrefix("data:") { data += line.dropFirst(5).trimmingCharacters(in: .whitespaces) }
            }
            if let event = WorkerWire.Event(name: name, data: Data(data.utf8)) { events.append(event) }
        }
        return events
    }
}
