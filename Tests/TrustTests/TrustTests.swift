import Crypto
import Foundation
import Testing

@testable import Trust

struct DSSETests {
    @Test func preAuthenticationEncodingIsTheSpecs() {
        // The example of the DSSE specification (protocol.md).
        let encoded = DSSEEnvelope.preAuthenticationEncoding(type: "http://example.com/HelloWorld", body: Data("hello world".utf8))
        #expect(String(decoding: encoded, as: UTF8.self) == "DSSEv1 29 http://example.com/HelloWorld 11 hello world")
    }

    @Test func anEnvelopeVerifiesOnlyWithItsKeyAndItsPayload() throws {
        let key = ReceiptKey(Curve25519.Signing.PrivateKey())
        let envelope = try DSSEEnvelope.sign(Data(#"{"a":1}"#.utf8), with: key)
        let read = try DSSEEnvelope(json: Data(envelope.json.utf8))
        #expect(read == envelope)
        #expect(try read.verify(with: [key.publicKey]) == [key.keyID])
        #expect(throws: TrustError.self) { try read.verify(with: [Curve25519.Signing.PrivateKey().publicKey]) }
        let altered = DSSEEnvelope(payloadType: read.payloadType, payload: Data(#"{"a":2}"#.utf8), signatures: read.signatures)
        #expect(throws: TrustError.self) { try altered.verify(with: [key.publicKey]) }
        let retyped = DSSEEnvelope(payloadType: "text/plain", payload: read.payload, signatures: read.signatures)
        #expect(throws: TrustError.self) { try retyped.verify(with: [key.publicKey]) }
        #expect(throws: TrustError.self) { try DSSEEnvelope(json: Data("{}".utf8)) }
        // Written by hand: still JSON, whatever the key id and type hold.
        let odd = DSSEEnvelope(payloadType: "a/\"b\"\n\u{1}", payload: Data([0, 1]), signatures: [.init(keyID: "k\\\"\t", signature: Data([2]))])
        #expect(try DSSEEnvelope(json: Data(odd.json.utf8)) == odd)
    }

    @Test func theKeyFileIsMadeOncePrivateAndRefusedWhenWrong() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("trust-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: folder) }
        let path = folder.appendingPathComponent("receipt-key").path
        let made = try ReceiptKey.openOrCreate(at: path)
        let again = try ReceiptKey.openOrCreate(at: path)
        #expect(made.keyID == again.keyID)
        #expect(made.keyID == SHA256.hash(data: made.publicKey.rawRepresentation).map { String(format: "%02x", $0) }.joined())
        let mode = (try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? NSNumber)?.intValue
        #expect(mode == 0o600)
        try Data("short".utf8).write(to: URL(fileURLWithPath: path))
        #expect(throws: TrustError.self) { try ReceiptKey.openOrCreate(at: path) }
    }
}

struct MerkleTreeTests {
    static func leaves(_ n: Int) -> [Data] { (0..<n).map { MerkleTree.leafHash(Data("leaf \($0)".utf8)) } }

    /// RFC 9162's definition, written out without the split helper: the reference the others must meet.
    static func reference(_ leaves: ArraySlice<Data>) -> Data {
        if leaves.isEmpty { return Data(SHA256.hash(data: Data())) }
        if leaves.count == 1 { return leaves.first! }
        var k = 1
        while k * 2 < leaves.count { k *= 2 }
        var data = Data([1])
        data.append(reference(leaves.prefix(k)))
        data.append(reference(leaves.dropFirst(k)))
        return Data(SHA256.hash(data: data))
    }

    @Test func theFrontierAndTheRootAgreeWithTheDefinition() {
        let all = Self.leaves(70)
        var frontier = MerkleFrontier()
        #expect(frontier.root == Self.reference([]))
        for n in 1...70 {
            frontier.append(all[n - 1])
            let expected = Self.reference(all[0..<n])
            #expect(frontier.root == expected && MerkleTree.root(all[0..<n]) == expected, "n = \(n)")
        }
    }

    @Test func everyInclusionAndConsistencyProofVerifiesAndNoAlteredOneDoes() {
        let all = Self.leaves(37)
        for size in 1...37 {
            let tree = all[0..<size]
            let root = MerkleTree.root(tree)
            for index in 0..<size {
                let proof = MerkleTree.inclusionProof(index, tree)
                #expect(MerkleTree.verifyInclusion(leaf: all[index], index: index, size: size, proof: proof, root: root))
                #expect(!MerkleTree.verifyInclusion(leaf: all[(index + 1) % 37], index: index, size: size, proof: proof, root: root))
                if !proof.isEmpty {
                    var bent = proof
                    bent[0] = MerkleTree.leafHash(Data("other".utf8))
                    #expect(!MerkleTree.verifyInclusion(leaf: all[index], index: index, size: size, proof: bent, root: root))
                }
            }
            for older in 1...size {
                let proof = MerkleTree.consistencyProof(older, tree)
                let oldRoot = MerkleTree.root(all[0..<older])
                #expect(MerkleTree.verifyConsistency(size1: older, size2: size, proof: proof, root1: oldRoot, root2: root), "\(older) → \(size)")
                if older < size {
                    // A forked older tree (its last leaf replaced) is not a prefix.
                    var forked = Array(all[0..<older])
                    forked[older - 1] = MerkleTree.leafHash(Data("fork".utf8))
                    #expect(!MerkleTree.verifyConsistency(size1: older, size2: size, proof: proof, root1: MerkleTree.root(forked[...]), root2: root))
                }
            }
        }
    }

    @Test func aTreeHeadVerifiesOnlyWithItsKey() throws {
        let key = ReceiptKey(Curve25519.Signing.PrivateKey())
        let head = try TreeHead.sign(size: 5, root: MerkleTree.root(Self.leaves(5)[...]), with: key)
        let read = try TreeHead(envelope: head.envelope, trusting: [key.publicKey])
        #expect(read.size == 5 && read.rootHash == head.rootHash && read.time == head.time)
        #expect(throws: TrustError.self) { try TreeHead(envelope: head.envelope, trusting: [Curve25519.Signing.PrivateKey().publicKey]) }
        #expect(Data(hex: head.rootHex) == head.rootHash && Data(hex: "0g") == nil && Data(hex: "abc") == nil)
    }
}
