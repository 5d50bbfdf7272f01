import Testing

@testable import Serving

/// Which `Host` names reach a server without keys (DNS rebinding), and which listen addresses
/// count as loopback.
@Suite struct OriginPolicyTests {
    let policy = OriginPolicy(allowed: ["http://app.example:3000"])

    @Test func loopbackNamesPass() {
        for host in ["127.0.0.1:8080", "127.0.0.1", "127.1.2.3:80", "localhost:8080", "LOCALHOST", "[::1]:8080", "[::1]", "[0:0:0:0:0:0:0:1]:9"] {
            #expect(policy.allowsOpenAccess(host: host), "\(host)")
        }
        #expect(policy.allowsOpenAccess(host: "app.example:3000") && policy.allowsOpenAccess(host: "app.example"))
    }

    @Test func namesThatOnlyLookLikeLoopbackAreRefused() {
        let hostile = [
            "127.evil.example", "127.evil.example:8080", "127.0.0.1.evil.example", "localhost.evil.example:8080", "[::1].evil",
            "[::1].evil:8080", "0x7f.1", "0x7f.0.0.1", "2130706433", "017700000001", "127.1", "127.0.0.01", "127.000.0.1", "127.0.0.1.",
            "localhost.", "localhost.:8080", "LOCALHOST.EVIL.EXAMPLE", "127.EVIL.EXAMPLE:8080", "evil.example", "127.0.0.256",
            "127.0.0.1:80:80", "127.0.0.1:http", "::1", "[::2]", "[::ffff:127.0.0.1]", "app.example.evil", " 127.0.0.1", "127.0.0.1 ",
        ]
        for host in hostile { #expect(!policy.allowsOpenAccess(host: host), "\(host)") }
    }

    @Test func listenAddressesAreLoopbackOnlyWhenLiterallySo() {
        for host in ["127.0.0.1", "127.0.0.2", "localhost", "::1", "[::1]"] { #expect(OriginPolicy.isLoopback(host), "\(host)") }
        for host in ["127.evil.example", "0.0.0.0", "::", "2130706433", "localhost.", "10.0.0.1", "127.0.0.1.nip.io"] {
            #expect(!OriginPolicy.isLoopback(host), "\(host)")
        }
    }
}
