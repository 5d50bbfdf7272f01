import Crypto
import DVCKit
import Foundation

/// AWS Signature Version 4 for S3 requests without a body (GET, HEAD).
///
/// GETs carry no body, so the signed payload hash is the empty body's SHA-256. Header names are
/// signed lower-cased and sorted, as the specification requires.
struct S3Signer: Sendable {
    let credentials: AWSCredentials
    let region: String
    let service = "s3"

    static let emptyPayloadHash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

    /// The headers to send (including `Authorization`) for `method` on `path` at `host`.
    /// `path` must already be URI-encoded; `extra` headers are signed too.
    func sign(method: String, host: String, path: String, query: String = "", extra: [String: String] = [:], date: Date = Date())
        -> [(String, String)]
    {
        let amzDate = Self.timestamp(date, format: "yyyyMMdd'T'HHmmss'Z'")
        let day = String(amzDate.prefix(8))
        var headers: [String: String] = ["host": host, "x-amz-date": amzDate, "x-amz-content-sha256": Self.emptyPayloadHash]
        if let token = credentials.sessionToken { headers["x-amz-security-token"] = token }
        for (name, value) in extra { headers[name.lowercased()] = value.trimmingCharacters(in: .whitespaces) }
        let sorted = headers.sorted { $0.key < $1.key }
        let names = sorted.map(\.key)
        let signedHeaders = names.joined(separator: ";")
        let canonicalHeaders = sorted.map { "\($0.key):\($0.value)\n" }.joined()
        let canonicalRequest = [method, path, query, canonicalHeaders, signedHeaders, Self.emptyPayloadHash].joined(separator: "\n")
        let scope = "\(day)/\(region)/\(service)/aws4_request"
        let stringToSign = ["AWS4-HMAC-SHA256", amzDate, scope, DVCHash.hexString(SHA256.hash(data: Data(canonicalRequest.utf8)))].joined(
            separator: "\n")
        var key = SymmetricKey(data: Data("AWS4\(credentials.secretAccessKey)".utf8))
        for part in [day, region, service, "aws4_request"] {
            key = SymmetricKey(data: Data(HMAC<SHA256>.authenticationCode(for: Data(part.utf8), using: key)))
        }
        let signature = DVCHash.hexString(HMAC<SHA256>.authenticationCode(for: Data(stringToSign.utf8), using: key))
        let authorization =
            "AWS4-HMAC-SHA256 Credential=\(credentials.accessKeyID)/\(scope), SignedHeaders=\(signedHeaders), Signature=\(signature)"
        return sorted.map { ($0.key, $0.value) } + [("authorization", authorization)]
    }

    /// RFC 3986 encoding of one path segment, as S3 expects (unreserved characters kept).
    static func encodeSegment(_ segment: some StringProtocol) -> String {
        var out = ""
        for byte in segment.utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."), UInt8(ascii: "~"):
                out.unicodeScalars.append(Unicode.Scalar(byte))
            default:
                out += String(format: "%%%02X", byte)
            }
        }
        return out
    }

    static func timestamp(_ date: Date, format: String) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = format
        return formatter.string(from: date)
    }

}
