import Foundation

/// One output or dependency entry as `.dvc` files and `dvc.lock` record it.
public struct DVCEntry: Sendable, Hashable {
    /// Repository-relative path (already joined with the file's folder and `wdir`).
    public let path: String
    /// md5 of the content; ends in `.dir` for directories. Nil when not recorded.
    public let md5: String?
    /// Bytes in total (64-bit: weights and datasets exceed 2 GiB).
    public let size: Int64?
    /// Number of files, for directories.
    public let nfiles: Int?
    /// `md5` for DVC 3 hashing; nil for the legacy (DVC 2) dos2unix hashing.
    public let hashName: String?
    /// Whether DVC caches this out (`cache: false` keeps it in Git).
    public let cache: Bool
    /// The out's own remote (`remote:`), overriding `core.remote`.
    public let remote: String?
    /// For `dvc import`: where the data came from.
    public let importSource: ImportOrigin?

    public init(
        path: String, md5: String?, size: Int64?, nfiles: Int?, hashName: String?,
        cache: Bool = true, remote: String? = nil, importSource: ImportOrigin? = nil
    ) {
        self.path = path
        self.md5 = md5
        self.size = size
        self.nfiles = nfiles
        self.hashName = hashName
        self.cache = cache
        self.remote = remote
        self.importSource = importSource
    }

    /// True for directory outs (`.dir` manifests).
    public var isDirectory: Bool { md5?.hasSuffix(".dir") ?? false }

    /// Parses an import dependency: its path names a file in the *source* repository, so it is
    /// kept as written rather than resolved against this repository.
    static func parseImport(_ value: YAMLValue, file: String) throws -> DVCEntry {
        guard let path = value["path"]?.string, let repo = value["repo"], let url = repo["url"]?.string else {
            throw DVCError(.malformed, file: file, "import dependency without a path or repository url")
        }
        return DVCEntry(
            path: path, md5: value["md5"]?.string, size: value["size"]?.int64,
            nfiles: value["nfiles"]?.int64.map { Int($0) }, hashName: value["hash"]?.string,
            importSource: ImportOrigin(url: url, path: path, rev: repo["rev"]?.string, revLock: repo["rev_lock"]?.string)
        )
    }

    /// Parses an entry mapping, resolving its path against `base`.
    static func parse(_ value: YAMLValue, base: String, file: String) throws -> DVCEntry {
        guard let path = value["path"]?.string else { throw DVCError(.malformed, file: file, "entry without a path") }
        let md5 = value["md5"]?.string ?? value["etag"]?.string
        return DVCEntry(
            path: try RepoPath.resolve(path, in: base, file: file),
            md5: md5,
            size: value["size"]?.int64,
            nfiles: value["nfiles"]?.int64.map { Int($0) },
            hashName: value["hash"]?.string,
            cache: value["cache"]?.bool ?? true,
            remote: value["remote"]?.string
        )
    }
}

/// Where `dvc import` took data from.
public struct ImportOrigin: Sendable, Hashable {
    /// The source repository's URL (or local path).
    public let url: String
    /// The path inside the source repository.
    public let path: String
    /// The revision asked for (branch, tag), if any.
    public let rev: String?
    /// The exact commit DVC locked.
    public let revLock: String?
}
