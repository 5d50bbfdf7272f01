import Foundation

/// How an answer is scored. Each gives a number per item (1 or 0 for the checks, a fraction for
/// token F1, a measure for length and timings) or none (an item without `expected`, for the
/// scorers that need one); the summary is the mean over the items scored. Written as the CLI and
/// GraphQL take them: `exact`, `exact:lower,collapse,punctuation`, `contains`, `regex:PATTERN`,
/// `json`, `schema:{…}`, `numeric:0.01`, `f1`, `length`, `ttft`, `tps`.
public enum Scorer: Sendable, Hashable, CustomStringConvertible {
    /// The answer equals an acceptable one, both normalised.
    case exact(Normalisation)
    /// An acceptable answer, normalised, is in the answer, normalised.
    case contains(Normalisation)
    /// The pattern (or, with none, each acceptable answer read as a pattern) matches somewhere.
    case regex(String?)
    /// The answer, trimmed, is JSON.
    case jsonValid
    /// The answer, trimmed, is JSON valid against a JSON Schema (written as given: `source`).
    case schema(JSONSchemaCheck, source: String)
    /// The first number in the answer is within `tolerance` of the expected number.
    case numeric(tolerance: Double)
    /// SQuAD's token F1: lowercased, punctuation and articles removed, the best over the
    /// acceptable answers.
    case tokenF1
    /// The answer's length in Unicode scalars (Python's `len`).
    case length
    /// Another model revision of the repository (`judge:SPEC`) asked, with a template, whether the
    /// answer is right; its verdict (`verdict(in:)`) is the score. The evaluator asks it (it
    /// generates, so `score` gives nil for it) and records the judge's answers too.
    case judge(spec: String)
    /// Milliseconds to the first token.
    case timeToFirstToken
    /// Decode tokens per second.
    case tokensPerSecond

    /// Text folded before comparing: `trim` always; `lower`, `collapse` (whitespace runs → one
    /// space) and `punctuation` (ASCII punctuation removed) on request.
    public struct Normalisation: Sendable, Hashable, OptionSet {
        public let rawValue: Int
        public init(rawValue: Int) { self.rawValue = rawValue }
        public static let lower = Normalisation(rawValue: 1)
        public static let collapse = Normalisation(rawValue: 2)
        public static let punctuation = Normalisation(rawValue: 4)

        static let names: [(String, Normalisation)] = [("lower", .lower), ("collapse", .collapse), ("punctuation", .punctuation)]

        public func apply(_ text: String) -> String {
            var text = text
            if contains(.lower) { text = text.lowercased() }
            if contains(.punctuation) { text = String(text.unicodeScalars.filter { !Scorer.isASCIIPunctuation($0) }.map(Character.init)) }
            if contains(.collapse) { text = text.split(whereSeparator: \.isWhitespace).joined(separator: " ") }
            return text.trimmingCharacters(in: .whitespacesAndNewlines)
        }

        var names: [String] { Self.names.filter { contains($0.1) }.map(\.0) }
    }

    /// What the scorer reads of an answer.
    public struct Answer: Sendable {
        public let text: String
        public let timeToFirstTokenMs: Double
        public let tokensPerSecond: Double?

        public init(text: String, timeToFirstTokenMs: Double, tokensPerSecond: Double?) {
            self.text = text
            self.timeToFirstTokenMs = timeToFirstTokenMs
            self.tokensPerSecond = tokensPerSecond
        }
    }

    /// The scorer a name stands for (`exact:lower,trim`); `badScorer` for anything else.
    public init(parsing spec: String) throws {
        let (name, argument) = spec.firstIndex(of: ":").map { (String(spec[..<$0]), String(spec[spec.index(after: $0)...])) } ?? (spec, nil)
        func normalisation() throws -> Normalisation {
            var options: Normalisation = []
            for word in (argument ?? "").split(separator: ",").map(String.init) where word != "trim" {
                guard let option = Normalisation.names.first(where: { $0.0 == word })?.1 else {
                    throw EvaluationError.badScorer("\(word) is not a normalisation (lower, collapse, punctuation, trim)")
                }
                options.insert(option)
            }
            return options
        }
        func none() throws {
            guard argument == nil else { throw EvaluationError.badScorer("\(name) takes no argument") }
        }
        switch name {
        case "exact": self = .exact(try normalisation())
        case "contains": self = .contains(try normalisation())
        case "regex":
            if let argument {
                guard (try? NSRegularExpression(pattern: argument)) != nil, argument.utf8.count <= 1024 else {
                    throw EvaluationError.badScorer("regex:\(argument) is not a regular expression (at most 1024 bytes)")
                }
            }
            self = .regex(argument)
        case "json":
            try none()
            self = .jsonValid
        case "schema":
            guard let argument, argument.utf8.count <= 64 << 10,
                let parsed = try? JSONSerialization.jsonObject(with: Data(argument.utf8), options: [.fragmentsAllowed]),
                let schema = JSONValue(parsed)
            else { throw EvaluationError.badScorer("schema takes a JSON Schema as JSON (schema:{\"type\":\"object\"}), at most 64 KiB") }
            self = .schema(try JSONSchemaCheck(schema), source: argument)
        case "numeric":
            guard let tolerance = Double(argument ?? "0"), tolerance >= 0, tolerance.isFinite else {
                throw EvaluationError.badScorer("numeric takes a tolerance of 0 or more (numeric:0.01)")
            }
            self = .numeric(tolerance: tolerance)
        case "f1":
            try none()
            self = .tokenF1
        case "judge":
            guard let argument, !argument.isEmpty, argument.utf8.count <= 256 else {
                throw EvaluationError.badScorer("judge takes a model revision spec of the repository (judge:smollm2-135m@v1.1.0)")
            }
            self = .judge(spec: argument)
        case "length":
            try none()
            self = .length
        case "ttft":
            try none()
            self = .timeToFirstToken
        case "tps":
            try none()
            self = .tokensPerSecond
        default:
            throw EvaluationError.badScorer("\(name) is not a scorer (exact, contains, regex, json, schema, numeric, f1, judge, length, ttft, tps)")
        }
    }

