import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1

/// Streams objects over HTTP(S) for the HTTP and S3 remotes: one shared client, a status
/// classification the retry policy understands, and error texts without credentials.
enum HTTPTransport {
    /// One client for the process (like `HTTPClient.shared`, with the timeouts a large download
    /// needs: a short connect timeout, a read timeout between chunks rather than a total deadline).
    /// Redirects are followed here, not by the client, so that a request carrying credentials is
    /// never sent on to another host.
    static let client = HTTPClient(
        eventLoopGroup: HTTPClient.defaultEventLoopGroup,
        configuration: .init(redirectConfiguration: .disallow, timeout: .init(connect: .seconds(10), read: .seconds(60)))
    )
    static let maxRedirects = 5

    /// GETs `url` and streams a 200 body into `sink`. `describe` turns an error body into a
    /// short reason (S3 sends XML with a code and message). Redirects are followed up to 5 times,
    /// to the same scheme, host and port, or (without `credentialed` headers) to one of
    /// `redirectOrigins`: a remote does not choose where else the server connects.
    /// With `offset` above 0 it asks for the rest of the body from there (`Range`) and takes only
    /// a 206 that starts there.
    static func get(
        _ url: String, headers: HTTPHeaders, credentialed: Bool, redirectOrigins: Set<String> = [], from offset: Int64 = 0,
        into sink: ObjectSink, describe: @Sendable (Int, Data) -> String = { status, _ in "HTTP \(status)" }
    ) async throws {
        var url = url
        var response: HTTPClientResponse
        var redirects = 0
        while true {
            var request = HTTPClientRequest(url: url)
            request.method = .GET
            request.headers = headers
            if offset > 0 { request.headers.replaceOrAdd(name: "Range", value: "bytes=\(offset)-") }
            do {
                response = try await client.execute(request, deadline: .distantFuture)
            } catch {
                throw RemoteFailure(.transient, "cannot connect: \(Self.describe(error))")
            }
            guard [301, 302, 303, 307, 308].contains(response.status.code), let location = response.headers.first(name: "Location") else { break }
            guard redirects < maxRedirects, let next = URL(string: location, relativeTo: URL(string: url))?.absoluteURL.absoluteString else {
                throw RemoteFailure(.refused, "too many redirects or a bad Location")
            }
            let target = RemoteFactory.origin(next)
            if target != RemoteFactory.origin(url) {
                if credentialed {
                    throw RemoteFailure(.refused, "redirected to \(target ?? "another host"): credentials are not sent to another host")
                }
                guard let target, redirectOrigins.contains(target) else {
                    throw RemoteFailure(
                        .refused, "redirected to \(target ?? "another host"), which is not listed in remote-endpoints: not followed")
                }
            }
            redirects += 1
            url = next
        }
        let status = Int(response.status.code)
        if offset > 0 {
            guard status == 206, response.headers.first(name: "Content-Range")?.hasPrefix("bytes \(offset)-") == true else {
                throw RemoteFailure(.transient, "HTTP \(status) to a request for the rest of the object from byte \(offset)")
            }
        } else if status != 200 {
            var body = Data()
            for try await chunk in response.body {
                if body.count < 64 * 1024 { body.append(contentsOf: chunk.readableBytesView) }
            }
            let reason = describe(status, body)
            switch status {
            case 404: throw RemoteFailure(.notFound, reason)
            case 500...599, 408, 429: throw RemoteFailure(.transient, reason)
            default: throw RemoteFailure(.refused, reason)
            }
        }
        do {
            for try await chunk in response.body {
                try chunk.withUnsafeReadableBytes { try sink.write($0) }
            }
        } catch let error as ArtifactError {
            throw error
        } catch {
            throw RemoteFailure(.transient, "connection lost during the transfer: \(Self.describe(error))")
        }
    }

    /// A connection error, for messages. Request URLs carry no credentials (S3 signs headers).
    static func describe(_ error: any Error) -> String { "\(error)" }
}
