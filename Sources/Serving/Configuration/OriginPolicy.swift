import Foundation

/// Which browser origins may call the server: its own (the `Origin` names the host the request
/// was sent to) and those the configuration lists (`allowed-origins`). A request without `Origin`
/// did not come from a cross-site page and is not judged here.
public struct OriginPolicy: Sendable {
    let allowed: Set<String>

    public init(allowed: [String]) { self.allowed = Set(allowed.compactMap(Self.normalize)) }

    /// `scheme://host[:port]` in lower case without a default port or trailing slash; nil when
    /// `text` is not an http(s) origin.
    public static func normalize(_ text: String) -> String? {
        guard let components = URLComponents(string: text.hasSuffix("/") ? String(text.dropLast()) : text),
            let scheme = components.scheme?.lowercased(), scheme == "http" || scheme == "https",
            let host = components.host?.lowercased(), !host.isEmpty, components.path.isEmpty, components.query == nil,
            components.user == nil
        else { return nil }
        let defaultPort = scheme == "https" ? 443 : 80
        let port = components.port.flatMap { $0 == defaultPort ? nil : $0 }
        let shownHost = host.contains(":") && !host.hasPrefix("[") ? "[\(host)]" : host
        return "\(scheme)://\(shownHost)" + (port.map { ":\($0)" } ?? "")
    }

    /// Whether a request carrying `origin` to `host` (its `Host` header) may go on.
    public func allows(origin: String, host: String?) -> Bool {
        guard let normalized = Self.normalize(origin) else { return false }
        if isListed(normalized) { return true }
        guard let host = host?.lowercased(), let authority = normalized.split(separator: "/").last else { return false }
        if authority == host { return true }
        // `Host: name:80` against `http://name` (the origin drops the default port).
        let scheme = normalized.hasPrefix("https") ? "443" : "80"
        return host == "\(authority):\(scheme)"
    }

    /// Whether a `Host` header may reach a server that runs without keys: a loopback name, or the
    /// host of a listed origin. Anything else is how a page on another site reaches a loopback
    /// server through DNS rebinding (its own name, resolved to 127.0.0.1).
    public func allowsOpenAccess(host: String?) -> Bool {
        guard let host = host?.lowercased(), !host.isEmpty else { return true }
        let name: Substring
        if host.hasPrefix("["), let end = host.firstIndex(of: "]") {
            name = host[host.startIndex...end]
        } else {
            name = host.split(separator: ":", maxSplits: 1).first ?? ""
        }
        if name == "localhost" || name == "[::1]" || name.hasPrefix("127.") { return true }
        return allowed.contains { origin in
            origin.split(separator: "/").last.map { $0 == host || $0.split(separator: ":").first == name } ?? false
        }
    }

    /// Whether `origin` is one the configuration lists (such origins get CORS headers).
    public func isListed(_ origin: String) -> Bool { Self.normalize(origin).map { allowed.contains($0) } ?? false }
}
