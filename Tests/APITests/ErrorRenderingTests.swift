import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import Serving
import Testing

@testable import API

/// Every `ErrorCode` through each route group's `ErrorRendering`, in process (HummingbirdTesting's
/// router framework, no socket): the status the code has, the body in the group's shape, and
/// `Retry-After` exactly when the error carries a wait.
@Suite struct ErrorRenderingTests {
    /// A router whose only group renders in `format` and whose route throws the code in its path.
    static func application(_ format: ErrorFormat) -> some ApplicationProtocol {
        let router = Router(context: PedigreeRequestContext.self)
        router.group().add(middleware: ErrorRendering(format, metrics: nil)).get("fail/:code") { _, context -> Response in
            let code = ErrorCode(rawValue: context.parameters.get("code") ?? "") ?? .internalError
            throw EdgeError(code, "failed at https://user:hunter2@example.com/x", retryAfter: code == .rateLimited ? 7 : nil)
        }
        return Application(router: router)
    }

    @Test(arguments: ErrorFormat.allCases)
    func everyCodeRendersWithItsStatusShapeAndRetryAfter(format: ErrorFormat) async throws {
        try await Self.application(format).test(.router) { client in
            for code in ErrorCode.allCases {
                try await client.execute(uri: "/fail/\(code.rawValue)", method: .get) { response in
                    let body = String(buffer: response.body)
                    #expect(!body.contains("hunter2"), "\(format) \(code): the password in the message is redacted")
                    if format == .html, code == .unauthenticated {
                        // A browser goes to the sign-in page.
                        #expect(response.status == .seeOther)
                        #expect(response.headers[.location] == "/ui/login")
                        return
                    }
                    #expect(response.status == code.status, "\(format) \(code)")
                    #expect(response.headers[.retryAfter] == (code == .rateLimited ? "7" : nil), "\(format) \(code)")
                    #expect((response.headers[.wwwAuthenticate] == "Bearer") == (code == .unauthenticated), "\(format) \(code)")
                    try Self.checkShape(format, code, body, contentType: response.headers[.contentType] ?? "")
                }
            }
        }
    }

    static func checkShape(_ format: ErrorFormat, _ code: ErrorCode, _ body: String, contentType: String) throws {
        func object() throws -> [String: Any] {
            try #require(try JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any], "\(format) \(code): \(body)")
        }
        switch format {
        case .graphQL:
            #expect(contentType.hasPrefix("application/json"))
            let errors = try #require(try object()["errors"] as? [[String: Any]])
            let extensions = try #require(errors.first?["extensions"] as? [String: Any])
            #expect(errors.count == 1 && extensions["code"] as? String == code.rawValue)
            #expect((extensions["retryAfterSeconds"] as? Int) == (code == .rateLimited ? 7 : nil))
            #expect((errors.first?["message"] as? String)?.contains("failed at") == true)
        case .openAI:
            #expect(contentType.hasPrefix("application/json"))
            let error = try #require(try object()["error"] as? [String: Any])
            #expect(error["code"] as? String == code.rawValue && error["type"] as? String == code.rawValue.lowercased())
            #expect((error["message"] as? String)?.contains("failed at") == true)
        case .worker:
            #expect(contentType.hasPrefix("application/json"))
            let answer = try object()
            #expect(answer["code"] as? String == code.rawValue && (answer["message"] as? String)?.contains("failed at") == true)
        case .plainText:
            #expect(contentType.hasPrefix("text/plain"))
            #expect(body.hasPrefix("\(code.rawValue): failed at"))
        case .html:
            #expect(contentType.hasPrefix("text/html"))
            #expect(body.contains("<h1>\(code.rawValue)</h1>") && body.contains("failed at"))
        }
    }

    /// What is not an `EdgeError` becomes one: a service's error by its code, hummingbird's own
    /// status-only errors by their status, an internal failure without its details.
    @Test func otherErrorsBecomeEdgeErrors() {
        let failure = EdgeError(CocoaError(.fileReadNoPermission, userInfo: [NSFilePathErrorKey: "/secret/path"]))
        #expect(failure.code == .internalError && failure.message == "internal error" && failure.status == .internalServerError)
        #expect(failure.cause != nil)
        let routing = EdgeError(HTTPError(.notFound))
        #expect(routing.code == .notFound && routing.status == .notFound)
        let tooLarge = EdgeError(API.RequestBody.Failure.tooLarge)
        #expect(tooLarge.code == .badUserInput && tooLarge.status == .contentTooLarge)
        let serving = EdgeError(ServingError(.overloaded, "the queue is full"))
        #expect(serving.code == .overloaded && serving.status == .serviceUnavailable && serving.message == "the queue is full")
    }
}
