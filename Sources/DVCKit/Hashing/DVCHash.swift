import Crypto
public import Foundation

/// DVC's content hashes.
public enum DVCHash {
    /// Plain md5 of the bytes, as DVC 3 (`hash: md5`) records it.
    public static func md5(_ data: Data) -> String {
        hexString(Insecure.MD5.hash(data: data))
    }

    /// The legacy (DVC 2) hash: md5 after dos2unix for text files, plain md5 for binary ones
    /// (see `LegacyMD5Stream` for the exact rules).
    public static func legacyMD5(_ data: Data) -> String {
        var stream = LegacyMD5Stream()
        stream.update(data)
        return stream.finalize()
    }

    /// DVC's text/binary test (dvc-data's `istextblock`): binary if the first 512 bytes hold a
    /// NUL or more than 30% bytes outside printable ASCII and `\n \r \t \f \b`.
    public static func isBinary(_ data: Data) -> Bool {
        let head = data.prefix(512)
        if head.isEmpty { return false }
        if head.contains(0) { return true }
        let text: Set<UInt8> = Set([8, 9, 10, 12, 13] + Array(0x20...0x7e))
        let nontext = head.filter { !text.contains($0) }.count
        return Double(nontext) / Double(head.count) > 0.3
    }

    /// One file of a directory out.
    public struct DirectoryEntry: Sendable, Hashable, Codable {
        public let relpath: String
        public let md5: String
        public init(relpath: String, md5: String) {
            self.relpath = relpath
            self.md5 = md5
        }
    }

    /// The manifest bytes DVC stores for a directory: JSON list sorted by relpath, written like
    /// Python's `json.dumps(sort_keys=True)`.
    public static func directoryManifest(_ entries: [DirectoryEntry]) -> Data {
        let sorted = entries.sorted {
            Array($0.relpath.unicodeScalars.map(\.value)).lexicographicallyPrecedes($1.relpath.unicodeScalars.map(\.value))
        }
        let items = sorted.map { "{\"md5\": \(jsonString($0.md5)), \"relpath\": \(jsonString($0.relpath))}" }
        return Data(("[" + items.joined(separator: ", ") + "]").utf8)
    }

    /// The `.dir` hash of a directory with these files.
    public static func directoryHash(_ entries: [DirectoryEntry]) -> String {
        md5(directoryManifest(entries)) + ".dir"
    }

    /// A JSON string as Python's json module writes it (`ensure_ascii=True`).
    static func jsonString(_ text: String) -> String {
        var out = "\""
        for unit in text.utf16 {
            switch unit {
            case 0x22: out += "\\\""
            case 0x5c: out += "\\\\"
            case 0x0a: out += "\\n"
            case 0x0d: out += "\\r"
            case 0x09: out += "\\t"
            case 0x08: out += "\\b"
            case 0x0c: out += "\\f"
            case 0x20..<0x7f: out.unicodeScalars.append(Unicode.Scalar(UInt8(truncatingIfNeeded: unit)))
            default: out += String(format: "\\u%04x", unit)
            }
        }
        return out + "\""
    }

    /// Lower-case hex of bytes (digests, signatures).
    public static func hexString(_ digest: some Sequence<UInt8>) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var bytes: [UInt8] = []
        for byte in digest {
            bytes.append(digits[Int(byte >> 4)])
            bytes.append(digits[Int(byte & 0xf)])
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}

/// Streaming md5 for large files: feed chunks, read the hex digest once.
public struct MD5Stream {
    private var hasher = Insecure.MD5()
    public init() {}
    public mutating func update(_ chunk: UnsafeRawBufferPointer) { hasher.update(bufferPointer: chunk) }
    public mutating func update(_ chunk: Data) { hasher.update(data: chunk) }
    public func finalize() -> String { DVCHash.hexString(hasher.finalize()) }
}

/// The legacy (DVC 2) md5, fed in chunks of any size.
///
/// DVC 2 decided text or binary once, from the first 512 bytes, and then replaced CRLF by LF in
/// each 1 MiB block it read (`LOCAL_CHUNK_SIZE`), so a CR ending one block and the LF starting
/// the next stay as they are. This reproduces that, since legacy hashes were written by DVC 2.
public struct LegacyMD5Stream {
    static let blockSize = 1 << 20
    private var hasher = Insecure.MD5()
    /// Bytes held back until the text/binary decision (at most 512).
    private var head: [UInt8] = []
    private var isText: Bool?
    /// Bytes consumed in the current 1 MiB block.
    private var blockOffset = 0
    /// A CR seen at the end of the previous chunk (inside a block), not yet hashed.
    private var pendingCR = false

    public init() {}

    public mutating func update(_ chunk: UnsafeRawBufferPointer) {
        guard isText != nil else {
            let take = min(512 - head.count, chunk.count)
            head += chunk.prefix(take)
            guard head.count == 512 else { return }
            isText = !DVCHash.isBinary(Data(head))
            let held = head
            head = []
            held.withUnsafeBytes { feed($0) }
            update(UnsafeRawBufferPointer(rebasing: chunk.dropFirst(take)))
            return
        }
        feed(chunk)
    }

    public mutating func update(_ chunk: Data) { chunk.withUnsafeBytes { update($0) } }

    public mutating func finalize() -> String {
        if isText == nil {
            isText = !DVCHash.isBinary(Data(head))
            let held = head
            head = []
            held.withUnsafeBytes { feed($0) }
        }
        if pendingCR { hasher.update(data: [13]) }
        return DVCHash.hexString(hasher.finalize())
    }

    /// Splits `chunk` at 1 MiB block boundaries and converts each piece.
    private mutating func feed(_ chunk: UnsafeRawBufferPointer) {
        guard isText == true else {
            hasher.update(bufferPointer: chunk)
            return
        }
        var rest = chunk[...]
        while !rest.isEmpty {
            let take = min(Self.blockSize - blockOffset, rest.count)
            convert(UnsafeRawBufferPointer(rebasing: rest.prefix(take)))
            rest = rest.dropFirst(take)
            blockOffset += take
            if blockOffset == Self.blockSize {
                // DVC 2 converted block by block: a CR ending a block is kept.
                if pendingCR { hasher.update(data: [13]) }
                pendingCR = false
                blockOffset = 0
            }
        }
    }

    /// Hashes `piece` (within one block), dropping each CR directly followed by an LF.
    private mutating func convert(_ piece: UnsafeRawBufferPointer) {
        guard !piece.isEmpty else { return }
        if pendingCR {
            if piece[0] != 10 { hasher.update(data: [13]) }
            pendingCR = false
        }
        var start = 0
        var index = 0
        while index < piece.count {
            if piece[index] == 13 {
                if index + 1 == piece.count {
                    hasher.update(bufferPointer: UnsafeRawBufferPointer(rebasing: piece[start..<index]))
                    pendingCR = true
                    return
                }
                if piece[index + 1] == 10 {
                    hasher.update(bufferPointer: UnsafeRawBufferPointer(rebasing: piece[start..<index]))
                    start = index + 1
                }
            }
            index += 1
        }
        hasher.update(bufferPointer: UnsafeRawBufferPointer(rebasing: piece[start...]))
    }
}
