import Access
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import Serving
import TestSupport
import Testing

@testable import API

/// The real router (`buildRouter`) over real services (a Git repository made with `git`, a cache
/// of its own, API keys in its keys file), driven in process with HummingbirdTesting: every
/// route group behind the gate, each refusal in its group's format, preflights, routing's own
/// answers. No socket, no server process.
@Suite struct RouterTests {
    /// A router over a one-commit repository; `keys` are created in the keys file first (role
    /// and requests per minute), and their texts returned by name.
    static func router(keys: [(name: String, role: Role, perMinute: Int?)] = [], origins: [String] = []) throws -> (
        some ApplicationProtocol, [String: String], GitFixture
    ) {
        let repository = try GitFixture()
        try repository.write("README.md", "A repository with no models.\n")
        try repository.commit("First")
        let cache = FileManager.default.temporaryDirectory.appendingPathComponent("pedigree-router-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: cache, withIntermediateDirectories: true)
        var texts: [String: String] = [:]
        for key in keys {
            let (_, created) = try KeyFile.inCache(cache).create(
                name: key.name, role: key.role, limits: QuotaLimits(requestsPerMinute: key.perMinute))
            texts[key.name] = created.text
        }
        var configuration = ServingConfiguration(repo: repository.path, cache: cache)
        configuration.ledger = "off"
        configuration.allowedOrigins = origins
        let logger = Logger(label: "router-tests")
        let services = try Services.open(configuration, logger: logger)
        let (router, _) = try buildRouter(services: services, logger: logger)
        return (Application(router: router), texts, repository)
    }

    static func json(_ buffer: ByteBuffer) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(buffer.readableBytesView)) as? [String: Any])
    }

    static func openAICode(_ buffer: ByteBuffer) throws -> String? {
        (try json(buffer)["error"] as? [String: Any])?["code"] as? String
    }

    static func graphQLCode(_ buffer: ByteBuffer) throws -> String? {
        let errors = try json(buffer)["errors"] as? [[String: Any]]
        return (errors?.first?["extensions"] as? [String: Any])?["code"] as? String
    }

    static let query = ByteBuffer(string: #"{"query": "{ __typename }"}"#)
    static let jsonType: HTTPFields = [.contentType: "application/json"]

    @Test func everyGroupRefusesAKeylessRequestInItsOwnFormat() async throws {
        let (app, keys, _) = try Self.router(keys: [("reader", .read, nil)])
        try await app.test(.router) { client in
            try await client.execute(uri: "/graphql", method: .post, headers: Self.jsonType, body: Self.query) { response in
                #expect(response.status == .unauthorized && response.headers[.wwwAuthenticate] == "Bearer")
                let code = try Self.graphQLCode(response.body)
                #expect(code == "UNAUTHENTICATED")
            }
            try await client.execute(uri: "/v1/models", method: .get) { response in
                #expect(response.status == .unauthorized)
                let code = try Self.openAICode(response.body)
                #expect(code == "UNAUTHENTICATED")
            }
            try await client.execute(uri: "/ui/", method: .get) { response in
                #expect(response.status == .seeOther && response.headers[.location] == "/ui/login")
            }
            try await client.execute(uri: "/metrics", method: .get) { response in
                #expect(response.status == .unauthorized && String(buffer: response.body).hasPrefix("UNAUTHENTICATED: "))
            }
            // Open routes need no key.
            for open in ["/healthz", "/readyz", "/ui/login"] {
                try await client.execute(uri: open, method: .get) { response in #expect(response.status == .ok, "\(open)") }
            }
            // With the key, the same routes answer; a read key may not generate (403, OpenAI's shape).
            let auth: HTTPFields = [.authorization: "Bearer \(keys["reader"] ?? "")", .contentType: "application/json"]
            try await client.execute(uri: "/graphql", method: .post, headers: auth, body: Self.query) { response in
                #expect(response.status == .ok && String(buffer: response.body).contains("Query"))
            }
            try await client.execute(
                uri: "/v1/chat/completions", method: .post, headers: auth,
                body: ByteBuffer(string: #"{"model": "m", "messages": [{"role": "user", "content": "Hi"}]}"#)
            ) { response in
                #expect(response.status == .forbidden)
                let code = try Self.openAICode(response.body)
                #expect(code == "FORBIDDEN")
            }
            try await client.execute(uri: "/metrics", method: .get, headers: auth) { response in
                #expect(response.status == .ok)
                let text = String(buffer: response.body)
                #expect(!text.contains("pedigree_key_"), "series by key only for audit and admin scrapes")
            }
        }
    }

    @Test func aKeyOverItsRequestQuotaIsToldWhenToComeBack() async throws {
        let (app, keys, _) = try Self.router(keys: [("once", .read, 1)])
        let auth: HTTPFields = [.authorization: "Bearer \(keys["once"] ?? "")", .contentType: "application/json"]
        try await app.test(.router) { client in
            try await client.execute(uri: "/graphql", method: .post, headers: auth, body: Self.query) { #expect($0.status == .ok) }
            try await client.execute(uri: "/graphql", method: .post, headers: auth, body: Self.query) { response in
                #expect(response.status == .tooManyRequests)
                let wait = try #require(response.headers[.retryAfter].flatMap { Int($0) })
                #expect(wait >= 1)
                let body = try Self.json(response.body)
                let errors = try #require(body["errors"] as? [[String: Any]])
                #expect((errors.first?["extensions"] as? [String: Any])?["retryAfterSeconds"] as? Int == wait)
            }
            try await client.execute(uri: "/v1/models", method: .get, headers: auth) { response in
                #expect(response.status == .tooManyRequests && response.headers[.retryAfter] != nil)
            }
        }
    }

    @Test func theRoutesOwnRulesAnswerInTheirGroupsFormat() async throws {
        let (app, _, _) = try Self.router(origins: ["https://app.example"])
        try await app.test(.router) { client in
            // Not JSON: refused before the body is read, as a GraphQL error.
            try await client.execute(uri: "/graphql", method: .post, headers: [.contentType: "text/plain"], body: Self.query) { response in
                let code = try Self.graphQLCode(response.body)
                #expect(response.status == .unsupportedMediaType && code == "BAD_USER_INPUT")
            }
            // A mutation over GET.
            try await client.execute(uri: "/graphql?query=mutation%20%7B%20refresh%20%7B%20head%20%7D%20%7D", method: .get) { response in
                let code = try Self.graphQLCode(response.body)
                #expect(response.status == .methodNotAllowed && code == "BAD_USER_INPUT")
            }
            // A foreign page may not post; a listed one may, and gets CORS headers, errors included.
            try await client.execute(
                uri: "/graphql", method: .post, headers: [.origin: "https://evil.example", .contentType: "application/json"], body: Self.query
            ) { response in
                let code = try Self.graphQLCode(response.body)
                #expect(response.status == .forbidden && code == "FORBIDDEN")
                #expect(response.headers[.accessControlAllowOrigin] == nil)
            }
            try await client.execute(
                uri: "/v1/completions", method: .post, headers: [.origin: "https://app.example", .contentType: "application/json"]
            ) { response in
                #expect(response.status == .badRequest && response.headers[.accessControlAllowOrigin] == "https://app.example")
            }
            // Preflights, before routing.
            try await client.execute(uri: "/graphql", method: .options, headers: [.origin: "https://app.example"]) { response in
                #expect(response.status == .noContent && response.headers[.accessControlAllowMethods] != nil)
            }
            try await client.execute(uri: "/graphql", method: .options, headers: [.origin: "https://evil.example"]) { response in
                #expect(response.status == .forbidden && response.headers[.accessControlAllowOrigin] == nil)
            }
            // Routing's own answer, as text.
            try await client.execute(uri: "/nowhere", method: .get) { response in
                #expect(response.status == .notFound && String(buffer: response.body).hasPrefix("NOT_FOUND: "))
            }
            // The webhook is off without a secret.
            try await client.execute(uri: "/hooks/git", method: .post, body: ByteBuffer(string: "{}")) { response in
                #expect(response.status == .notFound && String(buffer: response.body).contains("webhook-secret"))
            }
            // A subscription sent as a plain request is told how to ask for a stream (it never ran as a query).
            let subscription = ByteBuffer(
                string: #"{"query": "subscription { inferStream(input: {modelRevisionID: \"x\", prompt: \"y\"}) { token } }"}"#)
            try await client.execute(uri: "/graphql", method: .post, headers: Self.jsonType, body: subscription) { response in
                let code = try Self.graphQLCode(response.body)
                #expect(response.status == .badRequest && code == "BAD_USER_INPUT")
                #expect(String(buffer: response.body).contains("event-stream"))
            }
            // Probes that ask with HEAD; GraphiQL's missing page names no folder of the server's.
            try await client.execute(uri: "/healthz", method: .head) { response in #expect(response.status == .ok) }
            try await client.execute(uri: "/readyz", method: .head) { response in #expect(response.status == .ok) }
            try await client.execute(uri: "/graphql", method: .get, headers: [.accept: "text/html"]) { response in
                #expect(response.status == .serviceUnavailable || response.status == .ok)
                #expect(!String(buffer: response.body).contains(FileManager.default.currentDirectoryPath))
            }
        }
    }
}
