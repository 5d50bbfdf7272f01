import Foundation
import Testing

@testable import Evaluation

@Suite struct EvaluationSetTests {
    @Test func goodLinesAreItemsAndBadLinesAreReportedByNumber() throws {
        let jsonl = """
            {"prompt": "2+2=", "expected": "4"}
            not json
            {"id": "q3", "messages": [{"role": "user", "content": "Capital of France?"}], "expected": ["Paris", "paris, France"]}

            {"prompt": "", "expected": "x"}
            {"prompt": "a", "messages": []}
            {"id": "q3", "prompt": "again"}
            {"id": 7, "prompt": "structured", "expected": {"a": [1, true, null]}}
            {"prompt": "no expected"}
            """
        let set = try EvaluationSet(jsonl: Data(jsonl.utf8))
        #expect(set.items.map(\.id) == ["1", "q3", "7", "9"])
        #expect(set.items.map(\.line) == [1, 3, 8, 9])
        #expect(set.errors.map(\.line) == [2, 5, 6, 7])
        #expect(set.errors[3].reason.contains("used twice"))
        #expect(set.items[1].acceptable == ["Paris", "paris, France"])
        #expect(set.items[2].acceptable == [#"{"a":[1,true,null]}"#])
        #expect(set.items[3].acceptable.isEmpty)
    }

