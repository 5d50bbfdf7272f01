import Foundation

/// What the key table writes for people: the example file, the flags' help, and the table as JSON.
extension ConfigurationKey {
    /// `pedigree.example.yaml`: every key with its help, set to its default, or commented out with
    /// an example where it has no plain default.
    public static func exampleFile() -> String {
        var lines = [
            "# Pedigree's configuration: `pedigree serve --config pedigree.yaml`, checked by",
            "# `pedigree config check pedigree.yaml` (prints the effective values and where each came from).",
            "# Generated from the key table by `pedigree config example`; a test fails when they differ.",
            "#",
            "# Every key is also a flag (`--cache-budget 20G`; lists repeat a singular flag,",
            "# `--worker URL`) and an environment variable (`PEDIGREE_CACHE_BUDGET=20G`; lists",
            "# comma-separated). Precedence: flags > environment > this file > defaults. Nested mappings",
            "# name dotted keys. An unknown key, a value of the wrong type or one out of range stops the",
            "# command with an error naming the key. Durations: 30, 30s, 5m, 2h; sizes: 500M, 20G.",
        ]
        for section in Section.allCases {
            lines.append("")
            lines.append("# --- \(section.rawValue) " + String(repeating: "-", count: max(3, 93 - section.rawValue.count)))
            for key in all where key.section == section {
                var comment = key.help
                if let details = key.details { comment += " " + details }
                if let note = key.defaultNote { comment += " Default: \(note)." }
                lines += wrap(comment, width: 98).map { "# " + $0 }
                if key.hasPlainDefault, let value = key.read(.defaults) {
                    lines += yaml(key, value, commented: false)
                } else {
                    lines += yaml(key, key.example, commented: true)
                }
            }
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// The `CONFIGURATION` part of a command's help: each key its groups give it, as a flag, with
    /// its help, default and variable.
    public static func helpSection(for groups: [Group]) -> String {
        let keys = keys(of: groups)
        guard !keys.isEmpty else { return "" }
        var lines = [
            "CONFIGURATION:",
            "  Each is also a PEDIGREE_* variable and a key of the --config file (flags > environment > file > defaults).",
        ]
        let column = 34
        for key in keys {
            let head = "  --\(key.flag) \(key.valueName)"
            var text = key.help
            text += " (default: \(key.defaultText ?? "none"); \(key.environmentName))"
            let wrapped = wrap(text, width: 120 - column)
            if head.count < column - 1 {
                lines.append(head.padding(toLength: column, withPad: " ", startingAt: 0) + (wrapped.first ?? ""))
                lines += wrapped.dropFirst().map { String(repeating: " ", count: column) + $0 }
            } else {
                lines.append(head)
                lines += wrapped.map { String(repeating: " ", count: column) + $0 }
            }
        }
        return lines.joined(separator: "\n")
    }

    /// The table as JSON objects (name, flag, environment, kind, default, secret, groups, help).
    public static func tableJSON() -> [[String: Any]] {
        all.map { key in
            [
                "name": key.name, "flag": "--" + key.flag, "environment": key.environmentName, "kind": key.kindName,
                "default": key.defaultText as Any, "secret": key.secret, "groups": key.groups.map(\.rawValue), "section": key.section.rawValue,
                "help": key.help, "example": key.example,
            ]
        }
    }

    /// How a value of the key is written in help (`<seconds>`, `<invariant|mixed>`).
    public var valueName: String {
        switch kind {
        case .text: "<text>"
        case .integer: "<n>"
        case .boolean: "[<bool>]"
        case .size: "<size>"
        case .seconds: "<seconds>"
        case .choice(let options): "<" + options.joined(separator: "|") + ">"
        case .list: "<text> ..."
        }
    }

    var kindName: String {
        switch kind {
        case .text: "text"
        case .integer(let range): "integer \(range.lowerBound)...\(range.upperBound)"
        case .boolean: "boolean"
        case .size: "size"
        case .seconds(let range): "seconds \(range.lowerBound)...\(range.upperBound)"
        case .choice(let options): "one of " + options.joined(separator: ", ")
        case .list: "list"
        }
    }

    private static func yaml(_ key: ConfigurationKey, _ values: [String], commented: Bool) -> [String] {
        let prefix = commented ? "# " : ""
        if key.kind == .list {
            return ["\(prefix)\(key.name):"] + values.map { "\(prefix)  - \($0)" }
        }
        return ["\(prefix)\(key.name): \(values.first ?? "")"]
    }

    /// Words of `text` in lines of at most `width` characters (a longer word stands alone).
    static func wrap(_ text: String, width: Int) -> [String] {
        var lines: [String] = []
        var line = ""
        for word in text.split(separator: " ") {
            if line.isEmpty {
                line = String(word)
            } else if line.count + 1 + word.count <= width {
                line += " " + word
            } else {
                lines.append(line)
                line = String(word)
            }
        }
        if !line.isEmpty { lines.append(line) }
        return lines
    }
}
