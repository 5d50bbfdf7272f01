import Crypto
import Foundation
import HTTPTypes
import Testing

@testable import API

@Suite struct GitWebhookTests {
    let hook = GitWebhook(secret: "It's a Secret to Everybody")
    let body = Data("Hello, World!".utf8)

    /// GitHub's documented example: this secret and payload sign to this digest.
    @Test func githubsDocumentedVectorVerifies() {
        var headers = HTTPFields()
        headers[GitWebhook.githubSignature] = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
        #expect(hook.verify(headers, body: body))
        #expect(!hook.verify(headers, body: Data("Hello, World?".utf8)))
    }

    @Test(arguments: [
        "sha256=", "sha256=zz", "sha1=757107ea0eb2509fc211221cce984b8a37570b6d", "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
    ])
    func malformedSignaturesFail(signature: String) {
        var headers = HTTPFields()
        headers[GitWebhook.githubSignature] = signature
        #expect(!hook.verify(headers, body: body))
    }

    @Test func gitlabTokenMustMatchExactly() {
        for (token, valid) in [
            ("It's a Secret to Everybody", true), ("It's a Secret to Everybod", false), ("", false), ("It's a Secret to Everybody!", false),
        ] {
            var headers = HTTPFields()
            headers[GitWebhook.gitlabToken] = token
            #expect(hook.verify(headers, body: body) == valid)
        }
        #expect(!hook.verify(HTTPFields(), body: body))
    }
}
