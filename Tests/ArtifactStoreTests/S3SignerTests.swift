import Foundation
import Testing

@testable import ArtifactStore

struct S3SignerTests {
    /// The "GET Object" example of the AWS Signature Version 4 documentation for S3.
    @Test func matchesTheAWSDocumentationExample() throws {
        let signer = S3Signer(
            credentials: AWSCredentials(accessKeyID: "AKIAIOSFODNN7EXAMPLE", secretAccessKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
            region: "us-east-1")
        let headers = signer.sign(
            method: "GET", host: "examplebucket.s3.amazonaws.com", path: "/test.txt", extra: ["Range": "bytes=0-9"],
            date: Date(timeIntervalSince1970: 1_369_353_600))  // 2013-05-24T00:00:00Z
        let authorization = try #require(headers.first { $0.0 == "authorization" }?.1)
        #expect(
            authorization
                == "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
                + "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "
                + "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41")
    }

    @Test func encodesKeySegmentsOnce() {
        #expect(S3Signer.encodeSegment("a b+c~d.e_f-g") == "a%20b%2Bc~d.e_f-g")
        #expect(S3Signer.encodeSegment("é") == "%C3%A9")
    }

    @Test func credentialsNeverPrintTheSecret() {
        let credentials = AWSCredentials(accessKeyID: "AKID", secretAccessKey: "very-secret", sessionToken: "token-secret")
        #expect(!"\(credentials)".contains("secret-"))
        #expect(!"\(credentials)".contains("very-secret"))
    }

    @Test func credentialChainPrefersConfigThenEnvironmentThenSharedFile() throws {
        let home = FileManager.default.temporaryDirectory.appendingPathComponent("aws-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: home.appendingPathComponent(".aws"), withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: home) }
        try
            "[default]\naws_access_key_id = FILEKEY\naws_secret_access_key = filesecret\n[ci]\naws_access_key_id = CIKEY\naws_secret_access_key = cisecret\n"
            .write(to: home.appendingPathComponent(".aws/credentials"), atomically: true, encoding: .utf8)
        try "[profile ci]\nregion = eu-west-3\n".write(to: home.appendingPathComponent(".aws/config"), atomically: true, encoding: .utf8)
        let env = ["AWS_ACCESS_KEY_ID": "ENVKEY", "AWS_SECRET_ACCESS_KEY": "envsecret"]
        let fromConfig = AWSCredentials.resolve(
            options: ["access_key_id": "CFGKEY", "secret_access_key": "cfgsecret", "region": "ap-south-1"], environment: env, home: home.path)
        #expect(fromConfig.credentials?.accessKeyID == "CFGKEY" && fromConfig.region == "ap-south-1")
        #expect(AWSCredentials.resolve(options: [:], environment: env, home: home.path).credentials?.accessKeyID == "ENVKEY")
        #expect(AWSCredentials.resolve(options: [:], environment: [:], home: home.path).credentials?.accessKeyID == "FILEKEY")
        let profile = AWSCredentials.resolve(options: ["profile": "ci"], environment: env, home: home.path)
        #expect(profile.credentials?.accessKeyID == "CIKEY" && profile.region == "eu-west-3")
        #expect(AWSCredentials.resolve(options: [:], environment: [:], home: "/nonexistent").credentials == nil)
    }
}
