public import Foundation
public import GraphQL
public import Inference
import Lineage
import Logging

/// Executes GraphQL requests against the schema and shapes the JSON answer.
public struct GraphQLEndpoint: Sendable {
    public let schema: GraphQLSchema
    public let models: ModelManager
    let metrics: Metrics
    let logger: Logger

    /// Longest query text accepted.
    static let maxQueryLength = 100_000

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

    /// The HTTP status and JSON body for a request. Request errors (unparsable, invalid) are 400;
    /// a query that ran is 200 even when some fields failed, with their errors listed.
    public func execute(_ request: Request, allowMutations: Bool = true) async -> (status: Int, body: Data) {
        guard let query = request.query, !query.isEmpty else {
            return failure(400, .badUserInput, "no query in the request")
        }
        guard query.utf8.count <= Self.maxQueryLength else {
            return failure(400, .queryTooComplex, "query is over \(Self.maxQueryLength) bytes")
        }
        if !allowMutations, Self.isMutation(query, operationName: request.operationName) {
            return failure(405, .badUserInput, "mutations must be sent with POST")
        }
        let result: GraphQLResult
        do {
            result = try await graphql(
                schema: schema, request: query, context: RequestLoader(models: models),
                variableValues: request.variables ?? [:], operationName: request.operationName
            )
        } catch let error as GraphQLError {
            return encode(400, GraphQLResult(errors: [relabel(error)]))
        } catch {
            return failure(400, .badUserInput, "\(error)")
        }
        let errors = result.errors.map(relabel)
        // GraphQL over HTTP: 400 when the request could not be executed (parse and validation
        // errors carry no path); a request that ran is 200 even when a failed non-null root
        // field left `data` null (ARTIFACT_UNAVAILABLE is no fault of the request's shape).
        let executed = result.data != nil || errors.contains { !$0.path.elements.isEmpty }
        let status = !executed && !errors.isEmpty ? 400 : 200
        return encode(status, GraphQLResult(data: result.data, errors: errors))
    }

    /// Adds `extensions.code` to an error, from the service error behind it.
    func relabel(_ error: GraphQLError) -> GraphQLError {
        let code: ErrorCode
        var message = error.message
        if let original = error.originalError {
            let classified = ErrorCode.classify(original)
            code = classified.code
            message = classified.message
            if code == .internalError {
                logger.error("resolver failed", metadata: ["path": "\(error.path)", "error": "\(original)"])
            }
        } else if let existing = error.extensions["code"]?.string, let known = ErrorCode(rawValue: existing) {
            code = known
        } else {
            code = .badUserInput  // parse and validation errors: the query itself is wrong
        }
        metrics.countError(code.rawValue)
        var extensions = error.extensions
        extensions["code"] = .string(code.rawValue)
        return GraphQLError(message: message, locations: error.locations, path: error.path, extensions: extensions)
    }

    func failure(_ status: Int, _ code: ErrorCode, _ message: String) -> (status: Int, body: Data) {
        metrics.countError(code.rawValue)
        return encode(status, GraphQLResult(errors: [GraphQLError(message: message, extensions: ["code": .string(code.rawValue)])]))
    }

    func encode(_ status: Int, _ result: GraphQLResult) -> (status: Int, body: Data) {
        // GraphQLJSONEncoder keeps fields in query order, as the spec requires.
        let data = (try? GraphQLJSONEncoder().encode(result)) ?? Data(#"{"errors":[{"message":"encoding failed"}]}"#.utf8)
        return (status, data)
    }

    /// Whether the operation to run is a mutation (GET must not change state).
    static func isMutation(_ query: String, operationName: String?) -> Bool {
        guard let document = try? parse(source: Source(body: query)) else { return false }
        let operations = document.definitions.compactMap { $0 as? OperationDefinition }
        let chosen = operations.first { $0.name?.value == operationName } ?? (operations.count == 1 ? operations.first : nil)
        return chosen?.operation == .mutation
    }
}
