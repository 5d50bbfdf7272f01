public import Foundation

/// Reads the TOML that params files use: tables, dotted and quoted keys, strings, numbers,
/// booleans, arrays (also across lines) and inline tables. Dates stay as their text.
public enum TOMLLoader {
    public static func load(_ data: Data, file: String, limits: ParseLimits = .default) throws -> YAMLValue {
        guard data.count <= limits.maxBytes else { throw DVCError(.tooLarge, file: file, "file too large") }
        guard let text = String(data: data, encoding: .utf8) else { throw DVCError(.malformed, file: file, "not UTF-8 text") }
        var root = Table()
        var current: [String] = []
        // One scanner over the whole text: a value that goes on over several lines (an array) is
        // read on, never re-scanned from its start for each new line.
        var scanner = Scanner(Array(text.unicodeScalars))
        while true {
            scanner.skipSpace(newlines: true)
            if scanner.atEnd { break }
            let start = scanner.index
            do {
                if scanner.peek == "[" {
                    let isArray = scanner.lookahead("[[")
                    scanner.index += isArray ? 2 : 1
                    let path = try scanner.keyPath(terminator: "]")
                    scanner.index += isArray ? 2 : 1
                    try scanner.endOfLine()
                    if isArray { try root.appendArrayTable(path) } else { try root.ensureTable(path) }
                    current = path
                } else {
                    let key = try scanner.keyPath(terminator: "=")
                    scanner.index += 1
                    scanner.skipSpace()
                    let value = try scanner.value(depth: 0)
                    try scanner.endOfLine()
                    try root.set(current + key, value)
                }
            } catch TOMLIncomplete.needMore {
                throw DVCError(.malformed, file: file, "invalid TOML at line \(scanner.line(of: start)): unterminated value")
            } catch let TOMLIncomplete.error(message) {
                throw DVCError(.malformed, file: file, "invalid TOML at line \(scanner.line(of: scanner.index)): \(message)")
            } catch {
                throw DVCError(.malformed, file: file, "invalid TOML at line \(scanner.line(of: scanner.index))")
            }
        }
        return root.value
    }

    /// Arrays and inline tables nested deeper than this are refused (the reader recurses).
    static let maxDepth = 128

    enum TOMLIncomplete: Error {
        case needMore
        case error(String)
    }

    /// A table under construction, keys kept in order.
    struct Table {
        var pairs: [(key: String, value: Node)] = []
        indirect enum Node {
            case value(YAMLValue)
            case table(Table)
            case tables([Table])
        }

        var value: YAMLValue {
            .mapping(
                pairs.map { pair in
                    switch pair.value {
                    case .value(let v): return (pair.key, v)
                    case .table(let t): return (pair.key, t.value)
                    case .tables(let ts): return (pair.key, .sequence(ts.map(\.value)))
                    }
                })
        }

        mutating func ensureTable(_ path: [String]) throws {
            _ = try withTable(path) { _ in }
        }

        mutating func appendArrayTable(_ path: [String]) throws {
            guard let last = path.last else { throw TOMLIncomplete.error("empty table name") }
            try withTable(Array(path.dropLast())) { table in
                if let index = table.pairs.firstIndex(where: { $0.key == last }) {
                    guard case .tables(var list) = table.pairs[index].value else { throw TOMLIncomplete.error("\(last) is not an array of tables") }
                    list.append(Table())
                    table.pairs[index].value = .tables(list)
                } else {
                    table.pairs.append((last, .tables([Table()])))
                }
            }
        }

        mutating func set(_ path: [String], _ value: YAMLValue) throws {
            guard let last = path.last else { throw TOMLIncomplete.error("empty key") }
            try withTable(Array(path.dropLast())) { table in
                if table.pairs.contains(where: { $0.key == last }) { throw TOMLIncomplete.error("duplicate key \(last)") }
                table.pairs.append((last, .value(value)))
            }
        }

        /// Runs `body` on the table at `path`, creating tables (or entering the newest element
        /// of an array of tables) on the way.
        mutating func withTable(_ path: [String], _ body: (inout Table) throws -> Void) throws {
            guard let first = path.first else { return try body(&self) }
            let rest = Array(path.dropFirst())
            if let index = pairs.firstIndex(where: { $0.key == first }) {
                switch pairs[index].value {
                case .table(var table):
                    try table.withTable(rest, body)
                    pairs[index].value = .table(table)
                case .tables(var list):
                    guard !list.isEmpty else { throw TOMLIncomplete.error("empty array of tables") }
                    try list[list.count - 1].withTable(rest, body)
                    pairs[index].value = .tables(list)
                case .value:
                    throw TOMLIncomplete.error("\(first) is not a table")
                }
            } else {
                var table = Table()
                try table.withTable(rest, body)
                pairs.append((first, .table(table)))
            }
        }
    }

    struct Scanner {
        let chars: [Unicode.Scalar]
        var index = 0
        init(_ chars: [Unicode.Scalar]) { self.chars = chars }

        var atEnd: Bool { index >= chars.count }
        var peek: Unicode.Scalar? { atEnd ? nil : chars[index] }
        func lookahead(_ text: String) -> Bool {
            let wanted = Array(text.unicodeScalars)
            return index + wanted.count <= chars.count && Array(chars[index..<index + wanted.count]) == wanted
        }

