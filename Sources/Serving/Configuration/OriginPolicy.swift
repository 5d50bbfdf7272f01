import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

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
    /// server through DNS rebinding (its own name, resolved to 127.0.0.1). No `Host` at all
    /// (HTTP/1.0 from a local tool) is not something a browser sends, and passes.
    public func allowsOpenAccess(host: String?) -> Bool {
        guard let host, !host.isEmpty else { return true }
        guard let name = Self.hostName(ofAuthority: host) else { return false }
        if Self.isLoopback(name) { return true }
        return allowed.contains { origin in
            guard let authority = origin.split(separator: "/").last.map(String.init) else { return false }
            return Self.hostName(ofAuthority: authority) == name
        }
    }

    /// The host name of an authority (`name`, `name:port`, `[v6]`, `[v6]:port`) in lower case;
    /// nil when it is not one (two colons outside brackets, a port that is not digits).
    public static func hostName(ofAuthority authority: String) -> String? {
        let text = authority.lowercased()
        let name: Substring
        let rest: Substring
        if text.hasPrefix("[") {
            guard let end = text.firstIndex(of: "]") else { return nil }
            name = text[text.startIndex...end]
            rest = text[text.index(after: end)...]
        } else {
            let parts = text.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)
            name = parts[0]
            rest = parts.count > 1 ? text[text.index(before: parts[1].startIndex)...] : ""
        }
        if !rest.isEmpty {
            guard rest.first == ":", rest.count > 1, rest.count <= 6, rest.dropFirst().allSatisfy({ $0.isASCII && $0.isNumber }) else { return nil }
        }
        guard !name.isEmpty, !name.contains(":") || name.hasPrefix("[") else { return nil }
        return String(name)
    }

    /// Whether `name` (a host name as `hostName(ofAuthority:)` gives it, or a listen address)
    /// names this machine's loopback and nothing else: `localhost`, `::1` (bracketed or not), or a
    /// dotted-quad IPv4 literal in 127.0.0.0/8 written the one canonical way. Names that merely
    /// begin like one (`127.evil.example`, `localhost.evil.example`), other spellings of an
    /// address (`0x7f.1`, `2130706433`, `127.000.0.1`) and a trailing dot are not.
    public static func isLoopback(_ name: String) -> Bool {
        let name = name.lowercased()
        if name == "localhost" { return true }
        if name == "::1" || name == "[::1]" { return true }
        if name.hasPrefix("[") && name.hasSuffix("]") || name.contains(":") {
            let inner = name.trimmingCharacters(in: CharacterSet(charactersIn: "[]"))
            var address = in6_addr()
            guard inet_pton(AF_INET6, inner, &address) == 1 else { return false }
            return withUnsafeBytes(of: &address) { bytes in bytes.prefix(15).allSatisfy { $0 == 0 } && bytes[15] == 1 }
        }
        let parts = name.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return false }
        var octets: [Int] = []
        for part in parts {
            guard (1...3).contains(part.count), part.allSatisfy({ $0.isASCII && $0.isNumber }),
                part == "0" || part.first != "0", let value = Int(part), value <= 255
            else { return false }
            octets.append(value)
        }
        return octets[0] == 127
    }

    /// Whether `origin` is one the configuration lists (such origins get CORS headers).
    public func isListed(_ origin: String) -> Bool { Self.normalize(origin).map { allowed.contains($0) } ?? false }
}
