import Foundation
import Testing

@testable import Serving

@Suite struct TrustedSignersTests {
    @Test(arguments: [
        ("tiny-llama", "tiny-llama", true), ("tiny-llama", "tiny", false), ("tiny-llama", "*", true), ("tiny-llama", "tiny-*", true),
        ("tiny-llama", "*-llama", true), ("tiny-llama", "t*l*a", true), ("tiny-llama", "*x*", false), ("sub:model", "sub:*", true),
        ("a", "a*a", false), ("aba", "a*a", true), ("", "*", true), ("", "", true), ("ab", "a**b", true),
    ])
    func patternsMatchWholeNamesWithWildcards(name: String, pattern: String, matches: Bool) {
        #expect(TrustedSigners.matches(name, pattern) == matches)
    }

    @Test func entriesAreReadOnceAndBadOnesNamed() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("signers-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let empty = folder.appendingPathComponent("empty.pem").path
        try "".write(toFile: empty, atomically: true, encoding: .utf8)
        #expect(try TrustedSigners(["tiny-*=\(empty)", empty]).entries.map(\.pattern) == ["tiny-*", "*"])
        #expect(throws: ServingError.self) { try TrustedSigners(["=\(empty)"]) }
        #expect(throws: ServingError.self) { try TrustedSigners([folder.appendingPathComponent("missing.pem").path]) }
    }
}
