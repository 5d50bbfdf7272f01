import Foundation
import Testing

@testable import Access

@Suite struct AccessTests {
    func temporaryFile() -> KeyFile {
        KeyFile(url: FileManager.default.temporaryDirectory.appendingPathComponent("keys-\(UUID().uuidString)/keys.json"))
    }

    func refusal(_ result: Result<Principal, AccessError>) -> AccessError? {
        if case .failure(let error) = result { error } else { nil }
    }

    @Test func keysHaveOneShapeAndParseBack() throws {
        let key = APIKey.generate()
        #expect(key.text.hasPrefix("pdg_"))
        #expect(APIKey(parsing: key.text) == key)
        #expect(APIKey(parsing: key.text.dropLast()) == nil)
        #expect(APIKey(parsing: key.text + "x") == nil)
        #expect(APIKey(parsing: key.text.replacingOccurrences(of: "pdg_", with: "pdx_")) == nil)
        #expect(APIKey(parsing: "pdg_" + String(repeating: "g", count: 12) + "_" + String(repeating: "a", count: 43)) == nil)
        #expect(APIKey.generate() != key)
    }

    @Test func rolesPermitTheirOperationsOnly() {
        #expect(Role.read.permits(.readLineage))
        #expect(!Role.read.permits(.generate) && !Role.read.permits(.readOwnInferences) && !Role.read.permits(.administer))
        #expect(Role.infer.permits(.generate) && Role.infer.permits(.readOwnInferences))
        #expect(!Role.infer.permits(.readAllInferences) && !Role.infer.permits(.replayAny) && !Role.infer.permits(.administer))
        #expect(Role.audit.permits(.readAllInferences) && Role.audit.permits(.replayAny))
        #expect(!Role.audit.permits(.generate) && !Role.audit.permits(.administer))
        #expect(Permission.allCases.allSatisfy { Role.admin.permits($0) })
        // Records belong to a key id; the name is a label that a later key may reuse.
        let infer = Principal(name: "alice", keyID: "k1", role: .infer, meter: nil)
        #expect(infer.mayRead(recordByKey: "k1") && !infer.mayRead(recordByKey: "k2") && !infer.mayRead(recordByKey: nil))
        #expect(infer.mayRead(recordByKey: "k1", replay: true))
        #expect(!Principal(name: "alice", keyID: "k2", role: .infer, meter: nil).mayRead(recordByKey: "k1"))
        #expect(Principal(name: "x", keyID: "k3", role: .audit, meter: nil).mayRead(recordByKey: "k1", replay: true))
        #expect(!Principal(name: "r", keyID: "k4", role: .read, meter: nil).mayRead(recordByKey: "k4"))
    }

    @Test func theKeysFileKeepsDigestsAndRevokes() throws {
        let file = temporaryFile()
        let (record, key) = try file.create(name: "ci-bot", role: .infer)
        let text = try String(contentsOf: file.url, encoding: .utf8)
        #expect(!text.contains(key.text))
        #expect(text.contains(record.sha256))
        #expect(throws: AccessFileError.self) { try file.create(name: "ci-bot", role: .read) }
        #expect(throws: AccessFileError.self) { try file.create(name: "bad name", role: .read) }
        let attributes = try FileManager.default.attributesOfItem(atPath: file.url.path)
        #expect((attributes[.posixPermissions] as? Int) == 0o600)
        let revoked = try file.revoke("ci-bot")
        #expect(revoked.revoked != nil)
        #expect(throws: AccessFileError.self) { try file.revoke("ci-bot") }
        _ = try file.create(name: "ci-bot", role: .read)
        #expect(try file.load().count == 2)
    }

    @Test func theAuthenticatorFollowsTheFile() throws {
        let file = temporaryFile()
        let authenticator = Authenticator(file: file, required: false)
        // No keys on a loopback server: open.
        #expect(!authenticator.isEnabled)
        #expect(try authenticator.current().authenticate(authorization: nil).get().name == nil)
        let (_, key) = try file.create(name: "alice", role: .audit)
        #expect(authenticator.isEnabled)
        #expect(
            refusal(authenticator.current().authenticate(authorization: nil))
                == (.unauthenticated("this server requires an API key (Authorization: Bearer <key>)")))
        #expect(refusal(authenticator.current().authenticate(authorization: "Bearer nonsense")) == (.unauthenticated("malformed API key")))
        #expect(
            refusal(authenticator.current().authenticate(authorization: "Basic abc"))
                == (.unauthenticated("the Authorization header must be 'Bearer <API key>'")))
        let principal = try authenticator.current().authenticate(authorization: "Bearer " + key.text).get()
        #expect(principal.name == "alice" && principal.role == .audit)
        // Same id, other secret.
        let forged = String(key.text.dropLast()) + (key.text.hasSuffix("A") ? "B" : "A")
        #expect(refusal(authenticator.current().authenticate(key: forged)) == (.unauthenticated("unknown API key")))
        _ = try file.revoke("alice")
        #expect(refusal(authenticator.current().authenticate(key: key.text)) == (.unauthenticated("revoked API key")))
        // Revoking every key does not open the server.
        #expect(authenticator.isEnabled)
        // A file that cannot be read refuses every key.
        try Data("{".utf8).write(to: file.url)
        #expect(authenticator.isEnabled)
        #expect(throws: AccessFileError.self) { try authenticator.check() }
        #expect(Authenticator(file: temporaryFile(), required: true).isEnabled)
    }

    @Test func requestQuotaRefillsAtItsRate() throws {
        let meter = KeyMeter(name: "k", limits: QuotaLimits(requestsPerMinute: 2), now: 0)
        try meter.admitRequest(now: 0)
        try meter.admitRequest(now: 1)
        do {
            try meter.admitRequest(now: 2)
            Issue.record("a third request passed")
        } catch {
            #expect(error == .rateLimited("over this key's requests per minute; retry in 30 s", retryAfter: 30))
        }
        // 30 s later one request's worth is back.
        try meter.admitRequest(now: 30_000_000_010)
        #expect(meter.counts.requests == 4 && meter.counts.rateLimited == 1)
    }

    @Test func generationQuotasCountRunningAndTokens() throws {
        let meter = KeyMeter(name: "k", limits: QuotaLimits(tokensPerMinute: 60, concurrentGenerations: 1), now: 0)
        let lease = try meter.beginGeneration(now: 0)
        #expect(throws: AccessError.self) { try meter.beginGeneration(now: 0) }
        lease.end(tokens: 90)
        lease.end(tokens: 90)  // once only
        #expect(meter.counts.generatedTokens == 90 && meter.counts.runningGenerations == 0)
        // 30 tokens in debt: 31 s until the bucket is above zero (1 token per second).
        do {
            _ = try meter.beginGeneration(now: 0)
            Issue.record("a generation started in debt")
        } catch {
            #expect(error == .rateLimited("over this key's generated tokens per minute; retry in 31 s", retryAfter: 31))
        }
        let later = try meter.beginGeneration(now: 31_000_000_000)
        later.end(tokens: 1)
    }
}
