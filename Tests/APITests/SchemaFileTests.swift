import API
import Foundation
import GraphQL
import OrderedCollections
import Testing

struct SchemaFileTests {
    /// `schema.graphql` is the printed schema; regenerate it with `script/schema` when this fails.
    @Test func schemaFileMatchesCode() throws {
        let schema = try SchemaBuilder.build()
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let file = try String(contentsOf: root.appendingPathComponent("schema.graphql"), encoding: .utf8)
        #expect(file == printSchema(schema: schema) + "\n", "schema.graphql differs from the code: run script/schema")
    }

    /// Every field of every object type has a resolver (none silently falls back to reflection).
    @Test func everyFieldHasAResolver() throws {
        let schema = try SchemaBuilder.build()
        for (name, type) in schema.typeMap where !name.hasPrefix("__") {
            guard let object = type as? GraphQLObjectType else { continue }
            for (fieldName, field) in try object.fields() {
                #expect(field.resolve != nil, "\(name).\(fieldName) has no resolver")
            }
        }
    }
}
