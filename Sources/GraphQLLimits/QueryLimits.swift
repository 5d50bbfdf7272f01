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
    /// Names the text may hold per field allowed (a field has its name, maybe an alias, its
    /// arguments' names and enum values).
    public var namesPerField = 6

    public init() {}

    /// Fields whose resolution is work of its own (a spec resolved, a ledger read): they count
    /// this much instead of 1.
    public static let resolutionCost = 10
    static let resolvingFields: Set<String> = [
        "model", "modelRevision", "latest", "inference", "pull", "loadModel", "unloadModel", "inclusionProof", "consistencyProof",
        "signTreeHead",
    ]
    /// Leaves that may hold large text (a recorded prompt, output, lineage or sampling): they
    /// count this much, so pages of them are bounded by the budget.
    public static let largeTextCost = 10
    static let largeTextFields: Set<String> = ["prompt", "result", "lineage", "sampling"]

    // MARK: Text

    /// Refuses text nested deeper than `maxNesting`, or holding more names (fields, aliases,
    /// arguments, fragments) than `maxFields × namesPerField`, skipping strings, block strings
    /// and comments: a bomb of thousands of aliases is refused without being parsed. Unbalanced
    /// text is left to the parser, which reports it with a location.
    public func checkText(_ query: String) throws(QueryTooComplex) {
        var text = query
        let outcome = text.withUTF8 { bytes in TextScan(limits: self).run(bytes) }
        if let outcome { throw outcome }
    }
}

/// One pass over a document's bytes (a plain loop over a buffer: it runs on every request that
/// is not cached yet, debug builds included).
private struct TextScan {
    let maxNesting: Int
    let maxNames: Int

    init(limits: QueryLimits) {
        maxNesting = limits.maxNesting
        maxNames = limits.maxFields * limits.namesPerField
    }

    static let quote = UInt8(ascii: "\""), backslash = UInt8(ascii: "\\"), hash = UInt8(ascii: "#")
    static let newline = UInt8(ascii: "\n"), carriageReturn = UInt8(ascii: "\r")

    /// The refusal, or nil when the text is within the limits.
    func run(_ bytes: UnsafeBufferPointer<UInt8>) -> QueryTooComplex? {
        var depth = 0
        var names = 0
        var inName = false
        var index = 0
        let count = bytes.count
        while index < count {
            let byte = bytes[index]
            index += 1
            let nameByte = (byte >= 0x61 && byte <= 0x7A) || (byte >= 0x41 && byte <= 0x5A) || byte == 0x5F
            if nameByte || (byte >= 0x30 && byte <= 0x39) {
                // A name starts at a letter or `_` that no name or number is already under way in.
                if nameByte, !inName {
                    names += 1
                    if names > maxNames { return QueryTooComplex("the document holds more than \(maxNames) names (fields, aliases, arguments)") }
                }
                inName = true
                continue
            }
            inName = false
            switch byte {
            case 0x7B, 0x28, 0x5B:  // { ( [
                depth += 1
                if depth > maxNesting { return QueryTooComplex("the document is nested deeper than \(maxNesting) brackets") }
            case 0x7D, 0x29, 0x5D:  // } ) ]
                depth = max(0, depth - 1)
            case Self.hash:
                while index < count, bytes[index] != Self.newline, bytes[index] != Self.carriageReturn { index += 1 }
            case Self.quote:
                if index + 1 < count, bytes[index] == Self.quote, bytes[index + 1] == Self.quote {
                    // A block string: to the next unescaped `"""`.
                    index += 2
                    while index < count {
                        if bytes[index] == Self.backslash, index + 3 < count, bytes[index + 1] == Self.quote, bytes[index + 2] == Self.quote,
                            bytes[index + 3] == Self.quote
                        {
                            index += 4
                        } else if bytes[index] == Self.quote, index + 2 < count, bytes[index + 1] == Self.quote, bytes[index + 2] == Self.quote {
                            index += 3
                            break
                        } else {
                            index += 1
                        }
                    }
                } else {
                    // A string (`""` included): to the closing quote or the end of the line.
                    while index < count, bytes[index] != Self.quote, bytes[index] != Self.newline {
                        index += bytes[index] == Self.backslash ? 2 : 1
                    }
                    index += 1
                }
            default:
                continue
            }
        }
        return nil
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
    /// Whether a page size came from the request's variables.
    private var readVariables = false
    private var expanding: [String] = []

    /// Checks the operation a request runs (the named one, else every operation in the document).
    /// Returns whether the verdict holds for any request of this document: one operation, and no
    /// page size from a variable.
    @discardableResult
    public static func check(
        _ document: Document, operationName: String?, variables: [String: Map], limits: QueryLimits, shapes: FieldShapes
    ) throws(QueryTooComplex) -> Bool {
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
        return !cost.readVariables && operations.count == 1
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
                let own =
                    QueryLimits.resolvingFields.contains(field.name.value)
                    ? QueryLimits.resolutionCost : QueryLimits.largeTextFields.contains(field.name.value) ? QueryLimits.largeTextCost : 1
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
    private mutating func pageSize(_ field: Field) -> Int? {
        guard let argument = field.arguments.first(where: { $0.name.value == "first" }) else { return nil }
        let value: Int?
        switch argument.value {
        case let literal as IntValue: value = Int(literal.value)
        case let variable as Variable:
            readVariables = true
            value = variables[variable.name.value]?.int
        default: value = nil
        }
        return min(max(value ?? limits.defaultListSize, 0), 1_000_000)
    }
}

/// Documents that GraphQLSwift's validation cannot be trusted with. It keys dictionaries by
/// operations, fragments and their top-level selection sets, hashing them by identity but
/// comparing them by structure, so two structurally equal ones in one document break
/// `Hashable` and end the process when such a dictionary grows (libFuzzer found it with three
/// operations named alike). Such documents are invalid (duplicate names) or pointless (two
/// fragments alike): they are refused before validation, with the message validation would give.
public enum DuplicateDefinitions {
    /// The reason to refuse `document`, or nil.
    public static func problem(in document: Document) -> String? {
        var operationNames = Set<String>()
        var anonymous = 0
        var fragmentNames = Set<String>()
        var bodies = Set<String>()
        for definition in document.definitions {
            let body: SelectionSet
            if let operation = definition as? OperationDefinition {
                if let name = operation.name?.value {
                    guard operationNames.insert(name).inserted else { return "There can be only one operation named \"\(name)\"." }
                } else {
                    anonymous += 1
                    guard anonymous == 1 else { return "This anonymous operation must be the only defined operation." }
                }
                body = operation.selectionSet
            } else if let fragment = definition as? FragmentDefinition {
                guard fragmentNames.insert(fragment.name.value).inserted else {
                    return "There can be only one fragment named \"\(fragment.name.value)\"."
                }
                body = fragment.selectionSet
            } else {
                continue
            }
            guard bodies.insert(print(ast: body)).inserted else {
                return "Two operations or fragments select exactly the same fields; define it once and spread it."
            }
        }
        return nil
    }
}
