public import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The keys file: JSON, written whole (temporary file + rename, mode 0600) under an exclusive
/// lock on `<file>.lock`, so `pedigree keys` and a running server can share it. It holds digests
/// only.
public struct KeyFile: Sendable {
    public let url: URL

    public init(url: URL) { self.url = url }

    /// The keys file of a cache folder (the default).
    public static func inCache(_ cache: URL) -> KeyFile { KeyFile(url: cache.appendingPathComponent("keys.json")) }

    struct Contents: Codable {
        var version = 1
        var keys: [KeyRecord] = []
    }

    /// Every key, revoked ones included; none when the file does not exist.
    public func load() throws(AccessFileError) -> [KeyRecord] {
        guard let data = FileManager.default.contents(atPath: url.path) else {
            if FileManager.default.fileExists(atPath: url.path) { throw AccessFileError("\(url.path): cannot be read") }
            return []
        }
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        do {
            let contents = try decoder.decode(Contents.self, from: data)
            guard contents.version == 1 else { throw AccessFileError("\(url.path): unknown version \(contents.version)") }
            return contents.keys
        } catch let error as AccessFileError {
            throw error
        } catch {
            throw AccessFileError("\(url.path): not a keys file (\(error))")
        }
    }

    /// Creates a key; answers its record and the key, which exists nowhere else afterwards.
    public func create(name: String, role: Role, limits: QuotaLimits = QuotaLimits()) throws(AccessFileError) -> (KeyRecord, APIKey) {
        guard Self.isValidName(name) else {
            throw AccessFileError("key names are 1 to 64 letters, digits, '.', '_' or '-' (got '\(name)')")
        }
        return try update { keys throws(AccessFileError) in
            if keys.contains(where: { $0.name == name && $0.isActive }) {
                throw AccessFileError("an active key named '\(name)' exists; revoke it first or choose another name")
            }
            var key = APIKey.generate()
            while keys.contains(where: { $0.id == key.id }) { key = APIKey.generate() }
            let record = KeyRecord(id: key.id, name: name, role: role, sha256: key.digest.hexString, created: Date(), revoked: nil, limits: limits)
            keys.append(record)
            return (record, key)
        }
    }

    /// Revokes the active key with this name or id.
    public func revoke(_ nameOrID: String) throws(AccessFileError) -> KeyRecord {
        try update { keys throws(AccessFileError) in
            guard let index = keys.firstIndex(where: { $0.isActive && ($0.name == nameOrID || $0.id == nameOrID) }) else {
                throw AccessFileError("no active key named '\(nameOrID)'")
            }
            keys[index].revoked = Date()
            return keys[index]
        }
    }

    static func isValidName(_ name: String) -> Bool {
        (1...64).contains(name.utf8.count)
            && name.utf8.allSatisfy { byte in
                (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A) || byte == 0x2E || byte == 0x5F
                    || byte == 0x2D
            }
    }

    /// Reads, changes and writes the file under its lock.
    private func update<T>(_ change: (inout [KeyRecord]) throws(AccessFileError) -> T) throws(AccessFileError) -> T {
        let folder = url.deletingLastPathComponent()
        do {
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        } catch {
            throw AccessFileError("\(folder.path): cannot be created")
        }
        let lock = open(url.path + ".lock", O_CREAT | O_RDWR | O_CLOEXEC, 0o600)
        guard lock >= 0 else { throw AccessFileError("\(url.path).lock: cannot be opened") }
        defer { close(lock) }
        guard flock(lock, LOCK_EX) == 0 else { throw AccessFileError("\(url.path).lock: cannot be locked") }
        var keys = try load()
        let result = try change(&keys)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        encoder.dateEncodingStrategy = .iso8601
        guard let data = try? encoder.encode(Contents(keys: keys)) else { throw AccessFileError("keys cannot be encoded") }
        let temporary = url.path + ".tmp-\(getpid())"
        guard FileManager.default.createFile(atPath: temporary, contents: data, attributes: [.posixPermissions: 0o600]) else {
            throw AccessFileError("\(temporary): cannot be written")
        }
        guard rename(temporary, url.path) == 0 else {
            unlink(temporary)
            throw AccessFileError("\(url.path): cannot be replaced")
        }
        return result
    }
}

/// A keys file that cannot be read or changed.
public struct AccessFileError: Error, Sendable, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}
