import Access
import ArtifactStore
import Foundation
import GraphQL
public import Hummingbird
import HummingbirdWebSocket
import Inference
import Lineage
public import Logging
import NIOCore
public import Serving

/// Builds the HTTP application from the services (the hummingbird template's shape), so tests
/// build the same application over a test repository. It listens where the configuration says;
/// the caller runs it in the services' `ServiceGroup`.
public func buildApplication(services: Services, logger: Logger) throws -> some ApplicationProtocol {
    let (router, endpoint) = try buildRouter(services: services, logger: logger)
    let webSocket = GraphQLWebSocket(
        endpoint: endpoint, access: services.access, origins: OriginPolicy(allowed: services.configuration.allowedOrigins), logger: logger)
    let configuration = services.configuration
    // The idle timeout closes connections that send nothing between requests or stall
    // inside a request's head; a stalled body is bounded by `RequestBody`.
    var server = pedigreeServer(idleTimeout: configuration.httpIdleTimeout) { request, _, _ in webSocket.shouldUpgrade(request) }
    if let files = configuration.tls {
        server = try ListenerTLS(files, logger: logger).server(server)
    } else if !configuration.listensOnLoopbackOnly {
        logger.warning(
            "listening beyond loopback without TLS: keys, prompts and answers cross the network in clear (set tls-certificate and tls-key)",
            metadata: ["host": "\(configuration.host)"])
    }
    return Application(
        router: router,
        server: server,
        configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: "pedigree"),
        logger: logger
    )
}

/// The routes: GraphQL over HTTP, GraphiQL, health, metrics, the Git webhook and the OpenAI
/// routes. Every route only translates: the answers come from the services.
public func buildRouter(services: Services, logger: Logger) throws -> (Router<PedigreeRequestContext>, GraphQLEndpoint) {
    let metrics = ServerMetrics(telemetry: services.telemetry)
    let endpoint = try GraphQLEndpoint(schema: try SchemaBuilder.build(), services: services, metrics: metrics, logger: logger)
    let router = Router(context: PedigreeRequestContext.self)
    router.add(middleware: RequestIDMiddleware())
    if services.configuration.tls != nil { router.add(middleware: StrictTransportSecurity()) }
    // One trace per request, continuing the client's W3C traceparent (a no-op unless tracing is on).
    router.add(middleware: TracingMiddleware())
    router.add(middleware: AccessMiddleware(access: services.access, origins: OriginPolicy(allowed: services.configuration.allowedOrigins)))
    let lineage = services.lineage
    let state = services.state
    let graphiql = GraphiQL(assets: services.configuration.graphiqlAssets)

    router.get("healthz") { _, _ -> String in
        metrics.countRequest("healthz")
        return "ok\n"
    }
    router.get("readyz") { _, _ -> Response in
        metrics.countRequest("readyz")
        guard state.phase == .serving else { return text(.serviceUnavailable, "shutting down\n") }
        do {
            _ = try lineage.head()
            return text(.ok, "ready\n")
        } catch {
            return text(.serviceUnavailable, "repository not ready\n")
        }
    }
    router.get("metrics") { _, context -> Response in
        metrics.countRequest("metrics")
        // Per-key series name every key: only for scrapes that may see every caller.
        let perKey = context.principal.permits(.readAllInferences)
        return text(.ok, await metrics.render(services, perKey: perKey), contentType: "text/plain; version=0.0.4")
    }
    router.post("hooks/git") { request, context -> Response in
        metrics.countRequest("hooks/git")
        guard let secret = services.configuration.webhookSecret else {
            return text(.notFound, "the Git webhook is off: set webhook-secret\n")
        }
        let body: ByteBuffer
        do throws(RequestBody.Failure) {
            body = try await RequestBody.collect(request, timeout: services.configuration.httpIdleTimeout)
        } catch {
            let answer = RequestBody.answer(error)
            return text(HTTPResponse.Status(code: answer.status), answer.message + "\n")
        }
        guard GitWebhook(secret: secret).verify(request.headers, body: Data(body.readableBytesView)) else {
            context.logger.warning("webhook refused: bad or missing signature")
            return text(.unauthorized, "bad or missing signature\n")
        }
        do {
            try await services.refresher.refresh()
            return text(.ok, "refreshed \((try? lineage.head()) ?? "")\n")
        } catch {
            return text(.badGateway, "refresh failed: \(ErrorCode.classify(error).message)\n")
        }
    }
    router.post("graphql") { request, context -> Response in
        metrics.countRequest("graphql")
        // JSON only: a form or text/plain body is what a cross-site page can send without a
        // preflight, so it is refused before it is read.
        guard isJSON(request.headers[.contentType]) else {
            return json(endpoint.failure(.badUserInput, "POST /graphql needs Content-Type: application/json", status: 415))
        }
        let buffer: ByteBuffer
        do throws(RequestBody.Failure) {
            buffer = try await RequestBody.collect(request, timeout: services.configuration.httpIdleTimeout)
        } catch {
            let answer = RequestBody.answer(error)
            return json(endpoint.failure(.badUserInput, answer.message, status: answer.status))
        }
        let decoded: GraphQLEndpoint.Request
        do {
            decoded = try JSONDecoder().decode(GraphQLEndpoint.Request.self, from: Data(buffer.readableBytesView))
        } catch {
            return json(endpoint.failure(.badUserInput, "body must be JSON: {\"query\": …, \"variables\": {…}}"))
        }
        if (request.headers[.accept] ?? "").contains("text/event-stream") {
            switch await endpoint.stream(decoded, by: context.caller) {
            case .failure(let status, let body): return json((status, body))
            case .results(let results): return serverSentEvents(untilClosed(results, context.channel))
            }
        }
        return json(await endpoint.execute(decoded, by: context.caller))
    }
    router.get("graphql") { request, context -> Response in
        metrics.countRequest("graphql")
        let parameters = formDecoded(request.uri.query ?? "")
        let query = parameters["query"]
        let accept = request.headers[.accept] ?? ""
        if query == nil, accept.contains("text/html") {
            return graphiql.page()
        }
        var variables: [String: Map]?
        if let raw = parameters["variables"], !raw.isEmpty {
            guard let parsed = try? JSONDecoder().decode([String: Map].self, from: Data(raw.utf8)) else {
                return json(endpoint.failure(.badUserInput, "variables must be a JSON object"))
            }
            variables = parsed
        }
        let decoded = GraphQLEndpoint.Request(query: query, variables: variables, operationName: parameters["operationName"])
        return json(await endpoint.execute(decoded, by: context.caller, allowMutations: false))
    }
    router.get("graphiql/:file") { _, context -> Response in
        metrics.countRequest("graphiql")
        return graphiql.file(context.parameters.get("file") ?? "")
    }
    OpenAIRoutes(services: services, metrics: metrics, logger: logger).add(to: router)
    WebView(services: services, metrics: metrics).add(to: router)
    return (router, endpoint)
}

