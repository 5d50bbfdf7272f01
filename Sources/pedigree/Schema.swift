import API
import ArgumentParser

import func GraphQL.printSchema

struct Schema: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print the GraphQL schema (SDL), as in schema.graphql.")

    func run() async throws {
        print(printSchema(schema: try SchemaBuilder.build()))
    }
}
