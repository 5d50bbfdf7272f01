import Foundation
public import Hummingbird
import HummingbirdWebSocket
import Inference
public import Logging
import NIOCore
public import Serving

/// `pedigree worker`'s HTTP application: health, the worker's status and generations (the
/// protocol in `WorkerWire`). Every route but health needs the shared token.
public func buildWorkerApplication(services: WorkerServices, logger: Logger) -> some ApplicationProtocol {
    let router = Router(context: PedigreeRequestContext.self)
    router.add(middleware: RequestIDMiddleware())
    router.add(middleware: ErrorRendering(.worker, metrics: nil))
    router.add(middleware: WorkerGate(services: services))
    let state = services.state
    router.get("healthz") { _, _ -> String in "ok\n" }
    router.get("readyz") { _, _ -> Response in
        state.phase == .serving ? plain(.ok, "ready\n") : plain(.serviceUnavailable, "shutting down\n")
    }
    router.get(RouterPath(WorkerWire.statusPath)) { request, _ -> Response in
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let body = (try? encoder.encode(await services.status())) ?? Data("{}".utf8)
        return Response(status: .ok, headers: [.contentType: "application/json"], body: ResponseBody(byteBuffer: ByteBuffer(bytes: body)))
    }
    router.post(RouterPath(WorkerWire.generatePath)) { request, context -> Response in
        guard let wire = await decode(WorkerWire.GenerateRequest.self, request, services) else {
            throw EdgeError(.badUserInput, "the body is not a generation request")
        }
        let prepared: WorkerServices.Prepared
        do {
            prepared = try services.prepare(wire)
        } catch {
            logger.info("worker generation refused", metadata: ["request_id": "\(context.requestID)", "error": "\(error)"])
            throw error
        }
        // The answer starts at once; loading, queueing and generating follow as events, with a
        // heartbeat comment every second. Closing the connection (the gateway's client left, or
        // its deadline passed) ends the stream, and with it the generation.
        return eventStream(untilClosed(services.events(prepared), context.channel), state) { event in
            switch event {
            case .token(let piece): .token(piece)
            case .finished(let summary): .summary(summary)
            }
        }
    }
    router.post(RouterPath(WorkerWire.loadPath)) { request, context -> Response in
        guard let wire = await decode(WorkerWire.LoadRequest.self, request, services) else {
            throw EdgeError(.badUserInput, "the body is not a load request")
        }
        return eventStream(untilClosed(try services.load(wire.artifact), context.channel), state) { .loaded($0) }
    }
    router.post(RouterPath(WorkerWire.unloadPath)) { request, _ -> Response in
        guard let wire = await decode(WorkerWire.UnloadRequest.self, request, services) else {
            throw EdgeError(.badUserInput, "the body is not an unload request")
        }
        let unloaded = try await services.unload(md5: wire.md5)
        return Response(
            status: .ok, headers: [.contentType: "application/json"],
            body: ResponseBody(byteBuffer: ByteBuffer(bytes: (try? JSONEncoder().encode(["unloaded": unloaded])) ?? Data())))
    }
    let configuration = services.configuration
    return Application(
        router: router,
        server: pedigreeServer(idleTimeout: configuration.httpIdleTimeout) { _, _, _ in .dontUpgrade },
        configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: "pedigree-worker"),
        logger: logger)
}

/// What a worker answers before any route: health to anyone; everything else only to a gateway.
/// Browsers never talk to a worker, so a request with `Origin` is refused, a POST must be JSON
/// (what a cross-site form cannot send without a preflight), the token is checked, and a worker
/// without a token answers loopback names only (DNS rebinding, as `AccessMiddleware`).
struct WorkerGate: RouterMiddleware {
    typealias Context = PedigreeRequestContext
    let services: WorkerServices

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        switch request.uri.path {
        case "/healthz", "/readyz": return try await next(request, context)
        default: break
        }
        if let origin = request.headers[.origin] {
            throw EdgeError(.forbidden, "origin \(origin): a worker answers its gateway, not browsers")
        }
        if !services.requiresToken, services.configuration.listensOnLoopbackOnly,
            !OriginPolicy(allowed: []).allowsOpenAccess(host: request.head.authority)
        {
            throw EdgeError(.forbidden, "host \(request.head.authority ?? ""): this worker runs without a token and answers loopback names only")
        }
        if request.method == .post, !isJSON(request.headers[.contentType]) {
            throw EdgeError(.badUserInput, "a worker takes Content-Type: application/json", status: .unsupportedMediaType)
        }
        guard services.admits(authorization: request.headers[.authorization]) else {
            throw EdgeError(.unauthenticated, "this worker answers its gateway only (Authorization: Bearer <worker token>)")
        }
        return try await next(request, context)
    }
}

/// The body of `request` as `T`; nil when it is not one.
private func decode<T: Decodable>(_ type: T.Type, _ request: Request, _ services: WorkerServices) async -> T? {
    guard let body = try? await RequestBody.collect(request, timeout: services.configuration.httpIdleTimeout) else { return nil }
    return try? JSONDecoder().decode(T.self, from: Data(body.readableBytesView))
}

/// Server-sent events of `events`: each element as `event(element)`, a heartbeat comment for each
/// `nil`, an `error` event when it fails. Counted as an open stream while it runs (the drain waits).
private func eventStream<Element: Sendable>(
    _ events: AsyncThrowingStream<Element?, any Error>, _ state: ServingState, _ event: @escaping @Sendable (Element) -> WorkerWire.Event
) -> Response {
    Response(
        status: .ok, headers: [.contentType: "text/event-stream", .cacheControl: "no-store"],
        body: ResponseBody { writer in
            await state.streaming {
                do {
                    for try await element in events {
                        try await writer.write(ByteBuffer(string: element.map { event($0).text } ?? ": heartbeat\n\n"))
                    }
                } catch {
                    let (code, message) = ErrorCode.classify(error)
                    try? await writer.write(ByteBuffer(string: WorkerWire.Event.error(code: code.rawValue, message: message).text))
                }
            }
            try await writer.finish(nil)
        })
}

private func plain(_ status: HTTPResponse.Status, _ body: String) -> Response {
    Response(status: status, headers: [.contentType: "text/plain; charset=utf-8"], body: ResponseBody(byteBuffer: ByteBuffer(string: body)))
}
