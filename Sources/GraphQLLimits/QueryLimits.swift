public import GraphQL
import OrderedCollections

/// A document over one of the limits; the API answers it `QUERY_TOO_COMPLEX` (400).
public struct QueryTooComplex: Error, Sendable, CustomStringConvertible {
    public let message: String
    init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// What a GraphQL document may ask for. A document over any limit is answered
/// `QUERY_TOO_COMPLEX` before it is validated or runs; the checks cost one pass over its text and
/// one over its selections, so a hostile document is cheap to refuse.
public struct QueryLimits: Sendable {
    /// Deepest selection (fields inside fields, fragments expanded).
    public var maxDepth = 16
    /// Fields selected, aliases and fragment expansions included.
    public var maxFields = 500
    /// Estimated work: each field counts once per time it can be resolved, so the fields under a
    /// list count once per expected element (`first`, or `defaultListSize`).
    public var maxCost = 50_000
    /// Root fields of a mutation (each may load a model or generate).
    public var maxMutationFields = 10
    /// The elements a list without `first` is expected to hold.
    public var defaultListSize = 5
    /// Brackets (`{`, `(`, `[`) open at once in the text: a document nested deeper is refused
    /// before the (recursive) parser reads it.
    public var maxNesting = 64

    public init() {}

    /// Fields whose resolution is work of its own (a spec resolved, a ledger read): they count
    /// this much instead of 1.
    public static let resolutionCost = 10
    static let resolvingFields: Set<String> = ["model", "modelRevision", "latest", "inference", "pull", "loadModel", "unloadModel"]

    // MARK: Text

    /// Refuses text nested deeper than `maxNesting`, skipping strings, block strings and comments.
    /// Unbalanced text is left to the parser, which reports it with a location.
    public func checkNesting(_ query: String) throws(QueryTooComplex) {
        var depth = 0
        var bytes = query.utf8.makeIterator()
        var pending: UInt8?
        func next() -> UInt8? {
            if let byte = pending {
                pending = nil
                return byte
            }
            return bytes.next()
        }
        while let byte = next() {
            switch byte {
            case UInt8(ascii: "{"), UInt8(ascii: "("), UInt8(ascii: "["):
                depth += 1
                if depth > maxNesting { throw QueryTooComplex("the document is nested deeper than \(maxNesting) brackets") }
            case UInt8(ascii: "}"), UInt8(ascii: ")"), UInt8(ascii: "]"):
                depth = max(0, depth - 1)
            case UInt8(ascii: "#"):
                while let skipped = next(), skipped != UInt8(ascii: "\n"), skipped != UInt8(ascii: "\r") {}
            case UInt8(ascii: "\""):
                // `""` is an empty string unless a third quote opens a block string.
                guard let second = next() else { return }
                if second == UInt8(ascii: "\"") {
                    guard let third = next() else { return }
                    if third == UInt8(ascii: "\"") {
                        skipBlockString(next)
                    } else {
                        pending = third
                    }
                } else {
                    pending = second
                    while let inside = next(), inside != UInt8(ascii: "\""), inside != UInt8(ascii: "\n") {
                        if inside == UInt8(ascii: "\\") { _ = next() }
                    }
                }
            default:
                continue
            }
        }
    }

    /// Skips to the end of a block string (`"""`, with `\"""` escaped).
    private func skipBlockString(_ next: () -> UInt8?) {
        var quotes = 0
        while let byte = next() {
            if byte == UInt8(ascii: "\\") {
                quotes = 0
                if next() == UInt8(ascii: "\"") { _ = next() == UInt8(ascii: "\"") && next() == UInt8(ascii: "\"") }
                continue
            }
            quotes = byte == UInt8(ascii: "\"") ? quotes + 1 : 0
            if quotes == 3 { return }
        }
    }
}

/// The field types of a schema, looked up while a document's cost is estimated: for each object
/// type, each field's named type and whether it is a list.
public struct FieldShapes: Sendable {
    struct Shape: Sendable {
        let typeName: String
        let isList: Bool
    }
    private let shapes: [String: [String: Shape]]
    let roots: [OperationType: String]

    public init(_ schema: GraphQLSchema) throws {
        var shapes: [String: [String: Shape]] = [:]
        for (name, type) in schema.typeMap {
            guard let object = type as? GraphQLObjectType else { continue }
            var fields: [String: Shape] = [:]
            for (fieldName, field) in try object.fields() {
                var type: any GraphQLType = field.type
                var isList = false
                while true {
                    if let nonNull = type as? GraphQLNonNull {
                        type = nonNull.ofType
                    } else if let list = type as? GraphQLList {
                        isList = true
                        type = list.ofType
                    } else {
                        break
                    }
                }
                fields[fieldName] = Shape(typeName: (type as? any GraphQLNamedType)?.name ?? "", isList: isList)
            }
            shapes[name] = fields
        }
        self.shapes = shapes
        var roots: [OperationType: String] = [:]
        roots[.query] = schema.queryType?.name
        roots[.mutation] = schema.mutationType?.name
        roots[.subscription] = schema.subscriptionType?.name
        self.roots = roots
    }

