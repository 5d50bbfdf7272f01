import Access
import Foundation
public import HTTPTypes
public import Hummingbird
import Logging
import NIOCore
public import Serving

/// An answer that is only an error: the code, a redacted message, the HTTP status (the code's
/// unless the protocol names another: 405, 408, 413, 415) and the headers it needs
/// (`Retry-After`, `WWW-Authenticate`, CORS). Routes and middleware throw it, or any error, which
/// becomes one here; the route group's `ErrorRendering` writes it in the group's format. Outside
/// any group it renders itself as plain text (hummingbird's `HTTPResponseError`).
public struct EdgeError: Error, Sendable, HTTPResponseError {
    public let code: ErrorCode
    public let message: String
    public let status: HTTPResponse.Status
    /// Seconds to wait before trying again (`Retry-After`; GraphQL's `extensions.retryAfterSeconds`).
    public let retryAfter: Int?
    /// Headers the answer carries besides those of its format.
    public var headers: HTTPFields
    /// What was thrown, for the log when the code is `INTERNAL` (never shown).
    private(set) var cause: String?
    /// The request field at fault, and OpenAI's code for it (`unsupported_parameter`,
    /// `invalid_value`): OpenAI's error object names them.
    public var param: String?
    public var openAICode: String?

    /// A request field refused: 400, OpenAI's `param` and `code`.
    public static func parameter(_ param: String, _ message: String, unsupported: Bool = false) -> EdgeError {
        var error = EdgeError(.badUserInput, message)
        error.param = param
        error.openAICode = unsupported ? "unsupported_parameter" : "invalid_value"
        return error
    }

    /// An error of the edge itself; `status` only where the protocol names one other than the code's.
    public init(_ code: ErrorCode, _ message: String, status: HTTPResponse.Status? = nil, retryAfter: Int? = nil) {
        self.code = code
        self.message = Redaction.urlCredentials(in: message)
        self.status = status ?? code.status
        self.retryAfter = retryAfter
        self.headers = [:]
        self.cause = nil
        if let retryAfter { headers[.retryAfter] = String(retryAfter) }
        if code == .unauthenticated { headers[.wwwAuthenticate] = "Bearer" }
    }

    /// Any error as an answer: its code and redacted message (`ErrorCode.classify`), an
    /// `AccessError`'s wait, a status-only error's status.
    public init(_ error: any Error) {
        switch error {
        case let error as EdgeError:
            self = error
        case let error as RequestBody.Failure:
            let answer = RequestBody.answer(error)
            self.init(.badUserInput, answer.message, status: answer.status)
        case let error as AccessError:
            var retryAfter: Int?
            if case .rateLimited(_, let seconds) = error { retryAfter = seconds }
            let (code, message) = ErrorCode.classify(error)
            self.init(code, message, retryAfter: retryAfter)
        case let error as any HTTPResponseError:
            self.init(ErrorCode(status: error.status), error.status.reasonPhrase, status: error.status)
        default:
            let (code, message) = ErrorCode.classify(error)
            self.init(code, message)
            if code == .internalError { cause = String(describing: error) }
        }
    }

    /// Outside any route group (routing's own answers, a preflight refused): plain text.
    public func response(from request: Request, context: some RequestContext) throws -> Response {
        ErrorFormat.plainText.response(self)
    }
}

/// How a route group writes an error answer.
public enum ErrorFormat: String, Sendable, CaseIterable {
    /// `{"errors": [{"message", "extensions": {"code", "retryAfterSeconds"?}}]}` (GraphQL over HTTP).
    case graphQL
    /// OpenAI's `{"error": {"message", "type", "code"}}`.
    case openAI
    /// A page of the web view; `UNAUTHENTICATED` sends the browser to the sign-in page.
    case html
    /// `CODE: message` as text: health, metrics, the webhook, routing's own answers.
    case plainText
    /// The worker protocol's `{"code", "message"}`.
    case worker

    /// The whole answer for `error`.
    public func response(_ error: EdgeError) -> Response {
        var headers = error.headers
        let body: ByteBuffer
        switch self {
        case .graphQL:
            headers[.contentType] = "application/json; charset=utf-8"
            body = ByteBuffer(bytes: Self.graphQLBody(error))
        case .openAI:
            headers[.contentType] = "application/json"
            let type = error.param == nil ? error.code.rawValue.lowercased() : "invalid_request_error"
            body = Self.json([
                "error": [
                    "message": error.message, "type": type, "code": error.openAICode ?? error.code.rawValue,
                    "param": error.param.map { $0 as Any } ?? NSNull(),
                ] as [String: Any]
            ])
        case .worker:
            headers[.contentType] = "application/json"
            body = Self.json(["code": error.code.rawValue, "message": error.message])
        case .plainText:
            headers[.contentType] = "text/plain; charset=utf-8"
            body = ByteBuffer(string: "\(error.code.rawValue): \(error.message)\n")
        case .html:
            if error.code == .unauthenticated {
                headers[.location] = "/ui/login"
                headers[.wwwAuthenticate] = nil
                return Response(status: .seeOther, headers: headers, body: ResponseBody())
            }
            var page = WebView.html(
                error.status,
                HTML.page(
                    title: error.code.rawValue, crumbs: [("models", "/ui/")],
                    body: "<h1>\(HTML.escape(error.code.rawValue))</h1><p class=\"error\">\(HTML.escape(error.message))</p>"))
            for field in headers { page.headers.append(field) }
            return page
        }
        return Response(status: error.status, headers: headers, body: ResponseBody(byteBuffer: body))
    }

    /// A GraphQL answer that is only `error`: also what the endpoint and the WebSocket send for a
    /// request that cannot run.
    static func graphQLBody(_ error: EdgeError) -> Data {
        var extensions: [String: Any] = ["code": error.code.rawValue]
        if let retryAfter = error.retryAfter { extensions["retryAfterSeconds"] = retryAfter }
        let object: [String: Any] = ["errors": [["message": error.message, "extensions": extensions]]]
        return (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data()
    }

    static func json(_ object: [String: Any]) -> ByteBuffer {
        ByteBuffer(bytes: (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data("{}".utf8))
    }
}

/// The first middleware of every route group: whatever the routes and the gate behind it throw
/// is answered in the group's format, counted by code (`pedigree_http_error_answers_total`), and
/// logged when it is an internal failure (its cause goes to the log only).
public struct ErrorRendering: RouterMiddleware {
    public typealias Context = PedigreeRequestContext
    let format: ErrorFormat
    let metrics: ServerMetrics?

    init(_ format: ErrorFormat, metrics: ServerMetrics?) {
        self.format = format
        self.metrics = metrics
    }

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch {
            let answer = EdgeError(error)
            metrics?.countErrorAnswer(format: format, code: answer.code)
            // A GraphQL answer's error is a GraphQL error too.
            if format == .graphQL { metrics?.countError(answer.code.rawValue) }
            if answer.code == .internalError {
                context.logger.error("request failed", metadata: ["path": "\(request.uri.path)", "error": "\(answer.cause ?? answer.message)"])
            }
            return format.response(answer)
        }
    }
}
