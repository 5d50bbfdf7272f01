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

/// The routes, grouped by concern, each group answering its errors in its own format behind the
/// same gate: operations (health, readiness, metrics) and the webhook as text, GraphQL and
/// GraphiQL, the OpenAI routes, the web view. Every route only translates: the answers come from
/// the services.
public func buildRouter(services: Services, logger: Logger) throws -> (Router<PedigreeRequestContext>, GraphQLEndpoint) {
    let metrics = ServerMetrics(telemetry: services.telemetry)
    let endpoint = try GraphQLEndpoint(schema: try SchemaBuilder.build(), services: services, metrics: metrics, logger: logger)
    let origins = OriginPolicy(allowed: services.configuration.allowedOrigins)
    let router = Router(context: PedigreeRequestContext.self)
    router.add(middleware: RequestIDMiddleware())
    if services.configuration.tls != nil { router.add(middleware: StrictTransportSecurity()) }
    router.add(middleware: RequestMetrics(metrics: metrics))
    // One trace per request, continuing the client's W3C traceparent (a no-op unless tracing is on).
    router.add(middleware: TracingMiddleware())
    // Routing's own answers (404) and refused preflights, outside every group.
    router.add(middleware: ErrorRendering(.plainText, metrics: metrics))
    router.add(middleware: Preflight(origins: origins))
    let groups = RouteGroups(router: router, gate: AccessMiddleware(access: services.access, origins: origins), metrics: metrics)
    OperationsRoutes(services: services, metrics: metrics).add(to: groups.group(.plainText))
    WebhookRoutes(services: services).add(to: groups.group(.plainText))
    GraphQLRoutes(endpoint: endpoint, services: services).add(to: groups.group(.graphQL))
    OpenAIRoutes(services: services, logger: logger).add(to: groups.group(.openAI))
    WebView(services: services).add(to: groups.group(.html))
    return (router, endpoint)
}

/// Makes the route groups of one router: each renders its errors in its format and puts every
/// request through the same gate (`AccessMiddleware`) first. Routes are added through groups
/// only, so none can be reached around the gate.
struct RouteGroups {
    let router: Router<PedigreeRequestContext>
    let gate: AccessMiddleware
    let metrics: ServerMetrics?

    func group(_ format: ErrorFormat) -> RouterGroup<PedigreeRequestContext> {
        router.group().add(middleware: ErrorRendering(format, metrics: metrics)).add(middleware: gate)
    }
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

/// A text answer.
func text(_ status: HTTPResponse.Status, _ body: String, contentType: String = "text/plain; charset=utf-8") -> Response {
    Response(status: status, headers: [.contentType: contentType], body: ResponseBody(byteBuffer: ByteBuffer(string: body)))
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
