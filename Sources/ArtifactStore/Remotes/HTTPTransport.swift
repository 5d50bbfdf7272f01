import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1

/// Streams objects over HTTP(S) for the HTTP and S3 remotes: one shared client, a status
/// classification the retry policy understands, and error texts without credentials.
enum HTTPTransport {
    /// One client for the process (like `HTTPClient.shared`, with the timeouts a large download
    /// needs: a short connect timeout, a read timeout between chunks rather than a total deadline).
    static let client = HTTPClient(
        eventLoopGroup: HTTPClient.defaultEventLoopGroup,
        configuration: .init(timeout: .init(connect: .seconds(10), read: .seconds(60)))
    )

    /// GETs `url` and streams a 200 body into `sink`. `describe` turns an error body into a
    /// short reason (S3 sends XML with a code and message).
    static func get(
        _ url: String, headers: HTTPHeaders, into sink: ObjectSink,
        describe: @Sendable (Int, Data) -> String = { status, _ in "HTTP \(status)" }
    ) async throws {
        var request = HTTPClientRequest(url: url)
        request.method = .GET
        request.headers = headers
        let response: HTTPClientResponse
        do {
            response = try await client.execute(request, deadline: .distantFuture)
        } catch {
            throw RemoteFailure(.transient, "cannot connect: \(Self.describe(error))")
        }
        let status = Int(response.status.code)
        guard status == 200 else {
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
