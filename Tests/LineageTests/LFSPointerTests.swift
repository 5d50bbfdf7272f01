import Foundation
import Testing

@testable import Lineage

struct LFSPointerTests {
    let oid = "4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393"

    @Test func readsThePointerGitLFSWrites() throws {
        let text = "version https://git-lfs.github.com/spec/v1\noid sha256:\(oid)\nsize 12345\n"
        let pointer = try #require(LFSPointer(Data(text.utf8)))
        #expect(pointer.oid == oid && pointer.size == 12345)
        // Extension keys sort before oid, as git-lfs writes them.
        let extended = "version https://git-lfs.github.com/spec/v1\next-0-foo sha256:\(oid)\noid sha256:\(oid)\nsize 0\n"
        #expect(LFSPointer(Data(extended.utf8))?.size == 0)
    }

    @Test(arguments: [
        "version https://git-lfs.github.com/spec/v1\noid sha256:OID\nsize 1",  // no final newline
        "oid sha256:OID\nversion https://git-lfs.github.com/spec/v1\nsize 1\n",  // version not first
        "version https://git-lfs.github.com/spec/v1\nsize 1\noid sha256:OID\n",  // keys out of order
        "version https://example.com/spec/v9\noid sha256:OID\nsize 1\n",  // unknown version
        "version https://git-lfs.github.com/spec/v1\noid sha1:OID\nsize 1\n",  // another hash
        "version https://git-lfs.github.com/spec/v1\noid sha256:../../etc/passwd\nsize 1\n",  // not a digest
        "version https://git-lfs.github.com/spec/v1\noid sha256:OID\nsize -1\n",  // negative size
        "version https://git-lfs.github.com/spec/v1\noid sha256:OID\nsize 99999999999999999999\n",  // overflows Int64
        "version https://git-lfs.github.com/spec/v1\noid sha256:OID\noid sha256:OID\nsize 1\n",  // a key twice
        "GGUF\u{3}\u{0}\u{0}\u{0}",  // the file itself
    ])
    func otherFilesAreNotPointers(text: String) {
        #expect(LFSPointer(Data(text.replacingOccurrences(of: "OID", with: oid).utf8)) == nil)
    }

    @Test func aPointerIsSmallerThan1024Bytes() {
        let padded = "version https://git-lfs.github.com/spec/v1\next-0-x " + String(repeating: "a", count: 1000) + "\noid sha256:\(oid)\nsize 1\n"
        #expect(LFSPointer(Data(padded.utf8)) == nil)
    }

    @Test func theEndpointOfALFSConfig() {
        let config = "# comment\n[core]\n\turl = https://not-this\n[lfs]\n\turl = \"https://lfs.example.com/org/repo.git/info/lfs\"\n"
        #expect(LFSPointer.endpoint(inConfig: Data(config.utf8)) == "https://lfs.example.com/org/repo.git/info/lfs")
        #expect(LFSPointer.endpoint(inConfig: Data("[remote \"origin\"]\n\turl = https://x\n".utf8)) == nil)
        #expect(LFSPointer.endpoint(inConfig: Data("[lfs\nurl = https://x\n".utf8)) == nil)
    }
}
