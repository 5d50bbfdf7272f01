import Foundation
import Testing

@testable import Inference

/// The GGUF header check: a well-formed file passes; each lie a header can tell is refused with
/// a reason, before llama.cpp reads the file.
struct GGUFHeaderTests {
    /// A GGUF v3 file: one uint32 key (`general.alignment` unless `key` says otherwise), one F32
    /// tensor of `extent` elements at offset 0, data padded to the alignment.
    static func file(
        version: UInt32 = 3, tensors: UInt64 = 1, keys: UInt64 = 1, key: String = "general.alignment", keyType: UInt32 = 4,
        dimensions: UInt32 = 1, extent: UInt64 = 8, tensorType: UInt32 = 0, offset: UInt64 = 0, dataBytes: Int? = nil
    ) -> Data {
        var data = Data("GGUF".utf8)
        func u32(_ value: UInt32) { withUnsafeBytes(of: value.littleEndian) { data.append(contentsOf: $0) } }
        func u64(_ value: UInt64) { withUnsafeBytes(of: value.littleEndian) { data.append(contentsOf: $0) } }
        func string(_ text: String) {
            u64(UInt64(text.utf8.count))
            data.append(contentsOf: Array(text.utf8))
        }
        u32(version)
        u64(tensors)
        u64(keys)
        string(key)
        u32(keyType)
        u32(32)
        string("weight")
        u32(dimensions)
        for _ in 0..<dimensions { u64(extent) }
        u32(tensorType)
        u64(offset)
        while data.count % 32 != 0 { data.append(0) }
        data.append(Data(count: dataBytes ?? Int(min(extent, 1024)) * 4))
        return data
    }

    @Test func aWellFormedFilePasses() throws {
        let header = try GGUFHeader(Self.file())
        #expect(header.version == 3 && header.tensorCount == 1 && header.keyCount == 1 && header.alignment == 32)
        #expect(header.dataOffset % 32 == 0)
        #expect(header.matrixTypes.isEmpty)
        // The same bytes as a matrix of F32, and a vector of I32: both fine.
        #expect(try GGUFHeader(Self.file(dimensions: 2, dataBytes: 1 << 17)).matrixTypes == [0])
        #expect(try GGUFHeader(Self.file(tensorType: 26)).matrixTypes.isEmpty)
    }

    @Test(arguments: [
        ("bad magic", Data("GGML".utf8) + Self.file().dropFirst(4)),
        ("version", Self.file(version: 9)),
        ("tensor count", Self.file(tensors: 1 << 40)),
        ("key count", Self.file(keys: UInt64.max)),
        ("more keys than written", Self.file(keys: 3)),
        ("unknown key type", Self.file(key: "x", keyType: 99)),
        ("alignment type", Self.file(keyType: 5)),
        ("dimensions", Self.file(dimensions: 5)),
        ("zero dimensions", Self.file(dimensions: 0)),
        ("extent", Self.file(extent: UInt64.max)),
        ("huge tensor", Self.file(extent: 1 << 62)),
        ("tensor type", Self.file(tensorType: 999)),
        ("removed type", Self.file(tensorType: 4)),
        ("a matrix of I32", Self.file(dimensions: 2, tensorType: 26, dataBytes: 1 << 17)),
        ("a matrix of Q8_K", Self.file(dimensions: 2, extent: 256, tensorType: 15, dataBytes: 1 << 17)),
        ("a matrix of Q8_1", Self.file(dimensions: 2, extent: 32, tensorType: 9, dataBytes: 1 << 17)),
        ("a matrix of F64", Self.file(dimensions: 2, tensorType: 28, dataBytes: 1 << 17)),
        ("offset past the end", Self.file(offset: 1 << 20)),
        ("unaligned offset", Self.file(offset: 3)),
        ("truncated data", Self.file(dataBytes: 10)),
        ("truncated header", Self.file().prefix(40)),
        ("empty", Data()),
    ])
    func liesAreRefused(name: String, data: Data) {
        #expect(throws: GGUFHeader.Invalid.self, "\(name)") { try GGUFHeader(data) }
    }

    @Test func hugeStringAndArrayLengthsAreRefused() {
        // key length 2^60
        var data = Self.file()
        data.replaceSubrange(24..<32, with: withUnsafeBytes(of: (UInt64(1) << 60).littleEndian) { Data($0) })
        #expect(throws: GGUFHeader.Invalid.self) { try GGUFHeader(data) }
        // A string-array value with 2^50 elements.
        var array = Data("GGUF".utf8)
        func append<T: FixedWidthInteger>(_ value: T) { withUnsafeBytes(of: value.littleEndian) { array.append(contentsOf: $0) } }
        append(UInt32(3))
        append(UInt64(0))
        append(UInt64(1))
        append(UInt64(1))
        array.append(UInt8(ascii: "k"))
        append(UInt32(9))
        append(UInt32(8))
        append(UInt64(1) << 50)
        #expect(throws: GGUFHeader.Invalid.self) { try GGUFHeader(array) }
    }
}
