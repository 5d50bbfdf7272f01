import Access
public import Foundation
public import GraphQL
import GraphQLLimits
public import HTTPTypes
import Lineage
import Logging
public import Serving

/// Executes GraphQL requests against the schema and shapes the JSON answer.
public struct GraphQLEndpoint: Sendable {
    public let schema: GraphQLSchema
    public let services: Services
    let metrics: ServerMetrics
    let logger: Logger
    let limits: QueryLimits
    let shapes: FieldShapes
    let documents = DocumentCache()

    /// Longest query text accepted.
    static let maxQueryLength = 100_000

    init(schema: GraphQLSchema, services: Services, metrics: ServerMetrics, logger: Logger) throws {
        self.schema = schema
        self.services = services
        self.metrics = metrics
        self.logger = logger
        var limits = QueryLimits()
        limits.maxDepth = services.configuration.graphqlMaxDepth
        limits.maxFields = services.configuration.graphqlMaxFields
        limits.maxCost = services.configuration.graphqlMaxCost
        self.limits = limits
        self.shapes = try FieldShapes(schema)
    }

    /// A request as GraphQL over HTTP carries it.
    public struct Request: Decodable, Sendable {
        public var query: String?
        public var variables: [String: Map]?
        public var operationName: String?
        public init(query: String?, variables: [String: Map]? = nil, operationName: String? = nil) {
            self.query = query
            self.variables = variables
            self.operationName = operationName
        }
    }

    /// A request's document, parsed, within the limits and validated; or the answer refusing it.
    enum Prepared {
        case document(Document)
        case refused(status: HTTPResponse.Status, body: Data)
    }

    /// Checks a request before anything runs: a query is there, within `maxQueryLength`, nested
    /// no deeper than the text limit, parses, meets the depth, field, cost and mutation limits
    /// (with this request's variables), and validates.
    func prepare(_ request: Request, by caller: RequestInfo) -> Prepared {
        guard let query = request.query, !query.isEmpty else {
            return refused(failure(.badUserInput, "no query in the request"))
        }
        guard query.utf8.count <= Self.maxQueryLength else {
            return refused(failure(.queryTooComplex, "query is over \(Self.maxQueryLength) bytes"))
        }
        do {
            let limits = self.limits
            let shapes = self.shapes
            let variables = request.variables ?? [:]
            let operationName = request.operationName
            switch try documents.document(
                for: query, schema: schema, screen: { try limits.checkText($0) },
                admit: { document, isNew in
                    if isNew, let problem = DuplicateDefinitions.problem(in: document) { throw GraphQLError(message: problem) }
                    return try QueryCost.check(document, operationName: operationName, variables: variables, limits: limits, shapes: shapes)
                })
            {
            case .success(let document):
                if let refusal = OperationAccess.refusal(document, operationName: operationName, principal: caller.principal) {
                    return refused(failure(.forbidden, refusal))
                }
                return .document(document)
            case .failure(let errors):
                return refused(encode(.badRequest, GraphQLResult(errors: errors.errors.map { relabel($0, requestID: caller.requestID) })))
            }
        } catch let error as QueryTooComplex {
            return refused(failure(.queryTooComplex, error.message))
        } catch let error as GraphQLError {
            return refused(encode(.badRequest, GraphQLResult(errors: [relabel(error, requestID: caller.requestID)])))
        } catch {
            return refused(failure(.badUserInput, "\(error)"))
        }
    }

    private func refused(_ answer: (status: HTTPResponse.Status, body: Data)) -> Prepared { .refused(status: answer.status, body: answer.body) }

    /// The HTTP status and JSON body for a request. Request errors (unparsable, invalid, too
    /// complex) are 4xx; a query that ran is 200 even when some fields failed, with their errors
    /// listed. A query runs for at most `request-timeout`, a mutation `mutation-timeout`.
    public func execute(_ request: Request, by caller: RequestInfo, allowMutations: Bool = true) async -> (status: HTTPResponse.Status, body: Data) {
        let document: Document
        switch prepare(request, by: caller) {
        case .refused(let status, let body): return (status, body)
        case .document(let prepared): document = prepared
        }
        let operation = Self.operation(document, operationName: request.operationName)
        if !allowMutations, operation == .mutation {
            return failure(.badUserInput, "mutations must be sent with POST", status: .methodNotAllowed)
        }
        if operation == .subscription {
            return failure(.badUserInput, "a subscription needs a stream: POST with Accept: text/event-stream, or a WebSocket (graphql-transport-ws)")
        }
        let result: GraphQLResult
        do {
            let schema = self.schema
            let loader = RequestLoader(services: services, caller: caller)
            let run: @Sendable () async throws -> GraphQLResult = {
                try await GraphQL.execute(
                    schema: schema, documentAST: document, rootValue: (), context: loader,
                    variableValues: request.variables ?? [:], operationName: request.operationName)
            }
            if operation == .mutation {
                let timeout = services.configuration.mutationTimeout
                result = try await withDeadline(timeout, "the mutation ran past the mutation timeout (\(timeout))", run)
            } else {
                let timeout = services.configuration.requestTimeout
                result = try await withDeadline(timeout, "the query ran past the request timeout (\(timeout))", run)
            }
        } catch let error as ServingError {
            return failure(error.code, error.message)
        } catch let error as GraphQLError {
            return encode(.badRequest, GraphQLResult(errors: [relabel(error, requestID: caller.requestID)]))
        } catch {
            return failure(.badUserInput, "\(error)")
        }
        let errors = result.errors.map { relabel($0, requestID: caller.requestID) }
        // GraphQL over HTTP: 400 when the request could not be executed (parse and validation
        // errors carry no path); a request that ran is 200 even when a failed non-null root
        // field left `data` null (ARTIFACT_UNAVAILABLE is no fault of the request's shape).
        let executed = result.data != nil || errors.contains { !$0.path.elements.isEmpty }
        let status: HTTPResponse.Status = !executed && !errors.isEmpty ? .badRequest : .ok
        return encode(status, GraphQLResult(data: result.data, errors: errors))
    }

