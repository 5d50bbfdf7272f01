public import Foundation

/// A Git LFS pointer file (https://github.com/git-lfs/git-lfs/blob/main/docs/spec.md): what Git
/// holds in place of a large file whose content lives on an LFS server.
///
///     version https://git-lfs.github.com/spec/v1
///     oid sha256:4d7a2146…
///     size 12345
///
/// Read as the spec says and git-lfs reads it: at most 1024 bytes, UTF-8 lines of `key value`
/// ending in a newline, `version` first, the other keys in order, `oid` a SHA-256 in 64 lower-case
/// hex digits, `size` a non-negative decimal. Anything else is not a pointer (the file is then
/// the artifact itself).
public struct LFSPointer: Sendable, Hashable, Codable {
    /// The SHA-256 of the content, lower-case hex.
    public let oid: String
    public let size: Int64

    /// Pointer files are smaller than this (the spec's bound).
    public static let maxBytes = 1024
    static let versions: Set<String> = ["https://git-lfs.github.com/spec/v1", "https://hawser.github.com/spec/v1"]

    public init(oid: String, size: Int64) {
        self.oid = oid
        self.size = size
    }

    /// The pointer in `data`, nil when `data` is not one.
    public init?(_ data: Data) {
        guard data.count < Self.maxBytes, data.last == UInt8(ascii: "\n"), let text = String(data: data, encoding: .utf8) else { return nil }
        var keys: [String] = []
        var values: [String: String] = [:]
        for line in text.dropLast().split(separator: "\n", omittingEmptySubsequences: false) {
            guard let space = line.firstIndex(of: " ") else { return nil }
            let key = String(line[..<space])
            let value = String(line[line.index(after: space)...])
            guard !key.isEmpty, key.utf8.allSatisfy({ (97...122).contains($0) || (48...57).contains($0) || $0 == 46 || $0 == 45 }),
                values[key] == nil
            else { return nil }
            keys.append(key)
            values[key] = value
        }
        guard keys.first == "version", let version = values["version"], Self.versions.contains(version),
            keys.dropFirst() == keys.dropFirst().sorted()[...]
        else { return nil }
        guard let oid = values["oid"], oid.hasPrefix("sha256:") else { return nil }
        let hex = oid.dropFirst("sha256:".count)
        guard hex.utf8.count == 64, hex.utf8.allSatisfy({ (48...57).contains($0) || (97...102).contains($0) }) else { return nil }
        guard let sizeText = values["size"], !sizeText.isEmpty, sizeText.utf8.allSatisfy({ (48...57).contains($0) }),
            sizeText.count <= 18, let size = Int64(sizeText)
        else { return nil }
        self.oid = String(hex)
        self.size = size
    }

    /// `lfs.url` of a `.lfsconfig` (Git's config syntax: `[lfs]` then `url = …`), nil when it sets
    /// none. A malformed file sets none, as git-lfs reads it.
    public static func endpoint(inConfig data: Data) -> String? {
        guard data.count <= 64 * 1024, let text = String(data: data, encoding: .utf8) else { return nil }
        var section = ""
        var url: String?
        for raw in text.split(whereSeparator: \.isNewline) {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") || line.hasPrefix(";") { continue }
            if line.hasPrefix("[") {
                guard let close = line.firstIndex(of: "]") else { return nil }
                section = line[line.index(after: line.startIndex)..<close].trimmingCharacters(in: .whitespaces).lowercased()
                continue
            }
            guard section == "lfs", let equals = line.firstIndex(of: "=") else { continue }
            let key = line[..<equals].trimmingCharacters(in: .whitespaces).lowercased()
            var value = line[line.index(after: equals)...].trimmingCharacters(in: .whitespaces)
            if value.count >= 2, value.first == "\"", value.last == "\"" { value = String(value.dropFirst().dropLast()) }
            if key == "url", !value.isEmpty { url = value }
        }
        return url
    }
}
