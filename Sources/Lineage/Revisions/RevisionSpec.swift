import Foundation

/// A parsed revision spec: what a client wrote to name one model revision.
public struct RevisionSpec: Sendable, Hashable, CustomStringConvertible {
    public enum Selector: Sendable, Hashable {
        /// `<model>`: the newest commit on the default branch that contains the model.
        case latest
        /// `<model>@<rev>`: a SHA (full or short), branch, tag or GTO semver version.
        case revision(String)
        /// `<model>#<stage>`: the GTO stage's newest assignment.
        case stage(String)
    }

    /// The model name; nil for a bare 40-hex SHA.
    public let model: String?
    public let selector: Selector

    /// Longest spec accepted; longer input is rejected before any lookup.
    public static let maxLength = 256

    /// Parses and validates `text`; throws `LineageError.invalidRevision` for anything that is not
    /// a well-formed spec (control characters, `..`, shell metacharacters, over-long input).
    public init(parsing text: String) throws {
        guard !text.isEmpty else { throw LineageError.invalidRevision("empty revision spec") }
        guard text.utf8.count <= Self.maxLength else {
            throw LineageError.invalidRevision("revision spec is \(text.utf8.count) bytes; the limit is \(Self.maxLength)")
        }
        guard text.unicodeScalars.allSatisfy({ $0.value > 0x20 && $0.value < 0x7f }) else {
            throw LineageError.invalidRevision("revision spec contains spaces, control or non-ASCII characters")
        }
        if text.utf8.count == 40, text.allSatisfy(\.isHexDigit) {
            model = nil
            selector = .revision(text.lowercased())
            return
        }
        let name: Substring
        if let at = text.firstIndex(where: { $0 == "@" || $0 == "#" }) {
            name = text[..<at]
            let rest = String(text[text.index(after: at)...])
            if text[at] == "#" {
                guard Self.isValidStage(rest) else { throw LineageError.invalidRevision("invalid stage name in '\(text)'") }
                selector = .stage(rest)
            } else {
                guard Self.isValidRevision(rest) else { throw LineageError.invalidRevision("invalid revision in '\(text)'") }
                selector = .revision(rest)
            }
        } else {
            name = Substring(text)
            selector = .latest
        }
        guard Self.isValidModelName(name) else { throw LineageError.invalidRevision("invalid model name in '\(text)'") }
        model = String(name)
    }

    public var description: String {
        switch selector {
        case .latest: return model ?? ""
        case .revision(let rev): return model.map { "\($0)@\(rev)" } ?? rev
        case .stage(let stage): return "\(model ?? "")#\(stage)"
        }
    }

    /// Model names as GTO allows them, plus `/` and `:` for artifacts in sub-folders.
    static func isValidModelName(_ name: Substring) -> Bool {
        guard let first = name.first, first.isLetter || first.isNumber else { return false }
        return !name.contains("..") && !name.hasSuffix("/")
            && name.allSatisfy { $0.isLetter || $0.isNumber || "-_./:=".contains($0) }
    }

    /// Git ref names and hex ids (GTO tag names contain `@` and `#`): no `..`, no braces (so no
    /// `@{…}` reflog syntax), no shell or glob metacharacters.
    static func isValidRevision(_ rev: String) -> Bool {
        guard let first = rev.first, first.isLetter || first.isNumber else { return false }
        return !rev.contains("..") && !rev.contains("//") && !rev.hasSuffix("/") && !rev.hasSuffix(".lock")
            && rev.allSatisfy { $0.isLetter || $0.isNumber || "-_./+@#".contains($0) }
    }

    static func isValidStage(_ stage: String) -> Bool {
        guard let first = stage.first, first.isLetter || first.isNumber else { return false }
        return stage.allSatisfy { $0.isLetter || $0.isNumber || "-_".contains($0) }
    }

    /// `v1.2.0`: a GTO version, looked up as the tag `<model>@v1.2.0`.
    public static func isSemver(_ rev: String) -> Bool {
        guard rev.hasPrefix("v") else { return false }
        // `v`, `v-`, `v+` have no core: split would give no element (no index is taken here).
        let core = rev.dropFirst().prefix { $0 != "-" && $0 != "+" }
        let parts = core.split(separator: ".", omittingEmptySubsequences: false)
        return parts.count == 3 && parts.allSatisfy { !$0.isEmpty && $0.allSatisfy(\.isNumber) }
    }
}