    /// What a request with `Accept: text/event-stream` gets: a JSON failure (the request could not
    /// run), or results to send as server-sent events (one for a query or mutation, one per event
    /// for a subscription).
    public enum StreamAnswer: Sendable {
        case failure(status: HTTPResponse.Status, body: Data)
        case results(AsyncThrowingStream<Data, any Error>)
    }

    /// Runs a request for GraphQL over SSE.
    public func stream(_ request: Request, by caller: RequestInfo) async -> StreamAnswer {
        let document: Document
        switch prepare(request, by: caller) {
        case .refused(let status, let body): return .failure(status: status, body: body)
        case .document(let prepared): document = prepared
        }
        guard Self.operation(document, operationName: request.operationName) == .subscription else {
            let answer = await execute(request, by: caller)
            guard answer.status == .ok else { return .failure(status: answer.status, body: answer.body) }
            return .results(
                AsyncThrowingStream {
                    $0.yield(answer.body)
                    $0.finish()
                })
        }
        if let plan = InferStreamPlan(document: document, operationName: request.operationName, variables: request.variables ?? [:]) {
            return await inferStream(plan, document: document, request: request, by: caller)
        }
        let subscribed: Result<AsyncThrowingStream<GraphQLResult, any Error>, GraphQLErrors>
        do {
            // Validated when it entered the cache: skip the rules this time.
            subscribed = try await graphqlSubscribe(
                schema: schema, request: request.query ?? "", context: RequestLoader(services: services, caller: caller),
                variableValues: request.variables ?? [:], operationName: request.operationName, validationRules: [])
        } catch let error as GraphQLError {
            return .failure(status: .badRequest, body: encode(.badRequest, GraphQLResult(errors: [relabel(error, requestID: caller.requestID)])).body)
        } catch {
            return .failure(status: .badRequest, body: failure(.badUserInput, "\(error)").body)
        }
        switch subscribed {
        case .failure(let errors):
            let relabelled = errors.errors.map { relabel($0, requestID: caller.requestID) }
            let executed = relabelled.contains { !$0.path.elements.isEmpty }
            let body = encode(executed ? .ok : .badRequest, GraphQLResult(errors: relabelled)).body
            if !executed { return .failure(status: .badRequest, body: body) }
            return .results(
                AsyncThrowingStream {
                    $0.yield(body)
                    $0.finish()
                })
        case .success(let results):
            let endpoint = self
            return .results(
                AsyncThrowingStream { continuation in
                    let task = Task {
                        do {
                            for try await result in results {
                                continuation.yield(
                                    endpoint.encode(
                                        .ok,
                                        GraphQLResult(
                                            data: result.data, errors: result.errors.map { endpoint.relabel($0, requestID: caller.requestID) })
                                    ).body)
                            }
                        } catch {
                            let error = error as? GraphQLError ?? GraphQLError(error)
                            continuation.yield(
                                endpoint.encode(.ok, GraphQLResult(errors: [endpoint.relabel(error, requestID: caller.requestID)])).body)
                        }
                        continuation.finish()
                    }
                    continuation.onTermination = { _ in task.cancel() }
                })
        }
    }

