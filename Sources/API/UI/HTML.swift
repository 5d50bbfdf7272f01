import Foundation
import Serving

/// Text made safe for HTML and SVG (element content and quoted attribute values).
enum HTML {
    static func escape(_ text: some StringProtocol) -> String {
        var escaped = ""
        escaped.reserveCapacity(text.utf8.count)
        for character in text {
            switch character {
            case "&": escaped += "&amp;"
            case "<": escaped += "&lt;"
            case ">": escaped += "&gt;"
            case "\"": escaped += "&quot;"
            case "'": escaped += "&#39;"
            default: escaped.append(character)
            }
        }
        return escaped
    }

    /// A path segment of a link (`/ui/revisions/<id>`): percent-encoded, then escaped.
    static func segment(_ text: String) -> String {
        var allowed = ""
        for byte in text.utf8 {
            let isPlain =
                (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A)
                || [0x2D, 0x2E, 0x5F, 0x7E, 0x40].contains(byte)
            allowed += isPlain ? String(UnicodeScalar(byte)) : "%" + String(byte, radix: 16, uppercase: true).leftPadded(2)
        }
        return allowed
    }

    /// A whole page: the shared head (stylesheet, no script), a header with the way back, `body`.
    /// A whole page; `signOut` adds the sign-out button (for a signed-in key).
    static func page(signOut: Bool = false, title: String, crumbs: [(String, String?)], body: String) -> String {
        let trail = crumbs.map { label, link in link.map { "<a href=\"\($0)\">\(escape(label))</a>" } ?? "<span>\(escape(label))</span>" }
            .joined(separator: " <span class=\"sep\">/</span> ")
        return """
            <!doctype html>
            <html lang="en">
            <head>
            <meta charset="utf-8">
            <meta name="viewport" content="width=device-width, initial-scale=1">
            <title>\(escape(title)) · Pedigree</title>
            <link rel="stylesheet" href="/ui/assets/ui.css">
            <link rel="icon" href="data:,">
            </head>
            <body>
            <header><a class="brand" href="/ui/">Pedigree</a> <nav>\(trail)</nav> <a class="aside" href="/graphql">GraphiQL</a>\(signOut ? #" <form class="aside" method="post" action="/ui/logout"><button type="submit">Sign out</button></form>"# : "")</header>
            <main>
            \(body)
            </main>
            </body>
            </html>
            """
    }

    /// A table: header cells and rows of ready HTML cells.
    static func table(_ header: [String], _ rows: [[String]], id: String? = nil) -> String {
        let head = header.map { "<th>\(escape($0))</th>" }.joined()
        let body = rows.map { "<tr>" + $0.map { "<td>\($0)</td>" }.joined() + "</tr>" }.joined(separator: "\n")
        return "<table\(id.map { " id=\"\($0)\"" } ?? "")><thead><tr>\(head)</tr></thead><tbody>\n\(body)\n</tbody></table>"
    }

    /// Bytes as people read them.
    static func size(_ bytes: Int64) -> String { ByteSize.describe(bytes) }
}

extension String {
    fileprivate func leftPadded(_ width: Int) -> String { count >= width ? self : String(repeating: "0", count: width - count) + self }
}
