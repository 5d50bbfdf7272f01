public import DVCKit

/// One object in DVC's content-addressed storage: an md5 and the hashing scheme that produced it.
///
/// DVC 3 outs (`hash: md5`) live under `files/md5/` and hash plain bytes; legacy (DVC 2) outs live
/// at the root of the remote and hash text files after dos2unix. The two are kept apart in the
/// cache too, since the same hex digest names different bytes under the two schemes.
public struct ObjectID: Sendable, Hashable, CustomStringConvertible {
    public enum Scheme: String, Sendable, Hashable {
        /// DVC 3: plain md5, `files/md5/xx/yyyy…` in remotes.
        case md5
        /// DVC 2: md5 after dos2unix for text files, `xx/yyyy…` at the remote's root.
        case legacy

        /// The scheme of an out's `hash:` key: `md5` is DVC 3, none is legacy.
        public init(hashName: String?) { self = hashName == "md5" ? .md5 : .legacy }
    }

    /// 32 lower-case hex digits, plus `.dir` for a directory manifest.
    public let md5: String
    public let scheme: Scheme

    /// Validates the digest: it becomes a file name, so anything but hex is refused.
    public init(md5: String, scheme: Scheme) throws {
        let digest = md5.hasSuffix(".dir") ? String(md5.dropLast(4)) : md5
        guard digest.utf8.count == 32, digest.utf8.allSatisfy({ (48...57).contains($0) || (97...102).contains($0) }) else {
            throw ArtifactError.configuration("'\(md5.prefix(40))' is not an md5 digest")
        }
        self.md5 = md5
        self.scheme = scheme
    }

    /// The object behind a `.dvc` or `dvc.lock` entry.
    public init(entry: DVCEntry) throws {
        guard let md5 = entry.md5 else { throw ArtifactError.configuration("\(entry.path) has no recorded md5: run `dvc commit`") }
        try self.init(md5: md5, scheme: Scheme(hashName: entry.hashName))
    }

    public var isDirectory: Bool { md5.hasSuffix(".dir") }

    /// The digest the bytes must hash to (without `.dir`).
    var digest: String { isDirectory ? String(md5.dropLast(4)) : md5 }

    /// `ab/cdef…` — the two-level fan-out DVC uses.
    var fanout: String { "\(md5.prefix(2))/\(md5.dropFirst(2))" }

    /// The object's path relative to a remote's root.
    public var remoteKey: String { scheme == .md5 ? "files/md5/\(fanout)" : fanout }

    /// The object's path relative to the cache's `objects/` folder.
    var cacheKey: String { "\(scheme.rawValue)/\(fanout)" }

    public var description: String { scheme == .md5 ? md5 : "\(md5) (legacy)" }

    /// A file of a directory, hashed like the directory itself.
    func member(_ md5: String) throws -> ObjectID { try ObjectID(md5: md5, scheme: scheme) }
}

/// The incremental hash matching an object's scheme.
struct ObjectHasher {
    private var plain = MD5Stream()
    private var legacy = LegacyMD5Stream()
    private let scheme: ObjectID.Scheme

    init(_ id: ObjectID) {
        // Manifests are JSON without CR: both schemes give the plain md5.
        self.init(scheme: id.isDirectory ? .md5 : id.scheme)
    }

    init(scheme: ObjectID.Scheme) { self.scheme = scheme }

    mutating func update(_ chunk: UnsafeRawBufferPointer) {
        switch scheme {
        case .md5: plain.update(chunk)
        case .legacy: legacy.update(chunk)
        }
    }

    mutating func finalize() -> String {
        switch scheme {
        case .md5: plain.finalize()
        case .legacy: legacy.finalize()
        }
    }
}

/// What a download must hash to: an object's md5 (DVC's name for it), or a SHA-256 (a Git LFS
/// object's name, whose md5 is learnt from the same bytes).
public enum ExpectedDigest: Sendable, Hashable, CustomStringConvertible {
    case object(ObjectID)
    case sha256(String)

    /// How messages name the object.
    public var description: String {
        switch self {
        case .object(let id): id.md5
        case .sha256(let oid): "sha256:" + oid
        }
    }
}
