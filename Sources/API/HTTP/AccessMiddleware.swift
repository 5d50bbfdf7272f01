public import Access
import Foundation
import HTTPTypes
public import Hummingbird
import NIOCore
public import Serving

/// The gate in front of every route: browser origins, then the API key, then the key's request
/// quota. What is refused never reaches a route, and is answered in the shape of the route asked
/// for (GraphQL errors, OpenAI's error object, or text).
///
/// - An `Origin` that is neither the server's own nor listed in `allowed-origins` is refused on
///   anything but a plain read (POST, and GET with `Upgrade: websocket`): a page on another site
///   cannot run mutations or generations with the operator's network position or cookies.
/// - Listed origins get CORS headers (and preflights an answer); no other origin does.
/// - Health checks, the webhook (its own HMAC) and GraphiQL's static page need no key.
/// - A server without keys answers only requests addressed to a loopback name (or a listed
///   origin's host): a foreign page that rebinds its own name to 127.0.0.1 gets 403.
public struct AccessMiddleware: RouterMiddleware {
    public typealias Context = PedigreeRequestContext
    let access: Authenticator
    let origins: OriginPolicy

    public init(access: Authenticator, origins: OriginPolicy) {
        self.access = access
        self.origins = origins
    }

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let path = request.uri.path
        let origin = request.headers[.origin]
        let listed = origin.map(origins.isListed) ?? false
        if let origin {
            let reads = (request.method == .get || request.method == .head) && request.headers[.upgrade] == nil
            if request.method == .options {
                guard listed else { return Self.refusal(path, .forbidden("origin \(origin) is not allowed (allowed-origins)")) }
                return Self.withCORS(Response(status: .noContent), origin: origin, preflight: true)
            }
            if !reads, !origins.allows(origin: origin, host: request.head.authority) {
                return Self.refusal(path, .forbidden("origin \(origin) is not allowed (allowed-origins)"))
            }
        }
        var context = context
        let keys = access.current()
        // A server without keys answers loopback names only (DNS rebinding).
        if !keys.isEnabled, !origins.allowsOpenAccess(host: request.head.authority) {
            return Self.refusal(path, .forbidden("host \(request.head.authority ?? "") is not a loopback name; this server runs without API keys"))
        }
        if !Self.isOpen(request) {
            switch Self.authenticate(request, keys) {
            case .failure(let error):
                return Self.corsIfListed(Self.refusal(path, error), origin: origin, listed: listed)
            case .success(let principal):
                if let meter = principal.meter {
                    do throws(AccessError) {
                        try meter.admitRequest()
                    } catch {
                        return Self.corsIfListed(Self.refusal(path, error), origin: origin, listed: listed)
                    }
                }
                context.principal = principal
            }
        }
        return Self.corsIfListed(try await next(request, context), origin: origin, listed: listed)
    }

    /// The request's key: its `Authorization` header; for the web view's pages (and only those),
    /// else the cookie `/ui/login` set.
    static func authenticate(_ request: Request, _ keys: Authenticator.Keys) -> Result<Principal, AccessError> {
        if let header = request.headers[.authorization] { return keys.authenticate(authorization: header) }
        if request.uri.path.hasPrefix("/ui/"), let key = cookie(WebView.cookie, in: request.headers[values: .cookie]) {
            return keys.authenticate(key: key)
        }
        return keys.authenticate(authorization: nil)
    }

    /// A cookie's value from `Cookie` headers.
    static func cookie(_ name: String, in headers: [String]) -> String? {
        for header in headers {
            for pair in header.split(separator: ";") {
                let parts = pair.split(separator: "=", maxSplits: 1)
                if parts.count == 2, parts[0].trimmingCharacters(in: .whitespaces) == name { return String(parts[1]) }
            }
        }
        return nil
    }

    /// Routes anyone may call: health, the webhook (signed), GraphiQL's page and files, the web
    /// view's sign-in page and stylesheet.
    static func isOpen(_ request: Request) -> Bool {
        switch request.uri.path {
        case "/healthz", "/readyz", "/hooks/git", "/ui/login", "/ui/logout", "/ui/assets/ui.css": return true
        case "/graphql":
            return request.method == .get && request.uri.query == nil && request.headers[.upgrade] == nil
                && (request.headers[.accept] ?? "").contains("text/html")
        default: return request.uri.path.hasPrefix("/graphiql/")
        }
    }

    /// The answer refusing a request, in the shape of the route it asked for.
    static func refusal(_ path: String, _ error: AccessError) -> Response {
        let (code, message) = ErrorCode.classify(error)
        var headers: HTTPFields = [:]
        if case .rateLimited(_, let retryAfter) = error { headers[.retryAfter] = "\(retryAfter)" }
        if code == .unauthenticated { headers[.wwwAuthenticate] = "Bearer" }
        let body: Data
        if path.hasPrefix("/ui"), code == .unauthenticated {
            // A browser: to the sign-in page.
            return Response(status: .seeOther, headers: [.location: "/ui/login"], body: ResponseBody())
        } else if path.hasPrefix("/ui") {
            var response = WebView.html(
                HTTPResponse.Status(code: code.httpStatus),
                HTML.page(
                    title: code.rawValue, crumbs: [], body: "<h1>\(HTML.escape(code.rawValue))</h1><p class=\"error\">\(HTML.escape(message))</p>"))
            response.headers[.retryAfter] = headers[.retryAfter]
            return response
        } else if path.hasPrefix("/v1/") {
            headers[.contentType] = "application/json"
            body = OpenAIError.body(code: code, message: message)
        } else if path == "/graphql" {
            headers[.contentType] = "application/json; charset=utf-8"
            var extensions: [String: Any] = ["code": code.rawValue]
            if case .rateLimited(_, let retryAfter) = error { extensions["retryAfterSeconds"] = retryAfter }
            body = (try? JSONSerialization.data(withJSONObject: ["errors": [["message": message, "extensions": extensions]]])) ?? Data()
        } else {
            headers[.contentType] = "text/plain; charset=utf-8"
            body = Data("\(code.rawValue): \(message)\n".utf8)
        }
        return Response(status: HTTPResponse.Status(code: code.httpStatus), headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: body)))
    }

    static func corsIfListed(_ response: Response, origin: String?, listed: Bool) -> Response {
        guard listed, let origin else { return response }
        return withCORS(response, origin: origin, preflight: false)
    }

    static func withCORS(_ response: Response, origin: String, preflight: Bool) -> Response {
        var response = response
        response.headers[.accessControlAllowOrigin] = origin
        response.headers[.vary] = "Origin"
        if preflight {
            response.headers[.accessControlAllowMethods] = "GET, POST, OPTIONS"
            response.headers[.accessControlAllowHeaders] = "Authorization, Content-Type, Accept, X-Request-Id"
            response.headers[.accessControlMaxAge] = "600"
        } else {
            response.headers[.accessControlExposeHeaders] = "X-Request-Id, X-Pedigree-Revision, X-Pedigree-Inference-Id, Retry-After"
        }
        return response
    }
}

/// OpenAI's error object, shared by the routes and the gate.
enum OpenAIError {
    static func body(code: ErrorCode, message: String) -> Data {
        let object: [String: Any] = [
            "error": ["message": Redaction.urlCredentials(in: message), "type": code.rawValue.lowercased(), "code": code.rawValue]
        ]
        return (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data("{}".utf8)
    }
}