    public var description: String {
        switch self {
        case .exact(let options): options.isEmpty ? "exact" : "exact:" + options.names.joined(separator: ",")
        case .contains(let options): options.isEmpty ? "contains" : "contains:" + options.names.joined(separator: ",")
        case .regex(let pattern): pattern.map { "regex:\($0)" } ?? "regex"
        case .jsonValid: "json"
        case .schema(_, let source): "schema:" + source
        case .numeric(let tolerance): "numeric:" + String(format: "%g", tolerance)
        case .tokenF1: "f1"
        case .judge(let spec): "judge:" + spec
        case .length: "length"
        case .timeToFirstToken: "ttft"
        case .tokensPerSecond: "tps"
        }
    }

    /// Which way is better, for comparing two evaluations item by item.
    public enum Direction: Sendable {
        /// Checks and F1: a higher score is better.
        case higherIsBetter
        /// Length: a change, neither better nor worse.
        case neither
        /// Timings: they differ from run to run, so they are compared as summaries only.
        case measurement
    }

    public var direction: Direction {
        switch self {
        case .exact, .contains, .regex, .jsonValid, .schema, .numeric, .tokenF1, .judge: .higherIsBetter
        case .length: .neither
        case .timeToFirstToken, .tokensPerSecond: .measurement
        }
    }

    /// Whether the scorer needs `expected` (an item without it is not scored by it).
    public var needsExpected: Bool {
        switch self {
        case .exact, .contains, .numeric, .tokenF1: true
        case .regex(let pattern): pattern == nil
        case .jsonValid, .schema, .judge, .length, .timeToFirstToken, .tokensPerSecond: false
        }
    }

    /// The item's score, or nil when this scorer does not apply to it.
    public func score(_ answer: Answer, item: EvaluationItem) -> Double? {
        let acceptable = item.acceptable
        if needsExpected, acceptable.isEmpty { return nil }
        switch self {
        case .exact(let options):
            let said = options.apply(answer.text)
            return acceptable.contains { options.apply($0) == said } ? 1 : 0
        case .contains(let options):
            let said = options.apply(answer.text)
            return acceptable.contains { said.contains(options.apply($0)) } ? 1 : 0
        case .regex(let pattern):
            let patterns = pattern.map { [$0] } ?? acceptable
            let range = NSRange(answer.text.startIndex..., in: answer.text)
            return patterns.contains { (try? NSRegularExpression(pattern: $0))?.firstMatch(in: answer.text, range: range) != nil } ? 1 : 0
        case .jsonValid:
            let trimmed = answer.text.trimmingCharacters(in: .whitespacesAndNewlines)
            return (try? JSONSerialization.jsonObject(with: Data(trimmed.utf8), options: [.fragmentsAllowed])) != nil ? 1 : 0
        case .schema(let check, _):
            let trimmed = answer.text.trimmingCharacters(in: .whitespacesAndNewlines)
            guard let parsed = try? JSONSerialization.jsonObject(with: Data(trimmed.utf8), options: [.fragmentsAllowed]),
                let value = JSONValue(parsed)
            else { return 0 }
            return check.validates(value) ? 1 : 0
        case .numeric(let tolerance):
            let expected: Double?
            switch item.expected {
            case .number(let value)?: expected = value
            case .string(let text)?: expected = Double(text.trimmingCharacters(in: .whitespaces))
            default: expected = nil
            }
            guard let expected else { return nil }
            guard let said = Self.firstNumber(in: answer.text) else { return 0 }
            return abs(said - expected) <= tolerance ? 1 : 0
        case .tokenF1:
            return acceptable.map { Self.tokenF1(answer.text, $0) }.max()
        case .judge:
            return nil
        case .length:
            return Double(answer.text.unicodeScalars.count)
        case .timeToFirstToken:
            return answer.timeToFirstTokenMs
        case .tokensPerSecond:
            return answer.tokensPerSecond
        }
    }

