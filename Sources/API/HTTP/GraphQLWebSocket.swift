import Access
import Foundation
import GraphQL
import HTTPTypes
import HummingbirdWebSocket
import Logging
import NIOCore
import NIOWebSocket
import Serving
import Synchronization

/// GraphQL over WebSocket with the `graphql-transport-ws` protocol (the graphql-ws library's):
/// `connection_init` → `connection_ack`, `subscribe` → `next`… `complete` (or `error`),
/// `complete` from the client cancels a subscription, `ping` ↔ `pong`. Protocol violations close
/// the socket with the protocol's 44xx codes. Each subscription runs in a task of its own, and
/// all of them are cancelled when the socket closes.
struct GraphQLWebSocket: Sendable {
    static let protocolName = "graphql-transport-ws"
    let endpoint: GraphQLEndpoint
    let access: Authenticator
    let origins: OriginPolicy
    let logger: Logger

    /// Upgrades `GET /graphql` requests that ask for the protocol.
    func shouldUpgrade(_ request: HTTPRequest) -> ShouldUpgradeResult<WebSocketDataHandler<HTTP1WebSocketUpgradeChannel.Context>> {
        let path = request.path?.split(separator: "?").first.map(String.init)
        let offered = request.headerFields[values: .secWebSocketProtocol].flatMap { $0.split(separator: ",") }
            .map { $0.trimmingCharacters(in: .whitespaces) }
        guard path == "/graphql", offered.contains(Self.protocolName) else { return .dontUpgrade }
        // A page on a foreign site may not open a socket (browsers send its Origin): not
        // upgraded (Hummingbird answers a declined upgrade with 400 and closes).
        let rebound = !access.isEnabled && !origins.allowsOpenAccess(host: request.authority)
        if rebound || request.headerFields[.origin].map({ !origins.allows(origin: $0, host: request.authority) }) == true {
            logger.info(
                "websocket upgrade refused: origin or host not allowed",
                metadata: ["origin": "\(request.headerFields[.origin] ?? "-")", "host": "\(request.authority ?? "-")"])
            return .dontUpgrade
        }
        // One request id for the socket and everything run over it.
        let id = RequestIDMiddleware.id(from: request.headerFields)
        let authorization = request.headerFields[.authorization]
        return .upgrade([.secWebSocketProtocol: Self.protocolName, .requestID: id]) { inbound, outbound, _ in
            try await serve(inbound, outbound, requestID: id, authorization: authorization)
        }
    }

