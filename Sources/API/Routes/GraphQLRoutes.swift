import Foundation
import GraphQL
import HTTPTypes
import Hummingbird
import NIOCore
import Serving

/// GraphQL over HTTP: `POST /graphql` (JSON; `Accept: text/event-stream` for subscriptions and
/// streamed results), `GET /graphql` (queries only; GraphiQL's page for a browser), and
/// GraphiQL's files under `/graphiql/`. The WebSocket transport is `GraphQLWebSocket`.
struct GraphQLRoutes: Sendable {
    let endpoint: GraphQLEndpoint
    let services: Services

    func add(to group: RouterGroup<PedigreeRequestContext>) {
        let endpoint = self.endpoint
        let timeout = services.configuration.httpIdleTimeout
        let graphiql = GraphiQL(assets: services.configuration.graphiqlAssets)
        group.post("graphql") { request, context -> Response in
            // JSON only: a form or text/plain body is what a cross-site page can send without a
            // preflight, so it is refused before it is read.
            guard isJSON(request.headers[.contentType]) else {
                throw EdgeError(.badUserInput, "POST /graphql needs Content-Type: application/json", status: .unsupportedMediaType)
            }
            let buffer = try await RequestBody.collect(request, timeout: timeout)
            guard let decoded = try? JSONDecoder().decode(GraphQLEndpoint.Request.self, from: Data(buffer.readableBytesView)) else {
                throw EdgeError(.badUserInput, "body must be JSON: {\"query\": …, \"variables\": {…}}")
            }
            if (request.headers[.accept] ?? "").contains("text/event-stream") {
                switch await endpoint.stream(decoded, by: context.caller) {
                case .failure(let status, let body): return json(status, body)
                case .results(let results): return serverSentEvents(untilClosed(results, context.channel))
                }
            }
            let answer = await endpoint.execute(decoded, by: context.caller)
            return json(answer.status, answer.body)
        }
        group.get("graphql") { request, context -> Response in
            let parameters = formDecoded(request.uri.query ?? "")
            let query = parameters["query"]
            if query == nil, (request.headers[.accept] ?? "").contains("text/html") {
                return graphiql.page()
            }
            var variables: [String: Map]?
            if let raw = parameters["variables"], !raw.isEmpty {
                guard let parsed = try? JSONDecoder().decode([String: Map].self, from: Data(raw.utf8)) else {
                    throw EdgeError(.badUserInput, "variables must be a JSON object")
                }
                variables = parsed
            }
            let decoded = GraphQLEndpoint.Request(query: query, variables: variables, operationName: parameters["operationName"])
            let answer = await endpoint.execute(decoded, by: context.caller, allowMutations: false)
            return json(answer.status, answer.body)
        }
        group.get("graphiql/:file") { _, context -> Response in
            graphiql.file(context.parameters.get("file") ?? "")
        }
    }

    private func json(_ status: HTTPResponse.Status, _ body: Data) -> Response {
        Response(
            status: status, headers: [.contentType: "application/json; charset=utf-8"], body: ResponseBody(byteBuffer: ByteBuffer(bytes: body)))
    }
}
