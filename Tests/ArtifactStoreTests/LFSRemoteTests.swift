import Foundation
import Testing

@testable import ArtifactStore

struct LFSRemoteTests {
    let oid = String(repeating: "ab", count: 32)

    @Test func credentialsGoOnlyToTheEndpointsTheyName() throws {
        let credentials = try LFSCredentials(
            text: "# ours\nhttps://git.example.com/org _jwt:one\nhttps://git.example.com/org/special.git two:2\n\nhttp://127.0.0.1:8080 local:3\n")
        #expect(credentials.userinfo(for: "https://git.example.com/org/repo.git/info/lfs") == "_jwt:one")
        #expect(credentials.userinfo(for: "https://git.example.com/org/special.git/info/lfs") == "two:2")
        #expect(credentials.userinfo(for: "https://git.example.com/organisation/repo.git/info/lfs") == nil)
        #expect(credentials.userinfo(for: "https://evil.example.com/org/repo.git/info/lfs") == nil)
        #expect(credentials.userinfo(for: "http://127.0.0.1:8080/a/b.git/info/lfs") == "local:3")
    }

    @Test(arguments: [
        "https://git.example.com", "ftp://x.example.com user:pw", "https://user:pw@git.example.com u:p", "https://x.example.com nocolon",
    ])
    func malformedCredentialLinesAreRefusedByNumberWithoutTheirContent(line: String) {
        do {
            _ = try LFSCredentials(text: "https://ok.example.com u:p\n" + line + "\n")
            Issue.record("accepted \(line)")
        } catch {
            #expect("\(error)".contains("line 2") && !"\(error)".contains("pw"))
        }
    }

    @Test func aRepositoryChosenEndpointNeedsListingAndNeverALocalFolder() throws {
        let factory = RemoteFactory(dvcFolder: nil, environment: [:], home: "/nonexistent", trustedEndpoints: ["https://lfs.example.com"])
        let none = LFSCredentials.none
        #expect(throws: ArtifactError.self) {
            _ = try factory.lfsRemote(endpoint: "https://evil.example.com/x", fromRepository: true, oid: oid, size: 1, credentials: none)
        }
        #expect(throws: ArtifactError.self) {
            _ = try factory.lfsRemote(endpoint: "/srv/other/.git/lfs/objects", fromRepository: true, oid: oid, size: 1, credentials: none)
        }
        let listed = try factory.lfsRemote(endpoint: "https://lfs.example.com/x", fromRepository: true, oid: oid, size: 1, credentials: none)
        #expect(listed.key == oid)
        let local = try factory.lfsRemote(endpoint: "/srv/repo/.git/lfs/objects", fromRepository: false, oid: oid, size: 1, credentials: none)
        #expect(local.key == "ab/ab/" + oid)
    }

    @Test func credentialsNeverGoOverPlainHTTPToAnotherHost() throws {
        let factory = RemoteFactory(dvcFolder: nil, environment: [:], home: "/nonexistent")
        #expect(throws: ArtifactError.self) {
            _ = try factory.lfsRemote(
                endpoint: "http://user:pw@git.example.com/r.git/info/lfs", fromRepository: false, oid: oid, size: 1, credentials: .none)
        }
        _ = try factory.lfsRemote(endpoint: "http://user:pw@127.0.0.1:9/r.git/info/lfs", fromRepository: false, oid: oid, size: 1, credentials: .none)
    }

    @Test func onlyAuthorizingHeadersOfADownloadActionAreSent() {
        #expect(LFSRemote.isActionHeader("Authorization") && LFSRemote.isActionHeader("x-amz-security-token"))
        for name in ["Host", "Range", "Cookie", "Transfer-Encoding", "X-Forwarded-For", "Content-Length"] { #expect(!LFSRemote.isActionHeader(name)) }
    }
}
