import Foundation
import NIOHTTP1

/// A DVC remote served over HTTP(S) (`url = http://host/path`), optionally with basic auth
/// (`auth = basic`, `user`, `password`).
public struct HTTPRemote: ObjectRemote {
    public let name: String
    /// The remote's URL without a trailing slash.
    public let base: String
    private let authorization: String?
    /// Other origins a redirect may lead to (without credentials).
    let redirectOrigins: Set<String>

    public init(name: String, url: String, user: String? = nil, password: String? = nil, redirectOrigins: Set<String> = []) {
        self.redirectOrigins = redirectOrigins
        self.name = name
        var base = url
        while base.hasSuffix("/") { base.removeLast() }
        self.base = base
        authorization = user.map { "Basic " + Data("\($0):\(password ?? "")".utf8).base64EncodedString() }
    }

    public func read(_ key: String, into sink: ObjectSink) async throws {
        var headers = HTTPHeaders()
        if let authorization { headers.add(name: "Authorization", value: authorization) }
        try await HTTPTransport.get(
            base + "/" + key, headers: headers, credentialed: authorization != nil, redirectOrigins: redirectOrigins, into: sink
        ) { status, _ in
            "HTTP \(status) for \(key)"
        }
    }
}
