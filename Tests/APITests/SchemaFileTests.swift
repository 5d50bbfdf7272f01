import Foundation
import GraphQL
import OrderedCollections
import Testing

@testable import API

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

    /// Every root field has an entry in the role table, and the table names no other field: a new
    /// operation cannot be added without deciding who may run it.
    @Test func everyRootFieldHasItsPermissions() throws {
        let schema = try SchemaBuilder.build()
        let roots = [("Query", schema.queryType), ("Mutation", schema.mutationType), ("Subscription", schema.subscriptionType)]
        for (name, type) in roots {
            let fields = Set(try type.map { try $0.fields().keys.map { $0 } } ?? [])
            let listed = Set(OperationAccess.rootFields[name]?.keys.map { $0 } ?? [])
            #expect(fields == listed, "\(name): the schema has \(fields.sorted()), the role table \(listed.sorted())")
            for field in fields { #expect(OperationAccess.rootFields[name]?[field]?.isEmpty == false) }
        }
    }
}
