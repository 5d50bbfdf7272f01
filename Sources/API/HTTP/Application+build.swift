import ArtifactStore
import Foundation
import GraphQL
public import Hummingbird
import HummingbirdWebSocket
import Inference
import Lineage
public import Logging
import NIOCore

/// Where and how the server listens.
public struct ServerConfiguration: Sendable {
    public var host: String
    public var port: Int
    public init(host: String = "127.0.0.1", port: Int = 8080) {
        self.host = host
        self.port = port
    }
}

/// Builds the HTTP application from explicit services (the hummingbird template's shape), so
/// tests build the same application over a test repository.
public func buildApplication(
    inference: InferenceService, configuration: ServerConfiguration, logger: Logger
) throws -> some ApplicationProtocol {
    let (router, endpoint) = try buildRouter(inference: inference, logger: logger)
    let webSocket = GraphQLWebSocket(endpoint: endpoint, logger: logger)
    return Application(
        router: router,
        server: .http1WebSocketUpgrade { request, _, _ in webSocket.shouldUpgrade(request) },
        configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: "pedigree"),
        logger: logger
    )
}

/// The routes: GraphQL over HTTP, GraphiQL, health and metrics.
public func buildRouter(inference: InferenceService, logger: Logger) throws -> (Router<PedigreeRequestContext>, GraphQLEndpoint) {
    let artifacts = inference.models.artifacts
    let service = artifacts.lineage
    let metrics = Metrics()
    let endpoint = GraphQLEndpoint(schema: try SchemaBuilder.build(), inference: inference, metrics: metrics, logger: logger)
    let router = Router(context: PedigreeRequestContext.self)

    router.get("healthz") { _, _ -> String in
        metrics.countRequest("healthz")
        return "ok\n"
    }
    router.get("readyz") { _, _ -> Response in
        metrics.countRequest("readyz")
        do {
            _ = try service.head()
            return text(.ok, "ready\n")
        } catch {
            return text(.serviceUnavailable, "repository not ready\n")
        }
    }
    router.get("metrics") { _, _ -> Response in
        metrics.countRequest("metrics")
        let cache = artifacts.cache
        let usage = await cache.usage
        let body = metrics.render(
            gauges: [
                ("pedigree_git_blob_reads_total", "Blobs read from Git (the rest came from the cache).", Int64(service.reader.blobReads)),
                ("pedigree_cache_objects", "Objects in the artifact cache.", Int64(usage.objects)),
                ("pedigree_cache_bytes", "Bytes in the artifact cache.", usage.bytes),
                ("pedigree_artifact_downloads_total", "Objects downloaded from DVC remotes since start.", Int64(await cache.downloads)),
                ("pedigree_artifact_download_bytes_total", "Bytes downloaded from DVC remotes since start.", await cache.downloadedBytes),
                ("pedigree_ledger_records_total", "Inferences recorded in the ledger since start.", inference.ledgerCounts.records),
                (
                    "pedigree_ledger_write_failures_total", "Ledger writes that failed since start (answers went out, with a warning).",
                    inference.ledgerCounts.failures
                ),
            ],
            summaries: [
                (
                    "pedigree_ledger_write_seconds", "Time an answer waits for its ledger record (latest 1024 writes).",
                    [0.5, 0.99].compactMap { quantile in inference.ledgerWriteQuantile(quantile).map { (quantile, $0) } }
                )
            ])
        return text(.ok, body, contentType: "text/plain; version=0.0.4")
    }
    router.post("graphql") { request, context -> Response in
        metrics.countRequest("graphql")
        let buffer: ByteBuffer
        do {
            buffer = try await request.body.collect(upTo: 1 << 20)
        } catch {
            return json(endpoint.failure(413, .badUserInput, "request body over 1 MiB"))
        }
        let decoded: GraphQLEndpoint.Request
        do {
            decoded = try JSONDecoder().decode(GraphQLEndpoint.Request.self, from: Data(buffer.readableBytesView))
        } catch {
            return json(endpoint.failure(400, .badUserInput, "body must be JSON: {\"query\": …, \"variables\": {…}}"))
        }
        if (request.headers[.accept] ?? "").contains("text/event-stream") {
            switch await endpoint.stream(decoded) {
            case .failure(let status, let body): return json((status, body))
            case .results(let results): return serverSentEvents(untilClosed(results, context.channel))
            }
        }
        return json(await endpoint.execute(decoded))
    }
    router.get("graphql") { request, context -> Response in
        metrics.countRequest("graphql")
        let parameters = formDecoded(request.uri.query ?? "")
        let query = parameters["query"]
        let accept = request.headers[.accept] ?? ""
        if query == nil, accept.contains("text/html") {
            return text(.ok, GraphiQL.page, contentType: "text/html; charset=utf-8")
        }
        var variables: [String: Map]?
        if let raw = parameters["variables"], !raw.isEmpty {
            guard let parsed = try? JSONDecoder().decode([String: Map].self, from: Data(raw.utf8)) else {
                return json(endpoint.failure(400, .badUserInput, "variables must be a JSON object"))
            }
            variables = parsed
        }
        let decoded = GraphQLEndpoint.Request(query: query, variables: variables, operationName: parameters["operationName"])
        return json(await endpoint.execute(decoded, allowMutations: false))
    }
    OpenAIRoutes(inference: inference, metrics: metrics, logger: logger).add(to: router)
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
