import Crypto
import Foundation
import HTTPTypes

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
            guard signature.hasPrefix("sha256="), let digest = Self.bytes(hex: String(signature.dropFirst("sha256=".count))) else { return false }
            return HMAC<SHA256>.isValidAuthenticationCode(digest, authenticating: body, using: SymmetricKey(data: Data(secret.utf8)))
        }
        if let token = headers[Self.gitlabToken] {
            return Self.equalInConstantTime(Array(token.utf8), Array(secret.utf8))
        }
        return false
    }

    /// Lower- or upper-case hex as bytes; nil when it is not hex.
    static func bytes(hex: String) -> [UInt8]? {
        let digits = Array(hex.utf8)
        guard digits.count % 2 == 0 else { return nil }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(digits.count / 2)
        var index = 0
        while index + 1 < digits.count {
            guard let high = nibble(digits[index]), let low = nibble(digits[index + 1]) else { return nil }
            bytes.append(high << 4 | low)
            index += 2
        }
        return bytes
    }

    private static func nibble(_ digit: UInt8) -> UInt8? {
        switch digit {
        case 48...57: digit - 48
        case 97...102: digit - 87
        case 65...70: digit - 55
        default: nil
        }
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
