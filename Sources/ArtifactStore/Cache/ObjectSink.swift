import Crypto
import DVCKit
import Foundation
import Synchronization

#if canImport(Glibc)
    import Glibc
    private let systemWrite = Glibc.write
#elseif canImport(Darwin)
    import Darwin
    private let systemWrite = Darwin.write
#endif

/// A temporary file in the cache that an object is streamed into, hashing as it goes.
///
/// Owned by one download task. The file is created exclusively under `tmp/`; `commit` renames it
/// into place only after the digest matched and the bytes reached the disk, and `discard` removes
/// it, so a final path never holds a partial or unverified object.
public final class ObjectSink {
    let path: String
    private var descriptor: Int32
    private var hasher: ObjectHasher
    /// A Git LFS object's second digest (the one it is named by), when the sink hashes it too.
    private var sha256: SHA256?
    /// The SHA-256 of what was written, once `finish` ran (nil when not hashed).
    private(set) var sha256Digest: String?
    private(set) var bytesWritten: Int64 = 0
    private let onProgress: (Int64) -> Void
    private let expected: ExpectedDigest
    /// The most bytes the object may have (its recorded size); a remote that sends more is cut
    /// off before the excess reaches the disk.
    private let limit: Int64?
    /// What a group of downloads may write together (a directory's recorded size).
    private let shared: ByteBudget?

    init(path: String, expected: ExpectedDigest, limit: Int64? = nil, shared: ByteBudget? = nil, onProgress: @escaping (Int64) -> Void) throws {
        self.path = path
        self.expected = expected
        self.limit = limit
        self.shared = shared
        descriptor = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else { throw ArtifactError.configuration("cannot create a file in the cache: \(String(cString: strerror(errno)))") }
        switch expected {
        case .object(let id):
            hasher = ObjectHasher(id)
        case .sha256:
            hasher = ObjectHasher(scheme: .md5)
            sha256 = SHA256()
        }
        self.onProgress = onProgress
    }

    deinit { if descriptor >= 0 { close(descriptor) } }

    /// Appends bytes. Small chunks (HTTP delivers tens of kilobytes at a time) are gathered
    /// into one buffer so the file sees few large writes.
    public func write(_ chunk: UnsafeRawBufferPointer) throws {
        guard !chunk.isEmpty else { return }
        if let limit, bytesWritten + Int64(chunk.count) > limit { throw ArtifactError.oversized(object: expected.description, limit: limit) }
        if let shared, !shared.take(Int64(chunk.count)) { throw ArtifactError.oversized(object: expected.description, limit: shared.limit) }
        hasher.update(chunk)
        sha256?.update(bufferPointer: chunk)
        if pending.count + chunk.count > Self.bufferSize { try flush() }
        if chunk.count >= Self.bufferSize {
            try writeAll(chunk)
        } else {
            pending.append(contentsOf: chunk)
        }
        bytesWritten += Int64(chunk.count)
        onProgress(Int64(chunk.count))
    }

    private static let bufferSize = 1 << 20
    private var pending: [UInt8] = []

    private func flush() throws {
        guard !pending.isEmpty else { return }
        try pending.withUnsafeBytes { try writeAll($0) }
        pending.removeAll(keepingCapacity: true)
    }

    private func writeAll(_ bytes: UnsafeRawBufferPointer) throws {
        guard let base = bytes.baseAddress else { return }
        var offset = 0
        while offset < bytes.count {
            let written = systemWrite(descriptor, base + offset, bytes.count - offset)
            if written < 0 {
                if errno == EINTR { continue }
                throw ArtifactError.configuration("cannot write to the cache: \(String(cString: strerror(errno)))")
            }
            offset += written
        }
    }

    /// Flushes, closes and returns the md5 of what was written (by the object's scheme).
    func finish() throws -> String {
        try flush()
        defer {
            close(descriptor)
            descriptor = -1
        }
        guard fsync(descriptor) == 0 else { throw ArtifactError.configuration("cannot flush the cache: \(String(cString: strerror(errno)))") }
        sha256Digest = sha256.map { DVCHash.hexString($0.finalize()) }
        return hasher.finalize()
    }

    /// Makes the verified file read-only (for its owner only) and moves it to `destination` atomically.
    func commit(to destination: String) throws {
        chmod(path, 0o400)
        guard rename(path, destination) == 0 else {
            throw ArtifactError.configuration("cannot move an object into the cache: \(String(cString: strerror(errno)))")
        }
    }

    func discard() {
        unlink(path)
        shared?.giveBack(bytesWritten)
    }
}

/// Bytes a group of downloads may write together: the files of a directory, bounded by the
/// directory's recorded size. Each write takes its share; a transfer that fails gives its bytes
/// back (a retry may take them again).
public final class ByteBudget: Sendable {
    public let limit: Int64
    private let used = Atomic<Int64>(0)

    public init(limit: Int64) { self.limit = limit }

    /// Takes `count` bytes if they fit.
    func take(_ count: Int64) -> Bool {
        if used.wrappingAdd(count, ordering: .relaxed).newValue <= limit { return true }
        used.wrappingSubtract(count, ordering: .relaxed)
        return false
    }

    func giveBack(_ count: Int64) { used.wrappingSubtract(count, ordering: .relaxed) }
}
