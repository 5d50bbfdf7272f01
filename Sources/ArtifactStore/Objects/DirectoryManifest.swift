import DVCKit
import Foundation

/// The files of a directory out, read from its `.dir` object.
struct DirectoryManifest: Sendable {
    struct Entry: Sendable, Hashable {
        let relpath: String
        let md5: String
    }
    let entries: [Entry]

    /// Parses and checks a manifest: every relpath must stay inside the directory (no `..`, no
    /// absolute path, no empty segment), since each becomes a file name under the cache.
    init(data: Data, object: String) throws {
        guard let list = try? JSONSerialization.jsonObject(with: data) as? [[String: Any]] else {
            throw ArtifactError.unsafeManifest(object: object, reason: "not a JSON list of {md5, relpath}")
        }
        var seen = Set<String>()
        entries = try list.map { item in
            guard let relpath = item["relpath"] as? String, let md5 = item["md5"] as? String else {
                throw ArtifactError.unsafeManifest(object: object, reason: "an entry lacks md5 or relpath")
            }
            let parts = relpath.split(separator: "/", omittingEmptySubsequences: false)
            guard !relpath.isEmpty, !relpath.hasPrefix("/"), !relpath.contains("\\"), !relpath.contains("\0"),
                parts.allSatisfy({ !$0.isEmpty && $0 != "." && $0 != ".." })
            else {
                throw ArtifactError.unsafeManifest(object: object, reason: "path '\(relpath.prefix(200))' leaves the directory")
            }
            guard seen.insert(relpath).inserted else {
                throw ArtifactError.unsafeManifest(object: object, reason: "path '\(relpath.prefix(200))' is listed twice")
            }
            return Entry(relpath: relpath, md5: md5)
        }
    }
}
