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
