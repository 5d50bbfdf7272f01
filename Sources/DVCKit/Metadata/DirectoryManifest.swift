public import Foundation

/// The files of a directory out, read from its `.dir` object.
public struct DirectoryManifest: Sendable {
    public struct Entry: Sendable, Hashable {
        public let relpath: String
        public let md5: String
        public init(relpath: String, md5: String) {
            self.relpath = relpath
            self.md5 = md5
        }
    }
    public let entries: [Entry]
    /// The largest manifest read (its download stops there), and the most files one may list.
    public static let maxBytes: Int64 = 128 << 20
    public static let maxEntries = 1_000_000

    /// Parses and checks a manifest: every relpath must stay inside the directory (no `..`, no
    /// absolute path, no empty segment), since each becomes a file name under the cache.
    public init(data: Data, object: String) throws(DVCError) {
        guard let list = try? JSONSerialization.jsonObject(with: data) as? [[String: Any]] else {
            throw DVCError(.malformed, file: object, "not a JSON list of {md5, relpath}")
        }
        guard list.count <= Self.maxEntries else {
            throw DVCError(.malformed, file: object, "lists \(list.count) files, more than the \(Self.maxEntries) a manifest may")
        }
        var seen = Set<String>()
        var entries: [Entry] = []
        for item in list {
            guard let relpath = item["relpath"] as? String, let md5 = item["md5"] as? String else {
                throw DVCError(.malformed, file: object, "an entry lacks md5 or relpath")
            }
            let parts = relpath.split(separator: "/", omittingEmptySubsequences: false)
            guard !relpath.isEmpty, !relpath.hasPrefix("/"), !relpath.contains("\\"), !relpath.contains("\0"),
                parts.allSatisfy({ !$0.isEmpty && $0 != "." && $0 != ".." })
            else {
                throw DVCError(.unsafePath, file: object, "path '\(relpath.prefix(200))' leaves the directory")
            }
            guard seen.insert(relpath).inserted else {
                throw DVCError(.malformed, file: object, "path '\(relpath.prefix(200))' is listed twice")
            }
            entries.append(Entry(relpath: relpath, md5: md5))
        }
        self.entries = entries
    }
}