        mutating func skipSpace(newlines: Bool = false) {
            while let c = peek {
                if c == " " || c == "\t" || (newlines && (c == "\n" || c == "\r")) {
                    index += 1
                } else if newlines && c == "#" {
                    while let d = peek, d != "\n" { index += 1 }
                } else {
                    break
                }
            }
        }

        mutating func endOfLine() throws {
            skipSpace()
            if peek == "\r" { index += 1 }
            if let c = peek, c != "#", c != "\n" { throw TOMLIncomplete.error("unexpected '\(c)'") }
        }

        /// The 1-based line of a position, for error messages.
        func line(of position: Int) -> Int {
            1 + chars[..<min(position, chars.count)].reduce(0) { $0 + ($1 == "\n" ? 1 : 0) }
        }

        mutating func keyPath(terminator: Unicode.Scalar) throws -> [String] {
            var parts: [String] = []
            while true {
                skipSpace()
                if peek == "\"" || peek == "'" {
                    guard case .scalar(let text, _) = try string() else { throw TOMLIncomplete.error("bad key") }
                    parts.append(text)
                } else {
                    var bare = ""
                    while let c = peek, c.properties.isAlphabetic || ("0"..."9").contains(c) || c == "_" || c == "-" {
                        bare.unicodeScalars.append(c)
                        index += 1
                    }
                    if bare.isEmpty { throw TOMLIncomplete.error("expected a key") }
                    parts.append(bare)
                }
                skipSpace()
                if peek == "." {
                    index += 1
                    continue
                }
                if peek == terminator { return parts }
                throw TOMLIncomplete.error("expected '\(terminator)'")
            }
        }

        mutating func string() throws -> YAMLValue {
            let quote = chars[index]
            if lookahead(String(repeating: Character(quote), count: 3)) { throw TOMLIncomplete.error("multi-line strings are not supported") }
            index += 1
            var text = ""
            while let c = peek {
                index += 1
                if c == quote { return .scalar(text, quoted: true) }
                if c == "\n" { break }
                if quote == "\"" && c == "\\" {
                    guard let escaped = peek else { break }
                    index += 1
                    switch escaped {
                    case "n": text += "\n"
                    case "t": text += "\t"
                    case "r": text += "\r"
                    case "\\": text += "\\"
                    case "\"": text += "\""
                    case "u", "U":
                        let width = escaped == "u" ? 4 : 8
                        guard index + width <= chars.count,
                            let code = UInt32(String(String.UnicodeScalarView(chars[index..<index + width])), radix: 16),
                            let scalar = Unicode.Scalar(code)
                        else { throw TOMLIncomplete.error("bad unicode escape") }
                        text.unicodeScalars.append(scalar)
                        index += width
                    default: throw TOMLIncomplete.error("bad escape \\\(escaped)")
                    }
                } else {
                    text.unicodeScalars.append(c)
                }
            }
            throw TOMLIncomplete.error("unterminated string")
        }

        mutating func value(depth: Int) throws -> YAMLValue {
            guard depth < TOMLLoader.maxDepth else { throw TOMLIncomplete.error("arrays nested deeper than \(TOMLLoader.maxDepth)") }
            guard let c = peek else { throw TOMLIncomplete.needMore }
            switch c {
            case "\"", "'": return try string()
            case "[":
                index += 1
                var items: [YAMLValue] = []
                while true {
                    skipSpace(newlines: true)
                    guard let next = peek else { throw TOMLIncomplete.needMore }
                    if next == "]" {
                        index += 1
                        return .sequence(items)
                    }
                    items.append(try value(depth: depth + 1))
                    skipSpace(newlines: true)
                    if peek == "," {
                        index += 1
                    } else if peek == nil {
                        throw TOMLIncomplete.needMore
                    } else if peek != "]" {
                        throw TOMLIncomplete.error("expected ',' or ']'")
                    }
                }
            case "{":
                index += 1
                var table = Table()
                while true {
                    skipSpace()
                    guard let next = peek else { throw TOMLIncomplete.needMore }
                    if next == "}" {
                        index += 1
                        return table.value
                    }
                    let key = try keyPath(terminator: "=")
                    index += 1
                    skipSpace()
                    try table.set(key, try value(depth: depth + 1))
                    skipSpace()
                    if peek == "," { index += 1 } else if peek != "}" { throw TOMLIncomplete.error("expected ',' or '}'") }
                }
            default:
                var text = ""
                while let d = peek, d != ",", d != "]", d != "}", d != "#", d != "\n", d != "\r" {
                    text.unicodeScalars.append(d)
                    index += 1
                }
                text = text.trimmingCharacters(in: .whitespaces)
                let plain = text.replacingOccurrences(of: "_", with: "")
                if ["true", "false"].contains(text) || Int64(plain) != nil || Double(plain) != nil
                    || ["inf", "+inf", "-inf", "nan", "+nan", "-nan"].contains(text) || text.first?.isNumber == true
                {
                    return .scalar(Int64(plain) != nil || Double(plain) != nil ? plain : text, quoted: false)
                }
                throw TOMLIncomplete.error("unknown value '\(text)'")
            }
        }
    }
}
