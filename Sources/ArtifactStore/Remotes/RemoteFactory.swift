public import DVCKit
public import Foundation

/// Builds the remote an out is fetched from, as DVC chooses it: the out's own `remote:`, else
/// `core.remote`; its URL scheme picks the implementation.
public struct RemoteFactory: Sendable {
    /// The source working tree's `.dvc` folder, against which a relative local remote URL is
    /// resolved (as DVC does); nil when the source is not a local folder.
    public let dvcFolder: String?
    public let environment: [String: String]
    public let home: String
    /// Endpoints (`scheme://host[:port]`) the operator allows a repository's committed
    /// `.dvc/config` to name (`remote-endpoints`), besides AWS itself; endpoints the operator set
    /// (`.dvc/config.local`, `AWS_ENDPOINT_URL`) need no listing. Redirects may also lead there.
    public let trustedEndpoints: Set<String>

    public init(
        dvcFolder: String?, environment: [String: String] = ProcessInfo.processInfo.environment,
        home: String = FileManager.default.homeDirectoryForCurrentUser.path, trustedEndpoints: [String] = []
    ) {
        self.dvcFolder = dvcFolder
        self.environment = environment
        self.home = home
        self.trustedEndpoints = Set(trustedEndpoints.compactMap(Self.origin))
    }

    /// `scheme://host[:port]` of a URL, lower-cased, with its port only when not the default.
    static func origin(_ url: String) -> String? {
        guard let components = URLComponents(string: url), let scheme = components.scheme?.lowercased(), let host = components.host?.lowercased(),
            !host.isEmpty
        else { return nil }
        let port = components.port.flatMap { (scheme == "https" && $0 == 443) || (scheme == "http" && $0 == 80) ? nil : $0 }
        return "\(scheme)://\(host)" + (port.map { ":\($0)" } ?? "")
    }

    /// Refuses to connect to `url` when the repository's committed `.dvc/config` chose it and the
    /// operator's configuration does not list it: a pushed commit must not be able to make the
    /// server connect to a host of its choice (one on the internal network), with or without the
    /// operator's credentials.
    func checkEndpoint(_ url: String, remote: String, fromRepository: Bool) throws {
        guard fromRepository else { return }
        guard let origin = Self.origin(url) else {
            throw ArtifactError.unavailable(remote: remote, reason: "the repository's .dvc/config names an endpoint that is not a URL")
        }
        guard !trustedEndpoints.contains(origin) else { return }
        throw ArtifactError.unavailable(
            remote: remote,
            reason: "the repository's .dvc/config sends this remote to \(origin), which the configuration does not list in remote-endpoints: "
                + "nothing is fetched from there and the operator's credentials are not sent there "
                + "(add it to remote-endpoints, or set the remote in .dvc/config.local)")
    }

    /// The remote of one Git LFS object (SHA-256 `oid`, `size` bytes) at `endpoint`: an LFS server
    /// (its Batch API), or the source's own local folder in git-lfs's layout (`ab/cd/abcd…`). An
    /// endpoint the repository chose (`.lfsconfig`) is used only when `remote-endpoints` lists
    /// its origin, as a DVC remote the repository names, and never a local folder. The operator's
    /// `credentials` go to the endpoint when they name its URL, else the user and password of the
    /// endpoint's own URL when the operator gave it (`--repo`). Downloads may lead to the
    /// endpoint's origin and the listed ones. Returns the remote and the key to read.
    func lfsRemote(endpoint: String, fromRepository: Bool, oid: String, size: Int64, credentials: LFSCredentials) throws -> (
        remote: any ObjectRemote, key: String
    ) {
        if endpoint.hasPrefix("/") {
            guard !fromRepository else {
                throw ArtifactError.unavailable(remote: "lfs", reason: "the repository's .lfsconfig names a local folder: not read")
            }
            return (LocalRemote(name: "lfs", root: endpoint), "\(oid.prefix(2))/\(oid.dropFirst(2).prefix(2))/\(oid)")
        }
        guard var components = URLComponents(string: endpoint), let scheme = components.scheme?.lowercased(), scheme == "http" || scheme == "https"
        else {
            throw ArtifactError.configuration("the Git LFS endpoint is not an http(s) URL or a local folder")
        }
        let userinfo = components.user.map { user in user + ":" + (components.password ?? "") }
        components.user = nil
        components.password = nil
        let url = components.string ?? endpoint
        guard let origin = Self.origin(url) else { throw ArtifactError.unavailable(remote: "lfs", reason: "the LFS endpoint is not a URL") }
        let name = "lfs " + origin
        if fromRepository, !trustedEndpoints.contains(origin) {
            throw ArtifactError.unavailable(
                remote: name,
                reason: "the repository's .lfsconfig sends Git LFS downloads to \(origin), which the configuration does not list in "
                    + "remote-endpoints: nothing is fetched from there and the operator's credentials are not sent there")
        }
        // Credentials written into a committed .lfsconfig are the repository's, not the operator's.
        let chosen = credentials.userinfo(for: url) ?? (fromRepository ? nil : userinfo)
        if chosen != nil, scheme == "http", !Self.isLoopback(components.host ?? "") {
            throw ArtifactError.unavailable(remote: name, reason: "credentials are not sent over plain http to a host other than this one")
        }
        let remote = LFSRemote(
            endpoint: url, name: name, oid: oid, size: size, credentials: chosen, downloadOrigins: trustedEndpoints.union([origin]))
        return (remote, oid)
    }