/// GraphQL over SSE: each result as a `next` event, then `complete`. The stream ends when the
/// client goes away (the write fails), which cancels the work behind it.
func serverSentEvents(_ results: AsyncThrowingStream<Data, any Error>) -> Response {
    Response(
        status: .ok,
        headers: [.contentType: "text/event-stream", .cacheControl: "no-cache"],
        body: ResponseBody { writer in
            for try await result in results {
                var buffer = ByteBuffer(string: "event: next\ndata: ")
                buffer.writeBytes(result)
                buffer.writeString("\n\n")
                try await writer.write(buffer)
            }
            try await writer.write(ByteBuffer(string: "event: complete\ndata:\n\n"))
            try await writer.finish(nil)
        })
}

/// Whether a Content-Type names JSON (`application/json`, with or without parameters).
func isJSON(_ contentType: String?) -> Bool {
    guard let type = contentType?.split(separator: ";").first?.trimmingCharacters(in: .whitespaces).lowercased() else { return false }
    return type == "application/json" || type == "application/graphql-response+json"
}

/// Query parameters as HTML forms encode them (`+` is a space), which is what most GraphQL
/// clients send for GET requests.
func formDecoded(_ query: String) -> [String: String] {
    var result: [String: String] = [:]
    for pair in query.split(separator: "&") {
        let parts = pair.split(separator: "=", maxSplits: 1).map {
            $0.replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? String($0)
        }
        if let key = parts.first, result[key] == nil { result[key] = parts.count > 1 ? parts[1] : "" }
    }
    return result
}

private func text(_ status: HTTPResponse.Status, _ body: String, contentType: String = "text/plain; charset=utf-8") -> Response {
    Response(status: status, headers: [.contentType: contentType], body: ResponseBody(byteBuffer: ByteBuffer(string: body)))
}

private func json(_ answer: (status: Int, body: Data)) -> Response {
    Response(
        status: HTTPResponse.Status(code: answer.status),
        headers: [.contentType: "application/json; charset=utf-8"],
        body: ResponseBody(byteBuffer: ByteBuffer(bytes: answer.body))
    )
}

/// Over TLS, every answer tells browsers to use HTTPS for this host from now on (HSTS).
struct StrictTransportSecurity: RouterMiddleware {
    typealias Context = PedigreeRequestContext
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var response: Response
        do {
            response = try await next(request, context)
        } catch let error as any HTTPResponseError {
            // Routing's own answers (404, 405) too.
            response = try error.response(from: request, context: context)
        }
        response.headers[.strictTransportSecurity] = "max-age=31536000"
        return response
    }
}
