import GraphQL
import Synchronization

/// Parsed and validated documents by query text. Clients send the same few queries over and
/// over; parsing and running every validation rule again for each is most of a small request's
/// cost. A document is stored only once it validated, so a hit can run at once.
final class DocumentCache: Sendable {
    private struct Entry {
        let document: Document
        /// The document met the limits whatever the request's variables (no `first` came from a
        /// variable): a hit needs no check at all.
        let admittedForAnyVariables: Bool
    }
    private let documents = Mutex<[String: Entry]>([:])
    private let capacity: Int

    init(capacity: Int = 512) { self.capacity = capacity }

    /// The document of `query`, or its validation errors. A text not seen before goes through
    /// `screen` before it is parsed (the parser recurses); `admit` sees a document before it is
    /// validated (validation rules are not all linear in the document's size), with `isNew`
    /// true, and again on later hits unless it answered that its verdict holds for any variables.
    /// Either throws to refuse. Throws a `GraphQLError` when the text does not parse.
    func document(
        for query: String, schema: GraphQLSchema, screen: (String) throws -> Void,
        admit: (_ document: Document, _ isNew: Bool) throws -> Bool
    ) throws -> Result<Document, GraphQLErrors> {
        if let cached = documents.withLock({ $0[query] }) {
            if !cached.admittedForAnyVariables { _ = try admit(cached.document, false) }
            return .success(cached.document)
        }
        try screen(query)
        let document = try parse(source: Source(body: query, name: "GraphQL request"))
        let anyVariables = try admit(document, true)
        let errors = validate(schema: schema, ast: document)
        guard errors.isEmpty else { return .failure(GraphQLErrors(errors)) }
        documents.withLock { documents in
            // Clients with unbounded distinct queries (ids inlined in the text) must not grow
            // this without limit: start over when full.
            if documents.count >= capacity { documents.removeAll(keepingCapacity: true) }
            documents[query] = Entry(document: document, admittedForAnyVariables: anyVariables)
        }
        return .success(document)
    }
}