    static func isLoopback(_ host: String) -> Bool {
        let host = host.lowercased()
        return host == "localhost" || host == "::1" || host == "[::1]" || host.hasPrefix("127.")
    }

    /// The remote named `name` (or the default one when nil) in `config`.
    public func remote(named name: String?, config: DVCConfig) throws -> any ObjectRemote {
        guard let chosen = name ?? config.defaultRemote else {
            throw ArtifactError.configuration("no DVC remote: the out names none and .dvc/config sets no core.remote")
        }
        guard let options = config.remotes[chosen], let url = options["url"] else {
            throw ArtifactError.configuration("DVC remote '\(chosen)' is not defined in .dvc/config")
        }
        let scheme = url.split(separator: ":", maxSplits: 1).first.map { $0.lowercased() } ?? ""
        switch scheme {
        case "s3":
            let remote = try S3Remote(name: chosen, url: url, options: options, environment: environment, home: home)
            // AWS's own endpoints are public; a custom one must come from the operator (or be listed).
            if remote.customEndpoint {
                let fromRepository = options["endpointurl"] != nil && !config.isLocal("endpointurl", of: chosen)
                try checkEndpoint(remote.endpoint, remote: chosen, fromRepository: fromRepository)
            }
            return remote.allowingRedirects(to: trustedEndpoints)
        case "http", "https":
            let basic = options["auth"]?.lowercased() == "basic"
            try checkEndpoint(url, remote: chosen, fromRepository: !config.isLocal("url", of: chosen))
            return HTTPRemote(
                name: chosen, url: url, user: basic ? options["user"] : nil, password: basic ? options["password"] : nil,
                redirectOrigins: trustedEndpoints)
        case "file":
            guard let path = URL(string: url)?.path, !path.isEmpty else {
                throw ArtifactError.configuration("DVC remote '\(chosen)': '\(url)' is not a file URL")
            }
            return LocalRemote(name: chosen, root: path)
        default:
            if url.contains("://") {
                throw ArtifactError.configuration("DVC remote '\(chosen)': the scheme of '\(url)' is not supported (local, s3, http, https)")
            }
            if url.hasPrefix("/") { return LocalRemote(name: chosen, root: url) }
            guard let dvcFolder else {
                throw ArtifactError.configuration("DVC remote '\(chosen)' has a relative path and the repository is not a local folder")
            }
            return LocalRemote(
                name: chosen, root: URL(fileURLWithPath: url, relativeTo: URL(fileURLWithPath: dvcFolder + "/")).standardizedFileURL.path)
        }
    }
}

/// The operator's Git LFS credentials (`lfs-credentials-file`): lines `URL USER:PASSWORD`, each
/// sent as basic auth to the LFS endpoints at or under its URL only. Blank lines and `#`
/// comments are skipped.
public struct LFSCredentials: Sendable {
    let entries: [(prefix: String, userinfo: String)]

    public static let none = LFSCredentials(entries: [])

    init(entries: [(prefix: String, userinfo: String)]) { self.entries = entries }

    /// Parses the file's text; a malformed line is refused by number (without its content).
    public init(text: String) throws {
        var entries: [(String, String)] = []
        for (number, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") { continue }
            let parts = line.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: true).map { $0.trimmingCharacters(in: .whitespaces) }
            guard parts.count == 2, let url = URLComponents(string: parts[0]), url.user == nil, let scheme = url.scheme?.lowercased(),
                scheme == "http" || scheme == "https", url.host?.isEmpty == false, parts[1].contains(":")
            else { throw ArtifactError.configuration("line \(number + 1) of the LFS credentials is not URL USER:PASSWORD") }
            var prefix = parts[0]
            while prefix.hasSuffix("/") { prefix.removeLast() }
            entries.append((prefix, parts[1]))
        }
        self.entries = entries
    }

    /// The `user:password` for `url`: the longest entry it is at or under.
    func userinfo(for url: String) -> String? {
        entries.filter { url == $0.prefix || url.hasPrefix($0.prefix + "/") }.max { $0.prefix.count < $1.prefix.count }?.userinfo
    }
}
