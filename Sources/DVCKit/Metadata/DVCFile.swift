public import Foundation

/// A `.dvc` file: outputs tracked outside a pipeline, and for imports the dependency they came from.
public struct DVCFile: Sendable {
    /// The `.dvc` file's repository path.
    public let path: String
    public let outs: [DVCEntry]
    /// For `dvc import`: the source entry (with `importSource` set).
    public let deps: [DVCEntry]
    public let frozen: Bool

    public init(path: String, data: Data, limits: ParseLimits = .default) throws {
        self.path = path
        let root = try YAMLLoader.load(data, file: path, limits: limits)
        guard case .mapping = root else { throw DVCError(.malformed, file: path, "expected a mapping with 'outs'") }
        let base = try RepoPath.resolve(root["wdir"]?.string ?? ".", in: RepoPath.directory(of: path), file: path)
        guard let outList = root["outs"]?.sequence, !outList.isEmpty else {
            throw DVCError(.malformed, file: path, "no 'outs' list")
        }
        var outs: [DVCEntry] = []
        for out in outList {
            // `dvc add` writes a .dvc file beside what it tracks: an out that climbs out of the
            // file's folder is not something DVC wrote, and could point anywhere.
            if let raw = out["path"]?.string, raw.split(separator: "/").contains("..") {
                throw DVCError(.unsafePath, file: path, "out path '\(RepoPath.printable(raw))' leaves the .dvc file's folder")
            }
            outs.append(try DVCEntry.parse(out, base: base, file: path))
        }
        var deps: [DVCEntry] = []
        for dep in root["deps"]?.sequence ?? [] {
            if dep["repo"] != nil {
                deps.append(try DVCEntry.parseImport(dep, file: path))
            } else {
                deps.append(try DVCEntry.parse(dep, base: base, file: path))
            }
        }
        self.outs = outs
        self.deps = deps
        self.frozen = root["frozen"]?.bool ?? false
    }

    /// The import origin, when this file was written by `dvc import`.
    public var importSource: ImportOrigin? { deps.lazy.compactMap(\.importSource).first }
}
