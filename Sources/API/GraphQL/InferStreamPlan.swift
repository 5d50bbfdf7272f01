import Foundation
public import GraphQL
import Trust

/// A validated `inferStream` subscription read once from its document: the root field's
/// response name, its `input` argument, and how to write a token event without running GraphQL.
///
/// A subscription streams many token events and one payload. Running the full GraphQL execution
/// for each token (collect fields, resolve, complete, encode) costs more than the token itself,
/// so a token event whose selection is only `token`, `payload` (null then) and `__typename` is
/// written from this plan; the payload event, and any selection the plan does not cover
/// (fragments, directives), go through `GraphQL.execute` with the event as root value.
struct InferStreamPlan: Sendable {
    /// `data` key of the root field (its alias, or `inferStream`).
    let responseName: String
    /// The `input` argument with variables substituted.
    let input: Map
    /// The token event's fields in order, when the fast path applies; nil otherwise.
    let tokenFields: [(name: String, kind: FieldKind)]?

    enum FieldKind: Sendable {
        case token, payload, typename
    }

    /// The plan of a subscription document, or nil when it is not a plain `inferStream` operation
    /// (the caller then runs GraphQL's own subscribe).
    init?(document: Document, operationName: String?, variables: [String: Map]) {
        guard let operation = GraphQLEndpoint.chosenOperation(document, operationName: operationName),
            operation.operation == .subscription, operation.directives.isEmpty,
            operation.variableDefinitions.allSatisfy({ $0.defaultValue == nil }),
            operation.selectionSet.selections.count == 1, let root = operation.selectionSet.selections.first as? Field,
            root.name.value == "inferStream", root.directives.isEmpty,
            let argument = root.arguments.first(where: { $0.name.value == "input" }),
            let input = try? valueFromASTUntyped(valueAST: argument.value, variables: variables)
        else { return nil }
        responseName = root.alias?.value ?? root.name.value
        self.input = input
        var fields: [(name: String, kind: FieldKind)]? = []
        selections: for selection in root.selectionSet?.selections ?? [] {
            guard let field = selection as? Field, field.directives.isEmpty else {
                fields = nil
                break selections
            }
            let kind: FieldKind
            switch field.name.value {
            case "token": kind = .token
            case "payload": kind = .payload
            case "__typename": kind = .typename
            default:
                fields = nil
                break selections
            }
            fields?.append((field.alias?.value ?? field.name.value, kind))
        }
        tokenFields = fields?.isEmpty == false ? fields : nil
    }

    /// The JSON result of a token event, as GraphQL would write it; nil when the plan has no fast
    /// path for this selection.
    func tokenResult(_ text: String) -> Data? {
        guard let tokenFields else { return nil }
        var json = #"{"data":{"# + JSONText.quoted(responseName) + ":{"
        for (index, field) in tokenFields.enumerated() {
            if index > 0 { json += "," }
            json += JSONText.quoted(field.name) + ":"
            switch field.kind {
            case .token: json += JSONText.quoted(text)
            case .payload: json += "null"
            case .typename: json += #""InferenceEvent""#
            }
        }
        json += "}}}"
        return Data(json.utf8)
    }
}
