import Foundation

/// An AWS access key. `description` never prints the secret or the token.
public struct AWSCredentials: Sendable, Equatable, CustomStringConvertible {
    public let accessKeyID: String
    public let secretAccessKey: String
    public let sessionToken: String?

    public init(accessKeyID: String, secretAccessKey: String, sessionToken: String? = nil) {
        self.accessKeyID = accessKeyID
        self.secretAccessKey = secretAccessKey
        self.sessionToken = sessionToken
    }

    public var description: String { "AWSCredentials(\(accessKeyID), secret: <redacted>)" }

    /// Where the credentials and region came from, in the order DVC (through boto) looks:
    /// keys in the remote's config, the config's `profile`, the environment, then the shared
    /// credentials file's `AWS_PROFILE` or `default` profile.
    static func resolve(options: [String: String], environment: [String: String], home: String) -> (
        credentials: AWSCredentials?, region: String
    ) {
        let credentialsFile = environment["AWS_SHARED_CREDENTIALS_FILE"] ?? home + "/.aws/credentials"
        let configFile = environment["AWS_CONFIG_FILE"] ?? home + "/.aws/config"
        let shared = INIFile(path: credentialsFile)
        let config = INIFile(path: configFile)
        let profile = options["profile"] ?? environment["AWS_PROFILE"] ?? "default"

        var credentials: AWSCredentials?
        if let key = options["access_key_id"], let secret = options["secret_access_key"] {
            credentials = AWSCredentials(accessKeyID: key, secretAccessKey: secret, sessionToken: options["session_token"])
        } else if options["profile"] == nil, let key = environment["AWS_ACCESS_KEY_ID"], let secret = environment["AWS_SECRET_ACCESS_KEY"] {
            credentials = AWSCredentials(accessKeyID: key, secretAccessKey: secret, sessionToken: environment["AWS_SESSION_TOKEN"])
        } else if let section = shared[profile], let key = section["aws_access_key_id"], let secret = section["aws_secret_access_key"] {
            credentials = AWSCredentials(accessKeyID: key, secretAccessKey: secret, sessionToken: section["aws_session_token"])
        }
        let profileSection = profile == "default" ? config["default"] : config["profile \(profile)"]
        let region = options["region"] ?? environment["AWS_REGION"] ?? environment["AWS_DEFAULT_REGION"] ?? profileSection?["region"] ?? "us-east-1"
        return (credentials, region)
    }
}

/// The AWS shared config/credentials format: `[section]` headers and `key = value` lines.
struct INIFile {
    private var sections: [String: [String: String]] = [:]

    init(path: String) {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return }
        var current = ""
        for raw in text.split(whereSeparator: \.isNewline) {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") || line.hasPrefix(";") { continue }
            if line.hasPrefix("["), line.hasSuffix("]") {
                current = line.dropFirst().dropLast().trimmingCharacters(in: .whitespaces)
                continue
            }
            guard let equals = line.firstIndex(of: "=") else { continue }
            let key = line[..<equals].trimmingCharacters(in: .whitespaces).lowercased()
            sections[current, default: [:]][key] = line[line.index(after: equals)...].trimmingCharacters(in: .whitespaces)
        }
    }

    subscript(section: String) -> [String: String]? { sections[section] }
}
