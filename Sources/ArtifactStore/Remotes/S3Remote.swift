import DVCKit
import Foundation
import NIOHTTP1

/// A DVC remote in S3 or an S3-compatible store (`url = s3://bucket/prefix`), read with signed
/// GETs. A custom `endpointurl` is addressed path-style (`endpoint/bucket/key`), AWS itself
/// virtual-hosted (`bucket.s3.region.amazonaws.com/key`).
public struct S3Remote: ObjectRemote {
    public let name: String
    let bucket: String
    let prefix: String
    /// `http(s)://host[:port]` without a trailing slash.
    let endpoint: String
    let host: String
    let pathStyle: Bool
    /// Whether the endpoint is not AWS's own (an `endpointurl` or `AWS_ENDPOINT_URL`).
    let customEndpoint: Bool
    /// Nil: unsigned requests (`allow_anonymous_login`).
    let signer: S3Signer?
    /// Other origins a redirect may lead to (without credentials).
    private(set) var redirectOrigins: Set<String> = []

    /// This remote, allowed to follow unsigned redirects to `origins`.
    func allowingRedirects(to origins: Set<String>) -> S3Remote {
        var copy = self
        copy.redirectOrigins = origins
        return copy
    }

    /// - Parameters:
    ///   - url: `s3://bucket/prefix`.
    ///   - options: the remote's `.dvc/config` options (`endpointurl`, `region`, `profile`, keys, …).
    public init(name: String, url: String, options: [String: String], environment: [String: String], home: String) throws {
        guard let components = URLComponents(string: url), components.scheme == "s3", let bucket = components.host, !bucket.isEmpty else {
            throw ArtifactError.configuration("remote '\(name)': '\(url)' is not an s3://bucket/prefix URL")
        }
        // Both become part of a host name: a bucket or region that is not one (`x@host/`) would
        // choose where the request goes.
        guard Self.isHostName(bucket, extra: "._-ABCDEFGHIJKLMNOPQRSTUVWXYZ") else {
            throw ArtifactError.configuration("remote '\(name)': '\(bucket)' is not an S3 bucket name")
        }
        self.name = name
        self.bucket = bucket
        prefix = components.path.split(separator: "/").joined(separator: "/")
        let (credentials, region) = AWSCredentials.resolve(options: options, environment: environment, home: home)
        guard Self.isHostName(region, extra: "-") else {
            throw ArtifactError.configuration("remote '\(name)': '\(region)' is not an AWS region")
        }
        if let credentials {
            signer = S3Signer(credentials: credentials, region: region)
        } else if options["allow_anonymous_login"]?.lowercased() == "true" {
            signer = nil
        } else {
            throw ArtifactError.unavailable(
                remote: name,
                reason: "no AWS credentials: set access_key_id/secret_access_key with `dvc remote modify --local`, a profile, or AWS_ACCESS_KEY_ID")
        }
        if let custom = options["endpointurl"] ?? environment["AWS_ENDPOINT_URL_S3"] ?? environment["AWS_ENDPOINT_URL"] {
            guard let parsed = URLComponents(string: custom), let scheme = parsed.scheme, let host = parsed.host else {
                throw ArtifactError.configuration("remote '\(name)': endpointurl '\(custom)' is not a URL")
            }
            self.host = parsed.port.map { "\(host):\($0)" } ?? host
            endpoint = "\(scheme)://\(self.host)"
            pathStyle = true
            customEndpoint = true
        } else {
            customEndpoint = false
            let scheme = options["use_ssl"]?.lowercased() == "false" ? "http" : "https"
            pathStyle = bucket.contains(".")
            host = pathStyle ? "s3.\(region).amazonaws.com" : "\(bucket).s3.\(region).amazonaws.com"
            endpoint = "\(scheme)://\(host)"
        }
    }

    /// Whether `text` may stand in a host name: lower-case letters, digits and the characters of
    /// `extra`, 1 to 255 bytes (no `@ / : # ?`, which would change where a request goes).
    static func isHostName(_ text: String, extra: String) -> Bool {
        (1...255).contains(text.utf8.count)
            && text.unicodeScalars.allSatisfy { ("a"..."z").contains($0) || ("0"..."9").contains($0) || extra.unicodeScalars.contains($0) }
    }

    public func read(_ key: String, into sink: ObjectSink) async throws {
        let objectKey = prefix.isEmpty ? key : prefix + "/" + key
        let encodedKey = objectKey.split(separator: "/").map(S3Signer.encodeSegment).joined(separator: "/")
        let path = pathStyle ? "/\(S3Signer.encodeSegment(bucket))/\(encodedKey)" : "/\(encodedKey)"
        var headers = HTTPHeaders()
        if let signer {
            for (name, value) in signer.sign(method: "GET", host: host, path: path) { headers.add(name: name, value: value) }
        }
        try await HTTPTransport.get(endpoint + path, headers: headers, credentialed: signer != nil, redirectOrigins: redirectOrigins, into: sink) {
            status, body in
            let (code, message) = Self.errorDetails(body)
            return "HTTP \(status) \(code ?? "") for \(key)\(message.map { ": " + $0 } ?? "")"
        }
    }

    /// `<Code>` and `<Message>` of an S3 error document.
    static func errorDetails(_ body: Data) -> (code: String?, message: String?) {
        let text = String(decoding: body.prefix(8192), as: UTF8.self)
        func element(_ name: String) -> String? {
            guard let start = text.range(of: "<\(name)>"), let end = text.range(of: "</\(name)>", range: start.upperBound..<text.endIndex) else {
                return nil
            }
            return String(text[start.upperBound..<end.lowerBound].prefix(300))
        }
        return (element("Code"), element("Message"))
    }
}