    private func serve(_ inbound: WebSocketInboundStream, _ outbound: WebSocketOutboundWriter, requestID: String, authorization: String?) async throws
    {
        var caller = RequestInfo(requestID: requestID)
        let running = RunningSubscriptions()
        defer { running.cancelAll() }
        var acknowledged = false
        // A socket that never says `connection_init` must not be held open: the protocol's 4408.
        let initialised = Atomic<Bool>(false)
        let timeout = endpoint.services.configuration.websocketInitTimeout
        let watchdog = Task { [logger] in
            try await Task.sleep(for: timeout)
            guard !initialised.load(ordering: .relaxed) else { return }
            logger.info("websocket closed: no connection_init", metadata: ["request_id": "\(requestID)"])
            try await outbound.close(.init(codeNumber: 4408), reason: "Connection initialisation timeout")
        }
        defer { watchdog.cancel() }
        // The key presented at `connection_init` is checked again before every operation and every
        // second while the socket is open: a revoked key (or one whose role changed) ends it.
        var keyWatch: Task<Void, any Error>?
        defer { keyWatch?.cancel() }
        for try await message in inbound.messages(maxSize: 1 << 20) {
            guard case .text(let text) = message,
                let object = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any],
                let type = object["type"] as? String
            else {
                try await outbound.close(.init(codeNumber: 4400), reason: "Invalid message")
                return
            }
            switch type {
            case "connection_init":
                guard !acknowledged else {
                    try await outbound.close(.init(codeNumber: 4429), reason: "Too many initialisation requests")
                    return
                }
                // The key: in the payload (`Authorization` / `authorization`, with or without
                // `Bearer `), else the upgrade request's header.
                let payload = object["payload"] as? [String: Any]
                let presented = (payload?["Authorization"] ?? payload?["authorization"]) as? String ?? authorization
                switch authenticate(presented) {
                case .success(let principal):
                    caller = RequestInfo(principal: principal, requestID: requestID)
                case .failure(let error):
                    endpoint.metrics.countError(ErrorCode.classify(error).code.rawValue)
                    logger.info("websocket refused", metadata: ["request_id": "\(requestID)", "reason": "\(error)"])
                    try await outbound.close(.init(codeNumber: 4403), reason: "Forbidden")
                    return
                }
                acknowledged = true
                initialised.store(true, ordering: .relaxed)
                keyWatch = Task { [principal = caller.principal, logger] in
                    while true {
                        try await Task.sleep(for: .seconds(1))
                        if principal.isStillValid { continue }
                        running.cancelAll()
                        logger.info("websocket closed: its key was revoked or changed", metadata: ["request_id": "\(requestID)"])
                        try await outbound.close(.init(codeNumber: 4403), reason: "Forbidden")
                        return
                    }
                }
                try await outbound.write(.text(#"{"type":"connection_ack"}"#))
            case "ping":
                try await outbound.write(.text(#"{"type":"pong"}"#))
            case "pong":
                continue
            case "subscribe":
                guard acknowledged else {
                    try await outbound.close(.init(codeNumber: 4401), reason: "Unauthorized")
                    return
                }
                guard let id = object["id"] as? String, let payload = object["payload"] as? [String: Any],
                    let payloadData = try? JSONSerialization.data(withJSONObject: payload),
                    let request = try? JSONDecoder().decode(GraphQLEndpoint.Request.self, from: payloadData)
                else {
                    try await outbound.close(.init(codeNumber: 4400), reason: "Invalid subscribe message")
                    return
                }
                guard caller.principal.isStillValid else {
                    running.cancelAll()
                    try await outbound.close(.init(codeNumber: 4403), reason: "Forbidden")
                    return
                }
                if running.contains(id) {
                    try await outbound.close(.init(codeNumber: 4409), reason: "Subscriber for \(id) already exists")
                    return
                }
                if let meter = caller.principal.meter {
                    do throws(AccessError) {
                        try meter.admitRequest()
                    } catch {
                        let refusal = endpoint.failure(.rateLimited, error.description, retryAfter: Self.retryAfter(error))
                        try await outbound.write(.text(Self.errorMessage(id: Self.quoted(id), answer: refusal.body)))
                        continue
                    }
                }
                let limit = endpoint.services.configuration.websocketMaxSubscriptions
                if running.count >= limit {
                    // The socket stays open; this one subscription is refused.
                    let refusal = endpoint.failure(.overloaded, "this socket already runs \(limit) subscriptions (websocket-max-subscriptions)")
                    try await outbound.write(.text(Self.errorMessage(id: Self.quoted(id), answer: refusal.body)))
                    continue
                }
                running.start(id) { [endpoint, caller = caller.nextOperation()] in
                    // Counted until its last message is written, so a drain never closes the
                    // socket under a subscription that is finishing.
                    await endpoint.services.state.streaming {
                        await Self.run(request, id: id, endpoint: endpoint, caller: caller, outbound: outbound)
                    }
                }
            case "complete":
                if let id = object["id"] as? String { running.cancel(id) }
            default:
                try await outbound.close(.init(codeNumber: 4400), reason: "Unknown message type")
                return
            }
        }
    }

    /// One subscription (or query, or mutation): its results as `next`, then `complete`; a
    /// request that cannot run gets `error` with its GraphQL errors.
    private static func run(
        _ request: GraphQLEndpoint.Request, id: String, endpoint: GraphQLEndpoint, caller: RequestInfo, outbound: WebSocketOutboundWriter
    ) async {
        let quotedID = quoted(id)
        do {
            switch await endpoint.stream(request, by: caller) {
            case .failure(_, let body):
                try await outbound.write(.text(errorMessage(id: quotedID, answer: body)))
                return
            case .results(let results):
                for try await result in results {
                    try await outbound.write(.text(#"{"type":"next","id":\#(quotedID),"payload":\#(String(decoding: result, as: UTF8.self))}"#))
                }
            }
            if !Task.isCancelled { try await outbound.write(.text(#"{"type":"complete","id":\#(quotedID)}"#)) }
        } catch {
            // The socket is gone or the subscription was completed by the client: nothing to send.
        }
    }

    /// The principal of a key as presented at `connection_init` (`Bearer …` or the bare key).
    private func authenticate(_ presented: String?) -> Result<Principal, AccessError> {
        let keys = access.current()
        guard let presented else { return keys.authenticate(key: nil) }
        return presented.lowercased().hasPrefix("bearer ") ? keys.authenticate(authorization: presented) : keys.authenticate(key: presented)
    }

    static func retryAfter(_ error: AccessError) -> Int? {
        if case .rateLimited(_, let seconds) = error { seconds } else { nil }
    }

    /// A subscription id as a JSON string.
    private static func quoted(_ id: String) -> String {
        String(decoding: (try? JSONEncoder().encode(id)) ?? Data("\"\"".utf8), as: UTF8.self)
    }

    /// The protocol's `error` message for subscription `id` (quoted): the GraphQL errors of a
    /// JSON answer that refused the request.
    private static func errorMessage(id quotedID: String, answer body: Data) -> String {
        let errors = (try? JSONSerialization.jsonObject(with: body) as? [String: Any])?["errors"] ?? []
        let payload = String(decoding: (try? JSONSerialization.data(withJSONObject: errors)) ?? Data("[]".utf8), as: UTF8.self)
        return #"{"type":"error","id":\#(quotedID),"payload":\#(payload)}"#
    }
}

/// The subscriptions of one socket, by the client's id.
final class RunningSubscriptions: Sendable {
    private let tasks = Mutex<[String: Task<Void, Never>]>([:])

    func contains(_ id: String) -> Bool { tasks.withLock { $0[id] != nil } }

    var count: Int { tasks.withLock { $0.count } }

    /// Runs `body` as subscription `id`; it is registered before it can finish and remove itself.
    func start(_ id: String, _ body: @escaping @Sendable () async -> Void) {
        tasks.withLock { tasks in
            tasks[id] = Task {
                await body()
                _ = self.tasks.withLock { $0.removeValue(forKey: id) }
            }
        }
    }

    func cancel(_ id: String) { tasks.withLock { $0.removeValue(forKey: id) }?.cancel() }

    func cancelAll() {
        for task in tasks.withLock({ $0.values }) { task.cancel() }
    }
}
