import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1

/// One object on a Git LFS server, through its Batch API
/// (https://github.com/git-lfs/git-lfs/blob/main/docs/api/batch.md): a `download` batch request
/// for the object's oid and size to `<endpoint>/objects/batch`, then a GET of the
/// `actions.download.href` it answers with, carrying exactly the headers the action names (the
/// server's choice of origin: an S3 bucket, a CDN). The operator's credentials go to the endpoint
/// only, as basic auth. A transfer that breaks off resumes with a `Range` request where it
/// stopped (the bytes already written stay in the sink, hashed); a new batch request fetches a
/// fresh href each time, since hrefs expire.
struct LFSRemote: ObjectRemote {
    /// `lfs <origin>`, as messages name it.
    let name: String
    let oid: String
    let size: Int64
    private let batchURL: String
    private let authorization: String?
    /// Where a download href may lead: the endpoint's own origin and the `remote-endpoints`.
    private let downloadOrigins: Set<String>

    /// How many times a broken transfer resumes before the attempt fails (and the retry policy
    /// starts over).
    static let resumes = 3
    /// The most a batch answer may hold.
    static let maxAnswer = 1 << 20

    /// `endpoint` without credentials; `credentials` as `user:password`.
    init(endpoint: String, name: String, oid: String, size: Int64, credentials: String?, downloadOrigins: Set<String>) {
        self.downloadOrigins = downloadOrigins
        var base = endpoint
        while base.hasSuffix("/") { base.removeLast() }
        self.name = name
        batchURL = base + "/objects/batch"
        self.oid = oid
        self.size = size
        authorization = credentials.map { "Basic " + Data($0.utf8).base64EncodedString() }
    }

    func read(_ key: String, into sink: ObjectSink) async throws {
        var resumed = 0
        while true {
            let action = try await downloadAction()
            do {
                try await HTTPTransport.get(
                    action.href, headers: action.headers, credentialed: action.headers.contains(name: "Authorization"), from: sink.bytesWritten,
                    into: sink
                ) { status, _ in "HTTP \(status) downloading the object" }
                return
            } catch let failure as RemoteFailure where failure.kind == .transient && sink.bytesWritten > 0 && resumed < Self.resumes {
                resumed += 1
            }
        }
    }

    private struct Action {
        let href: String
        let headers: HTTPHeaders
    }

    /// The batch request: where to GET the object now.
    private func downloadAction() async throws -> Action {
        var request = HTTPClientRequest(url: batchURL)
        request.method = .POST
        request.headers.add(name: "Accept", value: "application/vnd.git-lfs+json")
        request.headers.add(name: "Content-Type", value: "application/vnd.git-lfs+json")
        if let authorization { request.headers.add(name: "Authorization", value: authorization) }
        let body: [String: Any] = [
            "operation": "download", "transfers": ["basic"], "hash_algo": "sha256", "objects": [["oid": oid, "size": size]],
        ]
        request.body = .bytes(ByteBuffer(bytes: try JSONSerialization.data(withJSONObject: body)))
        let response: HTTPClientResponse
        do {
            response = try await HTTPTransport.client.execute(request, timeout: .seconds(60))
        } catch {
            throw RemoteFailure(.transient, "cannot reach the LFS server: \(HTTPTransport.describe(error))")
        }
        var answer = Data()
        do {
            for try await chunk in response.body {
                guard answer.count + chunk.readableBytes <= Self.maxAnswer else { throw RemoteFailure(.refused, "the batch answer is too large") }
                answer.append(contentsOf: chunk.readableBytesView)
            }
        } catch let failure as RemoteFailure {
            throw failure
        } catch {
            throw RemoteFailure(.transient, "the batch answer broke off: \(HTTPTransport.describe(error))")
        }
        let status = Int(response.status.code)
        let message = Self.message(in: answer)
        switch status {
        case 200: break
        case 401:
            throw RemoteFailure(
                .refused, "HTTP 401: the LFS server wants credentials" + (authorization == nil ? " (none were sent)" : " and refused the ones sent"))
        case 404: throw RemoteFailure(.notFound, "HTTP 404" + (message.map { ": \($0)" } ?? ""))
        case 408, 429, 500...599: throw RemoteFailure(.transient, "HTTP \(status)" + (message.map { ": \($0)" } ?? ""))
        default: throw RemoteFailure(.refused, "HTTP \(status)" + (message.map { ": \($0)" } ?? ""))
        }
        guard let root = try? JSONSerialization.jsonObject(with: answer) as? [String: Any],
            let objects = root["objects"] as? [[String: Any]],
            let object = objects.first(where: { $0["oid"] as? String == oid })
        else { throw RemoteFailure(.refused, "the batch answer does not name the object") }
        if let transfer = root["transfer"] as? String, transfer != "basic" {
            throw RemoteFailure(.refused, "the LFS server chose the '\(transfer.prefix(40))' transfer, not basic")
        }
        if let error = object["error"] as? [String: Any] {
            let code = (error["code"] as? Int) ?? 0
            let text = "error \(code)" + ((error["message"] as? String).map { ": \($0.prefix(200))" } ?? "")
            throw RemoteFailure(code == 404 || code == 410 ? .notFound : (code >= 500 ? .transient : .refused), text)
        }
        guard let download = (object["actions"] as? [String: Any])?["download"] as? [String: Any], let href = download["href"] as? String,
            let scheme = URL(string: href)?.scheme?.lowercased(), scheme == "http" || scheme == "https"
        else { throw RemoteFailure(.refused, "the batch answer has no download action with an http(s) href") }
        // The LFS server does not choose where this server connects: its own origin, or one the
        // configuration lists (an S3 endpoint, a CDN).
        guard let origin = RemoteFactory.origin(href), downloadOrigins.contains(origin) else {
            throw RemoteFailure(
                .refused,
                "the LFS server sends the download to \(RemoteFactory.origin(href) ?? "a URL without a host"), which is neither its own origin "
                    + "nor listed in remote-endpoints: not followed")
        }
        var headers = HTTPHeaders()
        for (name, value) in (download["header"] as? [String: Any]) ?? [:] {
            // Only what authorizes the download: no Host, Range, Cookie or framing header of its choosing.
            guard let value = value as? String, Self.isActionHeader(name) else { continue }
            headers.add(name: name, value: value)
        }
        return Action(href: href, headers: headers)
    }

    /// The headers of a download action that are sent: `Authorization` and `x-…` ones (as S3
    /// and LFS servers use), never `x-forwarded-…`.
    static func isActionHeader(_ name: String) -> Bool {
        let lower = name.lowercased()
        return lower == "authorization" || (lower.hasPrefix("x-") && !lower.hasPrefix("x-forwarded"))
    }

    /// The `message` of an LFS error answer, shortened.
    private static func message(in body: Data) -> String? {
        guard let object = try? JSONSerialization.jsonObject(with: body) as? [String: Any], let message = object["message"] as? String else {
            return nil
        }
        return String(message.prefix(200))
    }
}
