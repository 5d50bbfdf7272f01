import Foundation

/// DVC's `dvc.yaml` templating: `${path.to.value}` interpolation, `foreach`/`do` and `matrix`.
enum Template {
    /// Most stages one `matrix` may expand to.
    static let maxMatrixSize = 10_000

    /// Expands one `stages:` entry into concrete stages (`name`, or `name@key` per item).
    static func expand(name: String, body: YAMLValue, context: YAMLValue, file: String) throws -> [(String, YAMLValue)] {
        if let foreach = body["foreach"] {
            guard let template = body["do"] else { throw DVCError(.malformed, file: file, "stage '\(name)': foreach without do") }
            var scope = context
            let items = try interpolate(foreach, context: &scope, file: file)
            if let count = items.sequence?.count ?? items.mapping?.count, count > maxMatrixSize {
                throw DVCError(.tooLarge, file: file, "stage '\(name)': foreach has over \(maxMatrixSize) items")
            }
            var result: [(String, YAMLValue)] = []
            switch items {
            case .sequence(let list):
                let scalars = list.allSatisfy { $0.string != nil }
                for (index, item) in list.enumerated() {
                    let key = scalars ? (item.string ?? String(index)) : String(index)
                    var local = with(context, ["item": item, "key": .scalar(key, quoted: false)])
                    result.append(("\(name)@\(key)", try interpolate(template, context: &local, file: file)))
                }
            case .mapping(let pairs):
                for (key, item) in pairs {
                    var local = with(context, ["item": item, "key": .scalar(key, quoted: false)])
                    result.append(("\(name)@\(key)", try interpolate(template, context: &local, file: file)))
                }
            default:
                throw DVCError(.malformed, file: file, "stage '\(name)': foreach needs a list or a mapping")
            }
            return result
        }
        if let matrix = body["matrix"] {
            var scope = context
            guard case .mapping(let axes) = try interpolate(matrix, context: &scope, file: file) else {
                throw DVCError(.malformed, file: file, "stage '\(name)': matrix needs a mapping of lists")
            }
            // The size is the product of the axes' lengths: checked before anything is built.
            var lists: [(axis: String, values: [YAMLValue])] = []
            var size = 1
            for (axis, values) in axes {
                guard let list = values.sequence else { throw DVCError(.malformed, file: file, "stage '\(name)': matrix.\(axis) is not a list") }
                let (product, overflow) = size.multipliedReportingOverflow(by: list.count)
                guard !overflow, product <= maxMatrixSize else {
                    throw DVCError(.tooLarge, file: file, "stage '\(name)': matrix has over \(maxMatrixSize) combinations")
                }
                size = product
                lists.append((axis, list))
            }
            var combos: [[(axis: String, key: String, value: YAMLValue)]] = [[]]
            for (axis, list) in lists {
                combos = combos.flatMap { combo in
                    list.enumerated().map { index, value in combo + [(axis, value.string ?? "\(axis)\(index)", value)] }
                }
            }
            let template = YAMLValue.mapping((body.mapping ?? []).filter { $0.key != "matrix" })
            return try combos.map { combo throws in
                var local = with(context, ["item": .mapping(combo.map { ($0.axis, $0.value) })])
                return ("\(name)@" + combo.map(\.key).joined(separator: "-"), try interpolate(template, context: &local, file: file))
            }
        }
        var scope = context
        if let vars = body["vars"] {
            for pair in vars.sequence?.compactMap(\.mapping).flatMap({ $0 }) ?? [] {
                scope = with(scope, [pair.key: pair.value])
            }
        }
        return [(name, try interpolate(.mapping((body.mapping ?? []).filter { $0.key != "vars" }), context: &scope, file: file))]
    }

    /// `context` with `extra` keys added or replaced.
    static func with(_ context: YAMLValue, _ extra: [String: YAMLValue]) -> YAMLValue {
        var pairs = (context.mapping ?? []).filter { extra[$0.key] == nil }
        for (key, value) in extra.sorted(by: { $0.key < $1.key }) { pairs.append((key, value)) }
        return .mapping(pairs)
    }

    /// Replaces `${…}` in every string of `value`. A string that is exactly one `${x}` takes x's
    /// value (which may be a list or mapping); otherwise scalar texts are spliced in.
    static func interpolate(_ value: YAMLValue, context: inout YAMLValue, file: String) throws -> YAMLValue {
        switch value {
        case .scalar(let text, let quoted):
            guard text.contains("${") else { return value }
            if text.hasPrefix("${"), text.hasSuffix("}"), text.dropFirst(2).firstIndex(of: "$") == nil,
                text.filter({ $0 == "}" }).count == 1
            {
                return try lookup(String(text.dropFirst(2).dropLast()), in: context, file: file)
            }
            var output = ""
            var rest = Substring(text)
            while let start = rest.range(of: "${") {
                output += rest[..<start.lowerBound]
                guard let end = rest[start.upperBound...].firstIndex(of: "}") else {
                    throw DVCError(.malformed, file: file, "unterminated ${ in '\(text)'")
                }
                let resolved = try lookup(String(rest[start.upperBound..<end]), in: context, file: file)
                guard let scalar = resolved.string else {
                    throw DVCError(.malformed, file: file, "cannot splice a list or mapping into '\(text)'")
                }
                output += scalar
                rest = rest[rest.index(after: end)...]
            }
            return .scalar(output + rest, quoted: quoted)
        case .sequence(let items):
            var result: [YAMLValue] = []
            for item in items { result.append(try interpolate(item, context: &context, file: file)) }
            return .sequence(result)
        case .mapping(let pairs):
            var result: [(key: String, value: YAMLValue)] = []
            for pair in pairs {
                let key = try interpolate(.scalar(pair.key, quoted: false), context: &context, file: file).string ?? pair.key
                result.append((key, try interpolate(pair.value, context: &context, file: file)))
            }
            return .mapping(result)
        case .null:
            return value
        }
    }

    static func lookup(_ expression: String, in context: YAMLValue, file: String) throws -> YAMLValue {
        let path = expression.trimmingCharacters(in: .whitespaces)
            .replacingOccurrences(of: "[", with: ".").replacingOccurrences(of: "]", with: "")
        guard let value = context.lookup(dotted: path) else {
            throw DVCError(.malformed, file: file, "unknown template variable '${\(RepoPath.printable(expression))}'")
        }
        return value
    }
}
