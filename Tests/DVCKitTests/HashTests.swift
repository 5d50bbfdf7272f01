import DVCKit
import Foundation
import Testing

/// Vectors from shared/dvc-vectors.md, checked against DVC 3.
struct HashTests {
    @Test(arguments: [("foo", "acbd18db4cc2f85cedef654fccc4a4d8"), ("bar", "37b51d194a7513e45b56f6524f2d51f2")])
    func fileMD5(content: String, expected: String) {
        #expect(DVCHash.md5(Data(content.utf8)) == expected)
    }

    @Test func legacyDos2UnixMD5() {
        #expect(DVCHash.legacyMD5(Data("a\r\nb\r\nc".utf8)) == "c32b2057b9bd62caa835386346177935")
        #expect(DVCHash.legacyMD5(Data("a\nb\nc".utf8)) == "c32b2057b9bd62caa835386346177935")
        // Binary content (a NUL byte) is hashed as it is.
        let binary = Data([0, 13, 10, 1])
        #expect(DVCHash.legacyMD5(binary) == DVCHash.md5(binary))
    }

    @Test func directoryHashes() {
        let foo = DVCHash.DirectoryEntry(relpath: "foo", md5: "acbd18db4cc2f85cedef654fccc4a4d8")
        let bar = DVCHash.DirectoryEntry(relpath: "bar", md5: "37b51d194a7513e45b56f6524f2d51f2")
        #expect(DVCHash.directoryHash([foo, bar]) == "5ea40360f5b4ec688df672a4db9c17d1.dir")
        #expect(DVCHash.directoryHash([]) == "d751713988987e9331980363e24189ce.dir")
        let one = DVCHash.DirectoryEntry(relpath: "one", md5: DVCHash.md5(Data("one".utf8)))
        let two = DVCHash.DirectoryEntry(relpath: "two", md5: DVCHash.md5(Data("two".utf8)))
        #expect(DVCHash.directoryHash([two, one]) == "6b18131dc289fd37006705affe961ef8.dir")
        let nested = DVCHash.DirectoryEntry(relpath: "nested/file", md5: DVCHash.md5(Data("file".utf8)))
        #expect(DVCHash.directoryHash([foo, bar, nested]) == "5fc28ea78987408341668eba6525ebd1.dir")
    }
}

struct LegacyMD5StreamTests {
    /// What DVC 2 did, written plainly: decide text once from the first 512 bytes, then replace
    /// CRLF within each 1 MiB block.
    static func dvc2Reference(_ data: Data) -> String {
        guard !DVCHash.isBinary(data) else { return DVCHash.md5(data) }
        var converted = Data()
        var offset = 0
        while offset < data.count {
            let block = data[offset..<min(offset + (1 << 20), data.count)]
            converted.append(Data(String(decoding: block, as: UTF8.self).replacingOccurrences(of: "\r\n", with: "\n").utf8))
            offset += 1 << 20
        }
        return DVCHash.md5(converted)
    }

    /// Every way of cutting the input gives the reference hash, including a CR and its LF in
    /// different chunks, and a CRLF astride a 1 MiB block boundary (kept, as DVC 2 kept it).
    @Test(arguments: [
        "a\nb\nc", "a\r\nb\r\nc", "ends with CR\r", "\r\n\r\n", "lone\rcr", "",
        String(repeating: "x", count: 700) + "\r\n" + String(repeating: "y", count: 300),
        String(repeating: "z", count: (1 << 20) - 1) + "\r\n" + String(repeating: "w\r\n", count: 10),
    ])
    func streamingEqualsReference(text: String) {
        let data = Data(text.utf8)
        let expected = Self.dvc2Reference(data)
        for chunk in [1, 3, 511, 512, 513, 4096, 1 << 20, 3 << 20] where chunk >= 512 || data.count < 5000 {
            var stream = LegacyMD5Stream()
            var offset = 0
            while offset < data.count {
                stream.update(data[offset..<min(offset + chunk, data.count)])
                offset += chunk
            }
            #expect(stream.finalize() == expected, "chunk size \(chunk)")
        }
        #expect(DVCHash.legacyMD5(data) == expected)
    }

    @Test func binaryFilesArePlainMD5() {
        let binary = Data([0, 13, 10, 1, 2])
        var stream = LegacyMD5Stream()
        stream.update(binary)
        #expect(stream.finalize() == DVCHash.md5(binary))
    }
}
