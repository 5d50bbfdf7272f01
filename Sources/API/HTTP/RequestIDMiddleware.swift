import Foundation
import HTTPTypes
public import Hummingbird
import Inference
import Ledger
import Logging

extension HTTPField.Name {
    /// `X-Request-Id`: every response carries one, and every log line of the request names it.
    static let requestID = Self("X-Request-Id")!
}

/// Gives every request an id (the client's `X-Request-Id` when it is a short token, else a new
/// sortable one), puts it in the context's logger as `request_id`, answers it in `X-Request-Id`,
/// and writes one access-log line per request.
public struct RequestIDMiddleware: RouterMiddleware {
    public typealias Context = PedigreeRequestContext

    public init() {}

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var context = context
        let id = Self.id(from: request.headers)
        context.requestID = id
        context.logger[metadataKey: "request_id"] = .string(id)
        let start = ContinuousClock.now
        var response: Response
        do {
            response = try await next(request, context)
        } catch let error as any HTTPResponseError {
            response = try error.response(from: request, context: context)
        }
        response.headers[.requestID] = id
        let elapsed = ContinuousClock.now - start
        context.logger.info(
            "request",
            metadata: [
                "method": "\(request.method)", "path": "\(request.uri.path)", "status": "\(response.status.code)",
                "ms": "\(elapsed.milliseconds)",
            ])
        return response
    }

    /// The request's id: the client's `X-Request-Id` when it is usable, else a new one.
    static func id(from headers: HTTPFields) -> String {
        headers[.requestID].flatMap(usable) ?? RecordID.make()
    }

    /// A client's id, if it is 1 to 128 characters of letters, digits, `-`, `_`, `.` and `:`.
    static func usable(_ text: String) -> String? {
        guard (1...128).contains(text.utf8.count),
            text.utf8.allSatisfy({ byte in
                (48...57).contains(byte) || (65...90).contains(byte) || (97...122).contains(byte) || [45, 95, 46, 58].contains(byte)
            })
        else { return nil }
        return text
    }
}

/// Request counts (`pedigree_http_requests_total`) and durations (`http.server.request.duration`)
/// by route template (`ui/revisions/:id`), never by path, so the label set stays bounded; requests
/// no route took are `unmatched`.
struct RequestMetrics: RouterMiddleware {
    typealias Context = PedigreeRequestContext
    let metrics: ServerMetrics

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let start = ContinuousClock.now
        var status = HTTPResponse.Status.internalServerError
        defer {
            let template = context.endpointPath.map { String($0.drop { $0 == "/" }) }
            let route = template.flatMap { $0.isEmpty || $0 == "NotFound" ? nil : $0 } ?? "unmatched"
            metrics.recordRequest(route: route, method: request.method.rawValue, status: status.code, duration: ContinuousClock.now - start)
        }
        let response = try await next(request, context)
        status = response.status
        return response
    }
}