    /// What a judge is asked unless the evaluation gives a template: `{prompt}`, `{expected}` and
    /// `{answer}` are replaced by the item's question, its acceptable answers and the answer.
    public static let defaultJudgeTemplate = """
        You are grading an answer to a question.
        Question: {prompt}
        Reference answer: {expected}
        Answer to grade: {answer}
        Is the answer to grade correct? Reply with one word: yes or no.
        """

    /// The judge's prompt for `answer` to `item` with `template`.
    public static func judgePrompt(_ template: String, item: EvaluationItem, answer: String) -> String {
        let question: String =
            switch item.input {
            case .prompt(let text): text
            case .messages(let messages): messages.filter { $0.role == "user" }.map(\.content).joined(separator: "\n")
            }
        let expected = item.acceptable.isEmpty ? "(none)" : item.acceptable.joined(separator: " | ")
        // One pass over the template: a placeholder inside a replacement is text, not a placeholder.
        var result = ""
        var rest = Substring(template)
        let values = ["{prompt}": question, "{expected}": expected, "{answer}": answer]
        while let open = rest.firstIndex(of: "{") {
            result += rest[..<open]
            let tail = rest[open...]
            if let (key, value) = values.first(where: { tail.hasPrefix($0.key) }) {
                result += value
                rest = tail.dropFirst(key.count)
            } else {
                result += "{"
                rest = tail.dropFirst()
            }
        }
        return result + rest
    }

    /// A judge's verdict: 1 for yes (correct, true, right), 0 for no (incorrect, false, wrong), by
    /// the first word; else the first number, read as a fraction (0–1) or out of ten (up to 10);
    /// nil when it says none of these.
    public static func verdict(in text: String) -> Double? {
        let words = text.lowercased().split { !$0.isLetter && !$0.isNumber && $0 != "." }.map(String.init)
        if let first = words.first?.trimmingCharacters(in: CharacterSet(charactersIn: ".")) {
            if ["yes", "correct", "true", "right"].contains(first) { return 1 }
            if ["no", "incorrect", "false", "wrong"].contains(first) { return 0 }
        }
        guard let number = firstNumber(in: text), number >= 0 else { return nil }
        return number <= 1 ? number : number <= 10 ? number / 10 : nil
    }

    static func isASCIIPunctuation(_ scalar: Unicode.Scalar) -> Bool {
        scalar.isASCII && "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~".unicodeScalars.contains(scalar)
    }

    /// The first decimal number written in `text` (`-3`, `2.5`, `1e3`).
    static func firstNumber(in text: String) -> Double? {
        guard let expression = try? NSRegularExpression(pattern: #"-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?"#),
            let match = expression.firstMatch(in: text, range: NSRange(text.startIndex..., in: text)),
            let range = Range(match.range, in: text)
        else { return nil }
        return Double(text[range])
    }

    /// SQuAD v1.1's F1: tokens of the normalised texts (lowercase, no punctuation, no articles),
    /// precision and recall over the common tokens counted with multiplicity.
    static func tokenF1(_ said: String, _ expected: String) -> Double {
        func tokens(_ text: String) -> [String] {
            let kept = String(text.lowercased().unicodeScalars.filter { !isASCIIPunctuation($0) }.map(Character.init))
            return kept.split(whereSeparator: \.isWhitespace).map(String.init).filter { !["a", "an", "the"].contains($0) }
        }
        let prediction = tokens(said)
        let truth = tokens(expected)
        if prediction.isEmpty || truth.isEmpty { return prediction == truth ? 1 : 0 }
        var counts: [String: Int] = [:]
        for token in truth { counts[token, default: 0] += 1 }
        var common = 0
        for token in prediction where (counts[token] ?? 0) > 0 {
            counts[token]! -= 1
            common += 1
        }
        guard common > 0 else { return 0 }
        let precision = Double(common) / Double(prediction.count)
        let recall = Double(common) / Double(truth.count)
        return 2 * precision * recall / (precision + recall)
    }
}

/// A scorer's result over an evaluation: the mean of the items it scored, how many it scored,
/// and how many items failed to run (not scored).
public struct ScorerSummary: Sendable, Hashable {
    public let scorer: String
    public let mean: Double?
    public let count: Int
    public let failures: Int

    /// The summary of `scores` (nil: the scorer did not apply), `failures` items having failed.
    public init(scorer: String, scores: [Double?], failures: Int) {
        let scored = scores.compactMap { $0 }
        self.scorer = scorer
        self.count = scored.count
        self.mean = scored.isEmpty ? nil : scored.reduce(0, +) / Double(scored.count)
        self.failures = failures
    }
}
