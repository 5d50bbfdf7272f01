import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// GraphiQL, served by Pedigree itself from the built files `script/bootstrap` installs
/// (`.deps/graphiql`, from the pinned `graphene-django-graphiql-static` wheel: GraphiQL 2.1.0,
/// React 17) or from the configuration's `graphiql-assets` folder. Nothing is loaded from another
/// host, and the page's Content-Security-Policy allows nothing but this server.
struct GraphiQL: Sendable {
    /// The files the page loads, by the name it loads them with, and their types.
    static let files: [String: String] = [
        "graphiql.min.css": "text/css; charset=utf-8",
        "graphiql.min.js": "text/javascript; charset=utf-8",
        "react.production.min.js": "text/javascript; charset=utf-8",
        "react-dom.production.min.js": "text/javascript; charset=utf-8",
    ]
    static let contentSecurityPolicy =
        "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

    /// The folder holding `files`.
    let folder: URL

    init(assets: String?) {
        folder = URL(fileURLWithPath: assets ?? FileManager.default.currentDirectoryPath + "/.deps/graphiql")
    }

    /// The page, or a page saying how to install the files when they are missing (not naming
    /// the folder: a server's paths are no business of whoever asks).
    func page() -> Response {
        guard FileManager.default.fileExists(atPath: folder.appendingPathComponent("graphiql.min.js").path) else {
            return html(.serviceUnavailable, Self.missing)
        }
        return html(.ok, Self.page)
    }

    /// One of the page's files (only those: no path from a request reaches the filesystem).
    func file(_ name: String) -> Response {
        if name == "pedigree-graphiql.js" { return asset(Data(Self.script.utf8), type: "text/javascript; charset=utf-8") }
        guard let type = Self.files[name], let data = FileManager.default.contents(atPath: folder.appendingPathComponent(name).path) else {
            return Response(
                status: .notFound, headers: [.contentType: "text/plain; charset=utf-8"],
                body: ResponseBody(byteBuffer: ByteBuffer(string: "not found\n")))
        }
        return asset(data, type: type)
    }

    private func asset(_ data: Data, type: String) -> Response {
        Response(
            status: .ok, headers: [.contentType: type, .cacheControl: "public, max-age=3600", .xContentTypeOptions: "nosniff"],
            body: ResponseBody(byteBuffer: ByteBuffer(bytes: data)))
    }

    private func html(_ status: HTTPResponse.Status, _ text: String) -> Response {
        Response(
            status: status,
            headers: [
                .contentType: "text/html; charset=utf-8", .contentSecurityPolicy: Self.contentSecurityPolicy, .xContentTypeOptions: "nosniff",
                .xFrameOptions: "DENY", .referrerPolicy: "same-origin",
            ],
            body: ResponseBody(byteBuffer: ByteBuffer(string: text)))
    }

    static let page = #"""
        <!doctype html>
        <html lang="en">
        <head>
          <meta charset="utf-8">
          <title>Pedigree GraphiQL</title>
          <link rel="stylesheet" href="/graphiql/graphiql.min.css">
          <link rel="icon" href="data:,">
          <style>body { margin: 0; height: 100vh; } #graphiql { height: 100vh; }</style>
        </head>
        <body>
          <div id="graphiql">Loading GraphiQL…</div>
          <script src="/graphiql/react.production.min.js"></script>
          <script src="/graphiql/react-dom.production.min.js"></script>
          <script src="/graphiql/graphiql.min.js"></script>
          <script src="/graphiql/pedigree-graphiql.js"></script>
        </body>
        </html>
        """#

    /// The page's own script (a file, since the policy allows no inline script).
    static let script = #"""
        const fetcher = GraphiQL.createFetcher({ url: '/graphql' });
        const defaultQuery = `# Pedigree: where did this model come from?
        # With API keys on, add {"Authorization": "Bearer <key>"} under Headers.
        {
          models {
            name
            versions
            stages
            latest {
              id
              commit { sha date author message }
              stage { name cmd }
              datasets { path md5 size commit { sha } }
              parameters { file key value }
              artifact { md5 size cached }
            }
          }
        }
        `;
        ReactDOM.render(
          React.createElement(GraphiQL, { fetcher, defaultQuery, isHeadersEditorEnabled: true }),
          document.getElementById('graphiql'));
        """#

    static let missing = #"""
        <!doctype html>
        <html lang="en"><head><meta charset="utf-8"><title>Pedigree GraphiQL</title></head>
        <body><h1>GraphiQL is not installed</h1>
        <p>Its files are not in the <code>graphiql-assets</code> folder (<code>pedigree config check</code>
        names it). Run <code>script/bootstrap</code> (it installs them under
        <code>.deps/graphiql</code>), or set <code>graphiql-assets</code> to a folder holding
        graphiql.min.js, graphiql.min.css, react.production.min.js and react-dom.production.min.js.</p>
        <p>GraphQL itself answers at POST /graphql.</p></body></html>
        """#
}

extension HTTPField.Name {
    static let contentSecurityPolicy = Self("Content-Security-Policy")!
    static let xContentTypeOptions = Self("X-Content-Type-Options")!
    static let xFrameOptions = Self("X-Frame-Options")!
    static let referrerPolicy = Self("Referrer-Policy")!
}
