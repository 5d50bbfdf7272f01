import Foundation

/// Repository-relative paths as DVC files write them, made safe.
public enum RepoPath {
    /// Joins `base` (a folder, "" for the root) and `path` and normalises `.` and `..`.
    ///
    /// Throws `.unsafePath` for absolute paths, backslashes that would act as separators on
    /// Windows, NUL bytes, and anything that climbs above the repository root: metadata must
    /// never make Pedigree read or write outside the repository or the cache.
    public static func resolve(_ path: String, in base: String = "", file: String) throws -> String {
        if path.isEmpty { throw DVCError(.unsafePath, file: file, "empty path") }
        if path.hasPrefix("/") || path.hasPrefix("~") || path.contains("\0") || path.contains("\\")
            || (path.count > 1 && path.dropFirst().first == ":")
        {
            throw DVCError(.unsafePath, file: file, "path '\(printable(path))' must be relative to the repository")
        }
        var parts: [Substring] = base.split(separator: "/")
        for part in path.split(separator: "/", omittingEmptySubsequences: true) {
            switch part {
            case ".": continue
            case "..":
                if parts.isEmpty {
                    throw DVCError(.unsafePath, file: file, "path '\(printable(path))' leaves the repository")
                }
                parts.removeLast()
            default: parts.append(part)
            }
        }
        return parts.joined(separator: "/")
    }

    /// The folder part of a repository path ("" at the root).
    public static func directory(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "" }
        return String(path[..<slash])
    }

    /// `child` equals `parent` or lies inside it.
    public static func isWithin(_ child: String, _ parent: String) -> Bool {
        child == parent || parent.isEmpty || child.hasPrefix(parent + "/")
    }

    static func printable(_ text: String) -> String {
        String(text.unicodeScalars.map { $0.value < 0x20 ? "?" : Character($0) }.prefix(200))
    }
}
