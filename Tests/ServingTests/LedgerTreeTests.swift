import Crypto
import Foundation
import Ledger
import Logging
import Testing
import Trust

@testable import Serving

/// The ledger's tree over a real SQLite ledger, with chunks of 4 leaves so that whole chunks,
/// the tail and chunks read back from the ledger all take part: every inclusion and consistency
/// proof equals the one computed from all the leaves, and verifies.
struct LedgerTreeTests {
    @Test func proofsFromChunkRootsEqualProofsFromEveryLeaf() async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("tree-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: folder) }
        let ledger = try SQLiteLedger(path: folder.appendingPathComponent("ledger.sqlite").path)
        let key = ReceiptKey(Curve25519.Signing.PrivateKey())
        let tree = LedgerTree(ledger: ledger, key: key, chunk: 4, logger: Logger(label: "test"))
        var leaves: [Data] = []
        var heads: [Int] = []
        for n in 1...23 {
            let leaf = MerkleTree.leafHash(Data("statement \(n)".utf8))
            leaves.append(leaf)
            let record = InferenceRecord(
                id: String(format: "01K%023d", n), createdAt: Date(), caller: nil, status: .completed, error: nil, model: "m",
                revision: "m@0", commit: "0", artifactMD5: "0", lineage: "{}", engine: "{}", sampling: "{}", seed: 0, inputKind: .prompt,
                input: "", output: "", finishReason: "length", promptTokens: 0, completionTokens: 0, completionTokenIDs: "[]",
                timeToFirstTokenMs: 0, totalMs: 0)
            _ = try await ledger.record(record) { _ in LedgerSeal(receipt: nil, leaf: leaf) }
            guard n % 3 == 0 || n == 23 else { continue }
            let head = try #require(try await tree.signHead())
            #expect(head.size == Int64(n) && head.root == MerkleTree.root(leaves[...]))
            #expect(try TreeHead(envelope: head.envelope, trusting: [key.publicKey]).rootHash == head.root)
            heads.append(n)
            for position in 1...n {
                let proof = try #require(try await tree.inclusionProof(position: Int64(position)))
                #expect(proof.leafHash == leaves[position - 1])
                #expect(proof.hashes == MerkleTree.inclusionProof(position - 1, leaves[...]), "position \(position) of \(n)")
                #expect(MerkleTree.verifyInclusion(leaf: leaves[position - 1], index: position - 1, size: n, proof: proof.hashes, root: head.root))
            }
            for older in heads {
                let proof = try #require(try await tree.consistencyProof(from: Int64(older), to: Int64(n)))
                #expect(proof.hashes == MerkleTree.consistencyProof(older, leaves[...]), "\(older) → \(n)")
            }
        }
        #expect(try await tree.inclusionProof(position: 24) == nil)
        #expect(try await tree.consistencyProof(from: 4, to: 23) == nil)  // 4 is not a signed head
        // A second tree over the same ledger (another gateway, or a restart) reads the leaves back.
        let again = LedgerTree(ledger: ledger, key: key, chunk: 4, logger: Logger(label: "test"))
        #expect(try await again.inclusionProof(position: 5)?.hashes == MerkleTree.inclusionProof(4, leaves[...]))
    }
}
