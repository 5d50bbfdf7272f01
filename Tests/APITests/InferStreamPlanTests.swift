import Foundation
import GraphQL
import Serving
import Testing

@testable import API

/// The token fast path writes what a full GraphQL execution of the same event writes.
@Suite struct InferStreamPlanTests {
    let schema: GraphQLSchema

    init() throws { schema = try SchemaBuilder.build() }

    private func plan(_ query: String, variables: [String: Map] = [:]) throws -> (InferStreamPlan?, Document) {
        let document = try parse(source: Source(body: query))
        #expect(validate(schema: schema, ast: document).isEmpty)
        return (InferStreamPlan(document: document, operationName: nil, variables: variables), document)
    }

    @Test(arguments: [
        "subscription { inferStream(input: {modelRevisionID: \"m\", prompt: \"p\"}) { token payload { id } } }",
        "subscription S { s: inferStream(input: {modelRevisionID: \"m\", prompt: \"p\"}) { __typename t: token p: payload { id } } }",
        "subscription { inferStream(input: {modelRevisionID: \"m\", prompt: \"p\"}) { payload { id } token } }",
    ])
    func tokenEventsMatchGraphQLExecution(query: String) async throws {
        let (plan, document) = try plan(query)
        let fast = try #require(plan)
        for text in ["Paris", "quote \" backslash \\ newline \n tab \t bell \u{7} é 😀", ""] {
            let executed = try await GraphQL.execute(
                schema: schema, documentAST: document, rootValue: InferenceService.Event.token(text), context: ())
            let expected = try JSONSerialization.jsonObject(with: try GraphQLJSONEncoder().encode(executed)) as? NSDictionary
            let written = try JSONSerialization.jsonObject(with: try #require(fast.tokenResult(text))) as? NSDictionary
            #expect(written == expected)
            #expect(written != nil)
        }
    }

    @Test func variablesAreSubstitutedIntoTheInput() throws {
        let (plan, _) = try plan(
            "subscription($input: InferenceInput!) { inferStream(input: $input) { token } }",
            variables: ["input": ["modelRevisionID": "tiny@main", "prompt": "hi"]])
        #expect(plan?.input["modelRevisionID"].string == "tiny@main")
    }

    @Test func selectionsThePlanDoesNotCoverFallBack() throws {
        let (withFragment, _) = try plan(
            "subscription { inferStream(input: {modelRevisionID: \"m\", prompt: \"p\"}) { ... on InferenceEvent { token } } }")
        #expect(withFragment != nil && withFragment?.tokenResult("x") == nil)
        let (withDirective, _) = try plan(
            "subscription { inferStream(input: {modelRevisionID: \"m\", prompt: \"p\"}) { token @include(if: true) } }")
        #expect(withDirective?.tokenResult("x") == nil)
    }
}
