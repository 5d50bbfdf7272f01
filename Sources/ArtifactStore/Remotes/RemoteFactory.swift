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

    public init(
        dvcFolder: String?, environment: [String: String] = ProcessInfo.processInfo.environment,
        home: String = FileManager.default.homeDirectoryForCurrentUser.path
    ) {
        self.dvcFolder = dvcFolder
        self.environment = environment
        self.home = home
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
            return try S3Remote(name: chosen, url: url, options: options, environment: environment, home: home)
        case "http", "https":
            let basic = options["auth"]?.lowercased() == "basic"
            return HTTPRemote(name: chosen, url: url, user: basic ? options["user"] : nil, password: basic ? options["password"] : nil)
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