    @Test func aSetLargerThanTheLimitIsRefused() {
        var data = Data()
        for index in 0...EvaluationSet.maxItems { data += Data(#"{"id": \#(index), "prompt": "x"}"#.utf8) + Data("\n".utf8) }
        #expect(throws: EvaluationError.self) { try EvaluationSet(jsonl: data) }
    }
}

@Suite struct ScorerTests {
    func item(_ expected: JSONValue?) -> EvaluationItem { EvaluationItem(id: "1", line: 1, input: .prompt("p"), expected: expected) }
    func answer(_ text: String) -> Scorer.Answer { Scorer.Answer(text: text, timeToFirstTokenMs: 12.5, tokensPerSecond: 80) }

    @Test func exactAndContainsWithTheirNormalisations() throws {
        let paris = item(.array([.string("Paris"), .string("City of Light")]))
        #expect(try Scorer(parsing: "exact").score(answer("  Paris\n"), item: paris) == 1)
        #expect(try Scorer(parsing: "exact").score(answer("paris"), item: paris) == 0)
        #expect(try Scorer(parsing: "exact:lower,punctuation").score(answer("paris!"), item: paris) == 1)
        #expect(try Scorer(parsing: "exact:lower,collapse").score(answer("city   of\tlight"), item: paris) == 1)
        #expect(try Scorer(parsing: "contains").score(answer("It is Paris."), item: paris) == 1)
        #expect(try Scorer(parsing: "contains:lower").score(answer("it is PARIS."), item: paris) == 1)
        #expect(try Scorer(parsing: "contains").score(answer("London"), item: paris) == 0)
        #expect(try Scorer(parsing: "exact").score(answer("x"), item: item(nil)) == nil)
    }

    @Test func regexJSONNumericAndMeasures() throws {
        #expect(try Scorer(parsing: #"regex:^\d+$"#).score(answer("42"), item: item(nil)) == 1)
        #expect(try Scorer(parsing: #"regex:^\d+$"#).score(answer("forty-two"), item: item(nil)) == 0)
        #expect(try Scorer(parsing: "regex").score(answer("abc123"), item: item(.string("[0-9]{3}"))) == 1)
        #expect(try Scorer(parsing: "json").score(answer(#" {"a": 1} "#), item: item(nil)) == 1)
        #expect(try Scorer(parsing: "json").score(answer("{a: 1}"), item: item(nil)) == 0)
        #expect(try Scorer(parsing: "numeric:0.01").score(answer("about 3.14159 or so"), item: item(.number(3.14))) == 1)
        #expect(try Scorer(parsing: "numeric").score(answer("-7 apples"), item: item(.string("-7"))) == 1)
        #expect(try Scorer(parsing: "numeric").score(answer("none"), item: item(.number(1))) == 0)
        #expect(try Scorer(parsing: "length").score(answer("héllo🙂"), item: item(nil)) == 6)
        #expect(try Scorer(parsing: "ttft").score(answer(""), item: item(nil)) == 12.5)
        #expect(try Scorer(parsing: "tps").score(answer(""), item: item(nil)) == 80)
    }

    @Test func tokenF1IsSQuADs() throws {
        // prediction tokens [cat, sat, on, mat] (articles dropped), truth [cat, sat]: p 0.5, r 1, F1 2/3.
        let score = try #require(try Scorer(parsing: "f1").score(answer("The cat sat on the mat."), item: item(.string("a cat sat"))))
        #expect(abs(score - 2.0 / 3.0) < 1e-12)
        #expect(try Scorer(parsing: "f1").score(answer("dog"), item: item(.array([.string("cat"), .string("Dog!")]))) == 1)
        #expect(Scorer.tokenF1("the", "a") == 1)  // both empty once articles go
    }

    @Test(arguments: ["bogus", "exact:upper", "json:x", "numeric:-1", "regex:(", "f1:2"])
    func unknownScorersAreRefused(spec: String) {
        #expect(throws: EvaluationError.self) { try Scorer(parsing: spec) }
    }

    @Test func specsRoundTrip() throws {
        for spec in [
            "exact", "exact:lower,collapse,punctuation", "contains:lower", "regex:^a$", "json", "numeric:0.5", "f1", "length", "ttft", "tps",
        ] {
            #expect(try Scorer(parsing: spec).description == spec)
        }
    }

    @Test func aSummaryIsTheMeanOfTheItemsScored() {
        let summary = ScorerSummary(scorer: "exact", scores: [1, 0, nil, 1], failures: 2)
        #expect(summary.mean == 2.0 / 3.0 && summary.count == 3 && summary.failures == 2)
        #expect(ScorerSummary(scorer: "exact", scores: [nil], failures: 0).mean == nil)
    }
}

@Suite struct HostileSetTests {
    /// A repository's file is untrusted: deep nesting, invalid UTF-8, NUL bytes and odd values are
    /// bad lines (reported), never a trap.
    @Test func hostileLinesAreBadLinesNotTraps() throws {
        var data = Data(String(repeating: "[", count: 100_000).utf8) + Data("\n".utf8)
        data += Data(#"{"prompt": "ok", "expected": "#.utf8) + Data(String(repeating: "[", count: 5_000).utf8) + Data("\n".utf8)
        data += Data([0xFF, 0xFE, 0x00, 0x0A])
        data += Data(#"{"prompt": "a\u0000b", "id": 1.5}"#.utf8) + Data("\n".utf8)
        data += Data(#"{"prompt": 7}"#.utf8) + Data("\n".utf8)
        data += Data(#"{"messages": [{"role": "user", "content": 3}]}"#.utf8) + Data("\n".utf8)
        data += Data(#"{"prompt": "fine", "id": "last"}"#.utf8)
        let set = try EvaluationSet(jsonl: data)
        #expect(set.items.map(\.id) == ["last"])
        #expect(set.errors.map(\.line) == [1, 2, 3, 4, 5, 6])
    }
}

struct JudgeAndSchemaScorerTests {
    @Test func verdictsReadTheFirstWordOrANumber() {
        #expect(Scorer.verdict(in: "Yes, it is.") == 1)
        #expect(Scorer.verdict(in: " no") == 0)
        #expect(Scorer.verdict(in: "Incorrect.") == 0)
        #expect(Scorer.verdict(in: "I'd say 0.25") == 0.25)
        #expect(Scorer.verdict(in: "Score: 7/10") == 0.7)
        #expect(Scorer.verdict(in: "maybe") == nil)
        #expect(Scorer.verdict(in: "42") == nil)
    }

    @Test func theJudgePromptReplacesEachPlaceholderOnce() throws {
        let set = try EvaluationSet(jsonl: Data(#"{"id": "a", "prompt": "Capital of {answer}?", "expected": ["Paris", "paris"]}"#.utf8))
        let prompt = Scorer.judgePrompt("Q: {prompt} E: {expected} A: {answer} {other}", item: set.items[0], answer: "{prompt}")
        #expect(prompt == "Q: Capital of {answer}? E: Paris | paris A: {prompt} {other}")
    }

    @Test func schemaScorerRefusesWhatItDoesNotCheck() throws {
        #expect(throws: EvaluationError.self) { try Scorer(parsing: ##"schema:{"$ref": "#/a"}"##) }
        #expect(throws: EvaluationError.self) { try Scorer(parsing: #"schema:{"type": "thing"}"#) }
        #expect(throws: EvaluationError.self) { try Scorer(parsing: "schema:not json") }
        let scorer = try Scorer(parsing: #"schema:{"type": "integer", "minimum": 2}"#)
        #expect(scorer.description == #"schema:{"type": "integer", "minimum": 2}"#)
        let item = try EvaluationSet(jsonl: Data(#"{"prompt": "x"}"#.utf8)).items[0]
        func score(_ text: String) -> Double? { scorer.score(Scorer.Answer(text: text, timeToFirstTokenMs: 0, tokensPerSecond: nil), item: item) }
        #expect(score(" 3 ") == 1)
        #expect(score("3.0") == 1)
        #expect(score("1") == 0)
        #expect(score("2.5") == 0)
        #expect(score("three") == 0)
    }
}