    func shape(of field: String, in type: String?) -> Shape? {
        guard let type else { return nil }
        return shapes[type]?[field]
    }
}

/// One document's size measured against the limits: depth, fields and cost, with fragments
/// expanded. It runs before validation, so it takes nothing for granted: unknown fields and
/// fragments count as plain fields, a fragment that spreads itself (directly or not) is expanded
/// once per path, and every selection visited counts against `maxFields`, so fragments that
/// spread each other twice over cannot multiply the work.
public struct QueryCost {
    let limits: QueryLimits
    let shapes: FieldShapes
    let fragments: [String: FragmentDefinition]
    let variables: [String: Map]
    private var selections = 0
    private var rootFields = 0
    private var expanding: [String] = []

    /// Checks the operation a request runs (the named one, else every operation in the document).
    public static func check(
        _ document: Document, operationName: String?, variables: [String: Map], limits: QueryLimits, shapes: FieldShapes
    ) throws(QueryTooComplex) {
        var fragments: [String: FragmentDefinition] = [:]
        var operations: [OperationDefinition] = []
        for definition in document.definitions {
            if let fragment = definition as? FragmentDefinition { fragments[fragment.name.value] = fragment }
            if let operation = definition as? OperationDefinition { operations.append(operation) }
        }
        var cost = QueryCost(limits: limits, shapes: shapes, fragments: fragments, variables: variables)
        for operation in operations where operationName == nil || operation.name?.value == operationName {
            cost.rootFields = 0
            let total = try cost.cost(of: operation.selectionSet, in: shapes.roots[operation.operation], depth: 1, listed: false)
            if operation.operation == .mutation, cost.rootFields > limits.maxMutationFields {
                throw QueryTooComplex(
                    "a mutation may have at most \(limits.maxMutationFields) root fields; this one has \(cost.rootFields)")
            }
            if total > limits.maxCost {
                throw QueryTooComplex("the query's estimated cost \(total) is over the limit of \(limits.maxCost)")
            }
        }
    }

    /// The cost of a selection set on `type` at `depth` (fields inside fields; fragments do not
    /// add depth). `listed` says the enclosing field's `first` already counted the next list below
    /// it (a connection's `edges`).
    private mutating func cost(of set: SelectionSet, in type: String?, depth: Int, listed: Bool) throws(QueryTooComplex) -> Int {
        guard depth <= limits.maxDepth else {
            throw QueryTooComplex("the document is nested deeper than \(limits.maxDepth) fields")
        }
        var total = 0
        for selection in set.selections {
            selections += 1
            guard selections <= limits.maxFields else {
                throw QueryTooComplex("the document selects more than \(limits.maxFields) fields")
            }
            let inner: Int
            switch selection {
            case let field as Field:
                if depth == 1 { rootFields += 1 }
                let shape = shapes.shape(of: field.name.value, in: type)
                let own = QueryLimits.resolvingFields.contains(field.name.value) ? QueryLimits.resolutionCost : 1
                guard let nested = field.selectionSet else {
                    inner = own
                    break
                }
                let first = pageSize(field)
                let multiplier = first ?? (shape?.isList == true && !listed ? limits.defaultListSize : 1)
                let children = try cost(of: nested, in: shape?.typeName, depth: depth + 1, listed: first != nil)
                inner = Self.add(own, Self.multiply(multiplier, children))
            case let inline as InlineFragment:
                // A type condition names the type its fields are on.
                inner = try cost(of: inline.selectionSet, in: inline.typeCondition?.name.value ?? type, depth: depth, listed: listed)
            case let spread as FragmentSpread:
                let name = spread.name.value
                // Unknown and cyclic spreads are validation errors; count them as nothing here.
                guard let fragment = fragments[name], !expanding.contains(name) else { continue }
                expanding.append(name)
                defer { expanding.removeLast() }
                inner = try cost(of: fragment.selectionSet, in: fragment.typeCondition.name.value, depth: depth, listed: listed)
            default:
                continue
            }
            total = Self.add(total, inner)
            if total > limits.maxCost {
                throw QueryTooComplex("the query's estimated cost is over the limit of \(limits.maxCost)")
            }
        }
        return total
    }

    private static func add(_ a: Int, _ b: Int) -> Int { a.addingReportingOverflow(b).overflow ? Int.max : a + b }
    private static func multiply(_ a: Int, _ b: Int) -> Int { a.multipliedReportingOverflow(by: b).overflow ? Int.max : a * b }

    /// The `first` argument of a field, from a literal or a variable; nil when it has none.
    /// Values are clamped to 0...1,000,000 (the resolver rejects out-of-range pages itself).
    private func pageSize(_ field: Field) -> Int? {
        guard let argument = field.arguments.first(where: { $0.name.value == "first" }) else { return nil }
        let value: Int?
        switch argument.value {
        case let literal as IntValue: value = Int(literal.value)
        case let variable as Variable: value = variables[variable.name.value]?.int
        default: value = nil
        }
        return min(max(value ?? limits.defaultListSize, 0), 1_000_000)
    }
}
