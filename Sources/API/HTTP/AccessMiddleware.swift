public import Access
import Foundation
import HTTPTypes
public import Hummingbird
import NIOCore
public import Serving

/// The gate in front of every route group: browser origins, then the API key, then the key's
/// request quota. What is refused never reaches a route: the gate throws an `EdgeError`, which the
/// group's `ErrorRendering` answers in the group's format (GraphQL errors, OpenAI's error object,
/// a page, or text).
///
/// - An `Origin` that is neither the server's own nor listed in `allowed-origins` is refused on
///   anything but a plain read (POST, and GET with `Upgrade: websocket`): a page on another site
///   cannot run mutations or generations with the operator's network position or cookies.
/// - Listed origins get CORS headers on every answer, errors included; preflights are answered by
///   `Preflight`, before routing. No other origin gets CORS headers.
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
        let origin = request.headers[.origin]
        let listed = origin.map(origins.isListed) ?? false
        if let origin {
            let reads = (request.method == .get || request.method == .head) && request.headers[.upgrade] == nil
            if !reads, !origins.allows(origin: origin, host: request.head.authority) {
                throw EdgeError(.forbidden, "origin \(origin) is not allowed (allowed-origins)")
            }
        }
        let response: Response
        do {
            response = try await next(request, try admit(request, context))
        } catch {
            guard listed, let origin else { throw error }
            var answer = EdgeError(error)
            answer.headers.append(contentsOf: Self.cors(origin: origin, preflight: false))
            throw answer
        }
        guard listed, let origin else { return response }
        var answered = response
        answered.headers.append(contentsOf: Self.cors(origin: origin, preflight: false))
        return answered
    }

    /// The context with the request's principal, once its host, key and request quota pass.
    private func admit(_ request: Request, _ context: Context) throws -> Context {
        var context = context
        let keys = access.current()
        // A server without keys answers loopback names only (DNS rebinding).
        if !keys.isEnabled, !origins.allowsOpenAccess(host: request.head.authority) {
            throw EdgeError(.forbidden, "host \(request.head.authority ?? "") is not a loopback name; this server runs without API keys")
        }
        guard !Self.isOpen(request) else { return context }
        let principal = try Self.authenticate(request, keys).get()
        try principal.meter?.admitRequest()
        context.principal = principal
        return context
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

    /// Routes anyone may call: health, the receipt keys (public keys), the webhook (signed),
    /// GraphiQL's page and files, the web view's sign-in page and stylesheet.
    static func isOpen(_ request: Request) -> Bool {
        switch request.uri.path {
        case "/healthz", "/readyz", "/receipt-keys", "/hooks/git", "/ui/login", "/ui/logout", "/ui/assets/ui.css": return true
        case "/graphql":
            return request.method == .get && request.uri.query == nil && request.headers[.upgrade] == nil
                && (request.headers[.accept] ?? "").contains("text/html")
        default: return request.uri.path.hasPrefix("/graphiql/")
        }
    }

    /// The CORS headers for a listed origin: on answers, or on a preflight's.
    static func cors(origin: String, preflight: Bool) -> HTTPFields {
        var headers: HTTPFields = [.accessControlAllowOrigin: origin, .vary: "Origin"]
        if preflight {
            headers[.accessControlAllowMethods] = "GET, POST, OPTIONS"
            headers[.accessControlAllowHeaders] = "Authorization, Content-Type, Accept, X-Request-Id"
            headers[.accessControlMaxAge] = "600"
        } else {
            headers[.accessControlExposeHeaders] = "X-Request-Id, X-Pedigree-Revision, X-Pedigree-Inference-Id, Retry-After"
        }
        return headers
    }
}

/// CORS preflights (`OPTIONS` with `Origin`), answered before routing (no route takes `OPTIONS`):
/// 204 with the CORS headers for a listed origin, 403 for any other.
public struct Preflight: RouterMiddleware {
    public typealias Context = PedigreeRequestContext
    let origins: OriginPolicy

    public init(origins: OriginPolicy) { self.origins = origins }

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard request.method == .options, let origin = request.headers[.origin] else { return try await next(request, context) }
        guard origins.isListed(origin) else { throw EdgeError(.forbidden, "origin \(origin) is not allowed (allowed-origins)") }
        return Response(status: .noContent, headers: AccessMiddleware.cors(origin: origin, preflight: true))
    }
}