    /// `inferStream` from its plan: the input read once, token events written without a GraphQL
    /// execution, the payload event (and selections the plan does not cover) executed as usual.
    func inferStream(_ plan: InferStreamPlan, document: Document, request: Request, by caller: RequestInfo) async -> StreamAnswer {
        let loader = RequestLoader(services: services, caller: caller)
        let events: AsyncThrowingStream<InferenceService.Event, any Error>
        do {
            let input = try InferenceRequest(plan.input)
            events = try await services.inference.start(input.request, on: try loader.lineage(input.spec), by: caller)
        } catch {
            // The subscription could not start: a request error (graphql-transport-ws answers
            // `error`), with the status of its code.
            let status = ErrorCode.classify(error).code.status
            return .failure(
                status: status,
                body: encode(
                    status, GraphQLResult(errors: [relabel(GraphQLError(message: "\(error)", originalError: error), requestID: caller.requestID)])
                ).body)
        }
        // Each result is made on the consumer's task as it asks for it (no task of its own, no
        // extra hop between a token and its write); ending the results ends the events, which
        // cancels the generation.
        let endpoint = self
        let source = EventIterator(events)
        return .results(
            AsyncThrowingStream(unfolding: {
                do {
                    guard let event = try await source.next() else { return nil }
                    if case .token(let text) = event, let fast = plan.tokenResult(text) { return fast }
                    let result = try await GraphQL.execute(
                        schema: endpoint.schema, documentAST: document, rootValue: event, context: loader,
                        variableValues: request.variables ?? [:], operationName: request.operationName)
                    let errors = result.errors.map { endpoint.relabel($0, requestID: caller.requestID) }
                    return endpoint.encode(.ok, GraphQLResult(data: result.data, errors: errors)).body
                } catch is CancellationError {
                    return nil
                } catch {
                    // The last result: the iterator answers nil after it threw.
                    let failed =
                        error as? GraphQLError
                        ?? GraphQLError(message: "\(error)", path: IndexPath([IndexPathValue.key(plan.responseName)]), originalError: error)
                    return endpoint.encode(.ok, GraphQLResult(errors: [endpoint.relabel(failed, requestID: caller.requestID)])).body
                }
            }))
    }

    /// Adds `extensions.code` to an error, from the service error behind it.
    func relabel(_ error: GraphQLError, requestID: String?) -> GraphQLError {
        let code: ErrorCode
        var message = error.message
        var extensions = error.extensions
        if let original = error.originalError {
            if case .rateLimited(_, let retryAfter) = original as? AccessError { extensions["retryAfterSeconds"] = .number(Number(retryAfter)) }
            let classified = ErrorCode.classify(original)
            code = classified.code
            message = classified.message
            if code == .internalError {
                logger.error(
                    "resolver failed", metadata: ["path": "\(error.path)", "error": "\(original)", "request_id": "\(requestID ?? "-")"])
            }
        } else if let existing = error.extensions["code"]?.string, let known = ErrorCode(rawValue: existing) {
            code = known
        } else {
            code = .badUserInput  // parse and validation errors: the query itself is wrong
        }
        metrics.countError(code.rawValue)
        extensions["code"] = .string(code.rawValue)
        return GraphQLError(
            message: Redaction.urlCredentials(in: message), locations: error.locations, path: error.path, extensions: extensions)
    }

    /// A request that cannot run: the code's HTTP status unless the protocol names another, the
    /// body as every GraphQL error answer is written (`ErrorFormat.graphQL`).
    func failure(_ code: ErrorCode, _ message: String, status: HTTPResponse.Status? = nil, retryAfter: Int? = nil) -> (
        status: HTTPResponse.Status, body: Data
    ) {
        metrics.countError(code.rawValue)
        let error = EdgeError(code, message, status: status, retryAfter: retryAfter)
        return (error.status, ErrorFormat.graphQLBody(error))
    }

    func encode(_ status: HTTPResponse.Status, _ result: GraphQLResult) -> (status: HTTPResponse.Status, body: Data) {
        // GraphQLJSONEncoder keeps fields in query order, as the spec requires.
        let data = (try? GraphQLJSONEncoder().encode(result)) ?? Data(#"{"errors":[{"message":"encoding failed"}]}"#.utf8)
        return (status, data)
    }

    /// The kind of the operation a request runs (GET must not change state; subscriptions stream).
    static func operation(_ document: Document, operationName: String?) -> OperationType? {
        chosenOperation(document, operationName: operationName)?.operation
    }

    /// The operation a request runs: the one named, else the only one.
    static func chosenOperation(_ document: Document, operationName: String?) -> OperationDefinition? {
        let operations = document.definitions.compactMap { $0 as? OperationDefinition }
        return operations.first { $0.name?.value == operationName } ?? (operations.count == 1 ? operations.first : nil)
    }
}

/// The iterator of an inference's events, advanced by one consumer at a time.
private final class EventIterator: @unchecked Sendable {
    // @unchecked: `AsyncThrowingStream(unfolding:)` calls its closure once at a time, from the
    // consuming task, so the iterator is never advanced concurrently.
    private var iterator: AsyncThrowingStream<InferenceService.Event, any Error>.AsyncIterator

    init(_ events: AsyncThrowingStream<InferenceService.Event, any Error>) { iterator = events.makeAsyncIterator() }

    func next() async throws -> InferenceService.Event? { try await iterator.next() }
}
