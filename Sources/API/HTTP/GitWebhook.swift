import Crypto
import Foundation
import HTTPTypes
import Trust

/// Checks that a `POST /hooks/git` comes from the Git host that knows the shared secret:
/// GitHub's `X-Hub-Signature-256: sha256=<HMAC-SHA256 of the body>` or GitLab's
/// `X-Gitlab-Token: <secret>`. Comparisons take the same time whatever the input.
struct GitWebhook: Sendable {
    let secret: String

    static let githubSignature = HTTPField.Name("X-Hub-Signature-256")!
    static let gitlabToken = HTTPField.Name("X-Gitlab-Token")!

    /// Whether the request carries a valid signature or token for `body`.
    func verify(_ headers: HTTPFields, body: Data) -> Bool {
        if let signature = headers[Self.githubSignature] {
            guard signature.hasPrefix("sha256="), let digest = Data(hex: String(signature.dropFirst("sha256=".count))) else { return false }
            return HMAC<SHA256>.isValidAuthenticationCode(digest, authenticating: body, using: SymmetricKey(data: Data(secret.utf8)))
        }
        if let token = headers[Self.gitlabToken] {
            return Self.equalInConstantTime(Array(token.utf8), Array(secret.utf8))
        }
        return false
    }

    private static func equalInConstantTime(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        var difference = UInt8(a.count == b.count ? 0 : 1)
        for index in 0..<max(a.count, b.count) {
            let x = index < a.count ? a[index] : 0
            let y = index < b.count ? b[index] : 0
            difference |= x ^ y
        }
        return difference == 0
    }
}
