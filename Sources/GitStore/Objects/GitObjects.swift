import Clibgit2
public import Foundation
import Synchronization

/// A person and time as recorded in a commit or an annotated tag.
public struct Signature: Sendable, Hashable, Codable {
    public let name: String
    public let email: String
    /// The instant, independent of time zone.
    public let date: Date
    /// The author's UTC offset in minutes, kept so dates print as Git shows them.
    public let offsetMinutes: Int

    public init(name: String, email: String, date: Date, offsetMinutes: Int) {
        self.name = name
        self.email = email
        self.date = date
        self.offsetMinutes = offsetMinutes
    }

    /// ISO-8601 with the recorded offset, e.g. `2026-11-25T10:00:00+01:00`.
    public var iso8601: String {
        Self.formatters.withLock { formatters in
            let formatter =
                formatters[offsetMinutes]
                ?? {
                    let made = DateFormatter()
                    made.locale = Locale(identifier: "en_US_POSIX")
                    made.timeZone = TimeZone(secondsFromGMT: offsetMinutes * 60)
                    made.dateFormat = "yyyy-MM-dd'T'HH:mm:ssxxx"
                    return made
                }()
            formatters[offsetMinutes] = formatter
            return formatter.string(from: date)
        }
    }

    /// One formatter per UTC offset: creating a DateFormatter costs far more than using one, and
    /// every lineage answer formats several dates. DateFormatter is not thread-safe, so all use
    /// happens under the lock.
    private static let formatters = Mutex<[Int: DateFormatter]>([:])

    init(_ sig: UnsafePointer<git_signature>) {
        let raw = sig.pointee
        name = raw.name.map { String(cString: $0) } ?? ""
        email = raw.email.map { String(cString: $0) } ?? ""
        date = Date(timeIntervalSince1970: TimeInterval(raw.when.time))
        offsetMinutes = Int(raw.when.offset)
    }
}

/// A commit's metadata.
public struct CommitInfo: Sendable, Hashable, Codable {
    /// Full 40-hex id.
    public let sha: String
    public let author: Signature
    public let committer: Signature
    /// The full message, trailing newline removed.
    public let message: String
    /// Parent ids, first parent first.
    public let parents: [String]
    /// The id of the commit's root tree.
    public let tree: String
}

/// A tag, annotated or lightweight, peeled to the commit it names.
public struct TagInfo: Sendable, Hashable {
    /// The tag's short name (without `refs/tags/`).
    public let name: String
    /// The commit the tag ultimately points to.
    public let commit: String
    /// Set for annotated tags: who made it and when.
    public let tagger: Signature?
    public let message: String?

    public init(name: String, commit: String, tagger: Signature?, message: String?) {
        self.name = name
        self.commit = commit
        self.tagger = tagger
        self.message = message
    }

    public var isAnnotated: Bool { tagger != nil }
}

/// One entry of a recursive tree listing.
public struct TreeFile: Sendable, Hashable {
    /// Path from the repository root, `/`-separated.
    public let path: String
    /// Blob id (40 hex); equal ids mean equal content, which callers use as a cache key.
    public let blob: String
}

/// Formats a libgit2 object id as 40 lower-case hex characters.
func hex(_ oid: UnsafePointer<git_oid>) -> String {
    var buffer = [CChar](repeating: 0, count: 41)
    git_oid_tostr(&buffer, 41, oid)
    return String(decoding: buffer.prefix(40).map { UInt8(bitPattern: $0) }, as: UTF8.self)
}
