import Access
import GraphQL

/// Who may run which root field: the role table of the schema, checked before anything runs, so
/// a request either runs whole or is refused with `FORBIDDEN` (403). Record-level rules (an
/// `infer` key sees its own inferences only) are the resolvers' and `InferenceService.replay`'s.
enum OperationAccess {
    /// The permissions that allow each root field (any one of them suffices). `SchemaFileTests`
    /// checks that every root field of the schema is listed.
    static let rootFields: [String: [String: [Permission]]] = [
        "Query": [
            "model": [.readLineage], "models": [.readLineage], "modelRevision": [.readLineage], "repository": [.readLineage],
            "transfers": [.administer], "loadedModels": [.readLineage], "compare": [.readLineage], "dataset": [.readLineage],
            "inference": [.readOwnInferences, .readAllInferences], "inferences": [.readOwnInferences, .readAllInferences],
            "evaluation": [.readOwnInferences, .readAllInferences], "evaluations": [.readOwnInferences, .readAllInferences],
            "compareEvaluations": [.readOwnInferences, .readAllInferences], "treeHead": [.readAllInferences],
            "consistencyProof": [.readAllInferences],
        ],
        "Mutation": [
            "refresh": [.administer], "pull": [.administer], "loadModel": [.administer], "unloadModel": [.administer],
            "infer": [.generate], "replay": [.readOwnInferences, .replayAny],
            "replayMany": [.readOwnInferences, .replayAny], "evaluate": [.generate], "cancelEvaluation": [.generate],
            "promote": [.administer], "signTreeHead": [.administer],
        ],
        "Subscription": ["inferStream": [.generate], "evaluationProgress": [.readOwnInferences, .readAllInferences]],
    ]

    /// Why `principal` may not run the chosen operation of `document`; nil when it may.
    static func refusal(_ document: Document, operationName: String?, principal: Principal) -> String? {
        // The open server's caller may do everything: no walk.
        if principal.role == .admin { return nil }
        guard let operation = GraphQLEndpoint.chosenOperation(document, operationName: operationName) else { return nil }
        let type: String
        switch operation.operation {
        case .query: type = "Query"
        case .mutation: type = "Mutation"
        case .subscription: type = "Subscription"
        }
        let fragments = Dictionary(
            document.definitions.compactMap { $0 as? FragmentDefinition }.map { ($0.name.value, $0) }, uniquingKeysWith: { first, _ in first })
        var visited = Set<String>()
        func check(_ selections: SelectionSet) -> String? {
            for selection in selections.selections {
                switch selection {
                case let field as Field:
                    let name = field.name.value
                    if name.hasPrefix("__") { continue }
                    let allowed = rootFields[type]?[name] ?? []
                    if !allowed.contains(where: principal.permits) {
                        return "a key with role \(principal.role.rawValue) may not run \(type).\(name)"
                    }
                case let inline as InlineFragment:
                    if let refusal = check(inline.selectionSet) { return refusal }
                case let spread as FragmentSpread:
                    let name = spread.name.value
                    guard visited.insert(name).inserted, let fragment = fragments[name] else { continue }
                    if let refusal = check(fragment.selectionSet) { return refusal }
                default:
                    continue
                }
            }
            return nil
        }
        return check(operation.selectionSet)
    }
}
