import Foundation
import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Turns a presented key into a `Principal`. The keys file is looked at (one `stat`) on every
/// call and read again when it changed, so `pedigree keys create|revoke` take effect on a running
/// server at once.
///
/// Authentication is on when the keys file holds any key (revoked ones count: revoking every key
/// does not open a server), or when `required` (a non-loopback listen address). Otherwise the
/// server is open and every caller is `Principal.open`.
public final class Authenticator: Sendable {
    public let file: KeyFile
    let required: Bool
    let defaults: QuotaLimits

    /// The keys as of one look at the file.
    struct Snapshot: Sendable {
        var stamp: FileStamp?
        var keys: [String: KeyRecord] = [:]
        /// Set when the file exists and cannot be read: every key is refused (fail closed).
        var problem: AccessFileError?
        var enabled = false
    }
    /// nil until the file was first looked at.
    private let snapshot = Mutex<Snapshot?>(nil)
    /// Quota counters by key id; kept across reloads of the file.
    private let meters = Mutex<[String: KeyMeter]>([:])

    public init(file: KeyFile, required: Bool, defaults: QuotaLimits = QuotaLimits()) {
        self.file = file
        self.required = required
        self.defaults = defaults
    }

    /// Reads the keys file now; throws when it exists and cannot be used (a server refuses to
    /// start over it).
    public func check() throws(AccessFileError) {
        if let problem = current().snapshot.problem { throw problem }
    }

    /// The keys as the file holds them now (one `stat`; read again only when it changed). A
    /// request takes one view and asks it everything.
    public func current() -> Keys {
        let stamp = FileStamp(path: file.url.path)
        if let cached = snapshot.withLock({ $0?.stamp == stamp ? $0 : nil }) { return Keys(snapshot: cached, owner: self) }
        var fresh = Snapshot(stamp: stamp)
        if stamp != nil {
            do throws(AccessFileError) {
                for record in try file.load() { fresh.keys[record.id] = record }
            } catch {
                fresh.problem = error
            }
        }
        fresh.enabled = required || !fresh.keys.isEmpty || fresh.problem != nil
        snapshot.withLock { $0 = fresh }
        return Keys(snapshot: fresh, owner: self)
    }

    /// Whether requests must present a key.
    public var isEnabled: Bool { current().isEnabled }

    /// Counters of every key that has been used, by name.
    public var meterList: [KeyMeter] { meters.withLock { Array($0.values) }.sorted { $0.name < $1.name } }

    fileprivate func meter(for record: KeyRecord) -> KeyMeter {
        let limits = record.limits.over(defaults)
        return meters.withLock { meters in
            if let meter = meters[record.id] {
                meter.update(limits)
                return meter
            }
            let meter = KeyMeter(name: record.name, limits: limits)
            meters[record.id] = meter
            return meter
        }
    }

    /// One view of the keys file, taken once per request.
    public struct Keys: Sendable {
        let snapshot: Snapshot
        fileprivate let owner: Authenticator

        /// Whether requests must present a key: the file holds any key (revoked ones count),
        /// cannot be read, or the server listens beyond loopback.
        public var isEnabled: Bool { snapshot.enabled }

        /// The principal of an `Authorization` header value (`Bearer <key>`), or why there is none.
        public func authenticate(authorization: String?) -> Result<Principal, AccessError> {
            guard let authorization else { return authenticate(key: nil) }
            let trimmed = authorization.drop { $0 == " " }
            guard trimmed.count > 7, trimmed.prefix(7).lowercased() == "bearer " else {
                return isEnabled ? .failure(.unauthenticated("the Authorization header must be 'Bearer <API key>'")) : .success(.open)
            }
            return authenticate(key: String(trimmed.dropFirst(7).drop { $0 == " " }))
        }

        /// Whether key `id` is still active with `role` (not revoked, not changed).
        func isActive(id: String, role: Role) -> Bool {
            guard snapshot.problem == nil, let record = snapshot.keys[id] else { return false }
            return record.isActive && record.role == role
        }

        /// The principal of a key as sent (`nil`: none sent).
        public func authenticate(key text: String?) -> Result<Principal, AccessError> {
            guard isEnabled else {
                return .success(Principal(name: nil, keyID: nil, role: .admin, meter: nil) { [owner] in !owner.current().isEnabled })
            }
            guard let text, !text.isEmpty else {
                return .failure(.unauthenticated("this server requires an API key (Authorization: Bearer <key>)"))
            }
            guard let key = APIKey(parsing: text) else { return .failure(.unauthenticated("malformed API key")) }
            guard let record = snapshot.keys[key.id], record.matches(key) else { return .failure(.unauthenticated("unknown API key")) }
            guard record.isActive else { return .failure(.unauthenticated("revoked API key")) }
            return .success(
                Principal(name: record.name, keyID: record.id, role: record.role, meter: owner.meter(for: record)) {
                    [owner, id = record.id, role = record.role] in owner.current().isActive(id: id, role: role)
                })
        }
    }
}

/// What identifies one version of a file without reading it: its modification time, size and
/// inode (a file replaced by a rename has a new inode). Nil when the file is not there.
public struct FileStamp: Equatable, Sendable {
    let seconds: Int
    let nanoseconds: Int
    let size: Int64
    let inode: UInt64

    public init?(path: String) {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        #if canImport(Darwin)
            seconds = Int(info.st_mtimespec.tv_sec)
            nanoseconds = Int(info.st_mtimespec.tv_nsec)
        #else
            seconds = Int(info.st_mtim.tv_sec)
            nanoseconds = Int(info.st_mtim.tv_nsec)
        #endif
        size = Int64(info.st_size)
        inode = UInt64(info.st_ino)
    }
}
