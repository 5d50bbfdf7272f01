import GraphQL
import Testing

@testable import API
@testable import GraphQLLimits

/// Documents are measured before validation: depth, fields, cost and mutation roots, with
/// fragments expanded and the request's variables applied.
@Suite struct QueryLimitsTests {
    let schema: GraphQLSchema
    let shapes: FieldShapes

    init() throws {
        schema = try SchemaBuilder.build()
        shapes = try FieldShapes(schema)
    }

    private func check(_ query: String, variables: [String: Map] = [:], limits: QueryLimits = QueryLimits()) throws {
        try limits.checkText(query)
        let document = try parse(source: Source(body: query))
        try QueryCost.check(document, operationName: nil, variables: variables, limits: limits, shapes: shapes)
    }

    private func refusal(_ query: String, variables: [String: Map] = [:], limits: QueryLimits = QueryLimits()) -> String? {
        do {
            try check(query, variables: variables, limits: limits)
            return nil
        } catch let error as QueryTooComplex {
            return error.message
        } catch {
            Issue.record("unexpected \(error)")
            return nil
        }
    }

    @Test func nestingCountsBracketsOutsideStringsAndComments() {
        var limits = QueryLimits()
        limits.maxNesting = 4
        #expect(throws: QueryTooComplex.self) { try limits.checkText("{a{b{c{d{e}}}}}") }
        #expect(throws: QueryTooComplex.self) { try limits.checkText("{ a(x: [[[[1]]]]) }") }
        // Brackets inside strings, escaped quotes, block strings and comments do not count.
        #expect(throws: Never.self) { try limits.checkText(#"{ a(x: "{{{{{ \" {{{{") }"#) }
        #expect(throws: Never.self) { try limits.checkText("{ a(x: \"\"\"{{{{{ \\\"\"\" {{{{{\"\"\") }") }
        #expect(throws: Never.self) { try limits.checkText("{ a # {{{{{{{{\n }") }
        #expect(throws: Never.self) { try limits.checkText(#"{ a(x: "") { b { c } } }"#) }
        // Unbalanced text is the parser's to report.
        #expect(throws: Never.self) { try limits.checkText("}}}}}{{{") }
    }

    @Test func depthFollowsFieldsNotFragments() {
        var limits = QueryLimits()
        limits.maxDepth = 3
        #expect(refusal("{ models { latest { id } } }", limits: limits) == nil)
        #expect(refusal("{ models { latest { commit { sha } } } }", limits: limits)?.contains("deeper than 3") == true)
        // A fragment adds no depth of its own; its fields do.
        #expect(refusal("{ ...F } fragment F on Query { models { ...G } } fragment G on Model { latest { id } }", limits: limits) == nil)
        #expect(
            refusal("{ ...F } fragment F on Query { models { latest { ...G } } } fragment G on ModelRevision { commit { sha } }", limits: limits)
                != nil)
    }

    @Test func listsWeighByTheirPageSize() throws {
        var limits = QueryLimits()
        limits.maxCost = 1_000
        let page = "{ inferences(first: $n) { edges { node { prompt result } } } }"
        let query = "query($n: Int) " + page
        // 1 + n × (edges 1 + node 1 + prompt 10 + result 10): the edges list is the page, counted
        // once; leaves of large text count 10.
        #expect(refusal(query, variables: ["n": 45], limits: limits) == nil)
        #expect(refusal(query, variables: ["n": 46], limits: limits)?.contains("estimated cost") == true)
        #expect(refusal("{ inferences(first: 46) { edges { node { prompt result } } } }", limits: limits) != nil)
        // A list without `first` counts as defaultListSize elements.
        #expect(refusal("{ models { revisions { pipeline { deps { path } } } } }", limits: limits) == nil)
        limits.defaultListSize = 10
        #expect(refusal("{ models { revisions { pipeline { deps { path } } } } }", limits: limits) != nil)
    }

    @Test func namesAreCountedBeforeParsing() {
        var limits = QueryLimits()
        limits.maxFields = 10
        // 60 names pass; 61 do not. Names inside strings, comments, numbers (1e5) do not count.
        let sixty = (0..<30).map { "a\($0): b" }.joined(separator: " ")
        #expect(throws: Never.self) { try limits.checkText("{ \(sixty) }") }
        #expect(throws: QueryTooComplex.self) { try limits.checkText("{ \(sixty) c }") }
        let fiftyEight = (0..<29).map { "a\($0): b" }.joined(separator: " ")
        #expect(throws: Never.self) { try limits.checkText("{ \(fiftyEight) x: \"a b c d\" # e f g\n y: 1e5 }") }
    }

    @Test func fieldsCountAliasesAndFragmentExpansions() {
        var limits = QueryLimits()
        limits.maxFields = 100
        let aliases = (0..<101).map { "a\($0): repository { head }" }.joined(separator: " ")
        #expect(refusal("{ \(aliases) }", limits: limits)?.contains("more than 100 fields") == true)
        // Fragments that spread the next one twice: 2^30 expansions if counted naively.
        var fragments = (0..<30).map { "fragment F\($0) on Query { ...F\($0 + 1) ...F\($0 + 1) }" }
        fragments.append("fragment F30 on Query { ...Missing }")
        #expect(refusal("{ ...F0 } " + fragments.joined(separator: " "), limits: limits) != nil)
        // A fragment that spreads itself is expanded once per path (validation reports the cycle).
        #expect(refusal("{ ...A } fragment A on Query { ...B models { name } } fragment B on Query { ...A }", limits: limits) == nil)
    }

    @Test func mutationsHaveFewRootFields() {
        let infer = #"infer(input: {modelRevisionID: "m", prompt: "p"}) { id }"#
        let ten = (0..<10).map { "i\($0): \(infer)" }.joined(separator: " ")
        #expect(refusal("mutation { \(ten) }") == nil)
        #expect(refusal("mutation { \(ten) x: \(infer) }")?.contains("at most 10 root fields") == true)
        // Through a fragment too.
        #expect(refusal("mutation { ...M x: \(infer) } fragment M on Mutation { \(ten) }") != nil)
    }

    @Test func hostileNumbersDoNotTrap() {
        for value: Map in [.number(Number(Double.greatestFiniteMagnitude)), .number(Number(-1e300)), .string("9"), .null, .array([])] {
            _ = refusal("query($n: Int) { inferences(first: $n) { edges { cursor } } }", variables: ["n": value])
        }
        _ = refusal("{ inferences(first: 99999999999999999999999999) { edges { cursor } } }")
    }

    @Test func definitionsAlikeAreFound() throws {
        func problem(_ query: String) throws -> String? { DuplicateDefinitions.problem(in: try parse(source: Source(body: query))) }
        #expect(try problem("{ a } { a }") != nil)
        #expect(try problem("query R { a } query R { b }")?.contains("only one operation named") == true)
        #expect(try problem("{ ...A } fragment A on Q { a } fragment A on Q { b }")?.contains("only one fragment named") == true)
        #expect(try problem("{ ...A ...B } fragment A on Q { a { b } } fragment B on Q {  a  {b} }") != nil)
        #expect(try problem("query A { a } query B { b } fragment F on Q { c }") == nil)
    }
}
