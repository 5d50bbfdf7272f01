import Lineage

/// A revision's pipeline as an SVG drawing, made by the server: source datasets and code on the
/// left, stages in columns by how far they are from the sources, the artifact on the right, and an
/// edge wherever a stage reads what another node is or writes. Each node is a `<g class="node …">`
/// with `data-name`, so a test (or a script) can count and find them.
struct PipelineGraph {
    enum Kind: String {
        case dataset, code, stage, artifact
    }

    struct Node {
        let id: String
        let kind: Kind
        let title: String
        let lines: [String]
        var column = 0
        var row = 0
    }

    private(set) var nodes: [Node] = []
    private(set) var edges: [(from: Int, to: Int)] = []

    static let width = 200
    static let gap = 70
    static let lineHeight = 15

    init(_ revision: ModelLineage) {
        var index: [String: Int] = [:]
        func add(_ node: Node) -> Int {
            if let existing = index[node.id] { return existing }
            nodes.append(node)
            index[node.id] = nodes.count - 1
            return nodes.count - 1
        }
        /// Whether a dependency path and an output path name the same data (or one holds the other).
        func overlaps(_ a: String, _ b: String) -> Bool { a == b || a.hasPrefix(b + "/") || b.hasPrefix(a + "/") }

        let stages = revision.pipeline
        let stageNodes = stages.map { stage in
            add(
                Node(
                    id: "stage:" + stage.name, kind: .stage, title: stage.name,
                    lines: stage.parameters.prefix(4).map { "\($0.key) = \($0.value)" }
                        + (stage.parameters.count > 4 ? ["+\(stage.parameters.count - 4) more"] : [])))
        }
        for (position, stage) in stages.enumerated() {
            for dependency in stage.deps {
                if let producer = stages.indices.first(where: { other in
                    other != position && stages[other].outs.contains { overlaps(dependency.path, $0.path) }
                }) {
                    edges.append((stageNodes[producer], stageNodes[position]))
                } else if let dataset = revision.datasets.first(where: { overlaps(dependency.path, $0.path) }) {
                    let node = add(Node(id: "data:" + dataset.path, kind: .dataset, title: dataset.path, lines: [String(dataset.md5.prefix(12))]))
                    edges.append((node, stageNodes[position]))
                } else if revision.code.contains(where: { $0.path == dependency.path }) {
                    let node = add(
                        Node(id: "code:" + dependency.path, kind: .code, title: dependency.path, lines: [String(dependency.md5.prefix(12))]))
                    edges.append((node, stageNodes[position]))
                }
            }
        }
        // Datasets no stage reads (a model tracked by a .dvc file has no stage at all).
        for dataset in revision.datasets {
            _ = add(Node(id: "data:" + dataset.path, kind: .dataset, title: dataset.path, lines: [String(dataset.md5.prefix(12))]))
        }
        let artifact = add(
            Node(
                id: "artifact", kind: .artifact, title: revision.artifact.path,
                lines: [String(revision.artifact.md5.prefix(12)), HTML.size(revision.artifact.size)]))
        if let producer = stages.firstIndex(where: { $0.outs.contains { overlaps(revision.artifact.path, $0.path) } }) {
            edges.append((stageNodes[producer], artifact))
        }
        layOut(artifact: artifact)
    }

    /// Columns: datasets and code first, each stage one right of its furthest input, the artifact
    /// last; rows in order within a column.
    private mutating func layOut(artifact: Int) {
        var column = [Int](repeating: 0, count: nodes.count)
        for (position, node) in nodes.enumerated() where node.kind == .stage { column[position] = 1 }
        // Longest path: at most one pass per node settles it (the pipeline is acyclic; a cycle
        // stops at the bound rather than looping).
        for _ in 0..<nodes.count {
            var changed = false
            for edge in edges where nodes[edge.to].kind == .stage && column[edge.to] < column[edge.from] + 1 {
                column[edge.to] = column[edge.from] + 1
                changed = true
            }
            if !changed { break }
        }
        column[artifact] = (column.max() ?? 0) + 1
        var rows: [Int: Int] = [:]
        for position in nodes.indices {
            nodes[position].column = column[position]
            nodes[position].row = rows[column[position], default: 0]
            rows[column[position], default: 0] += 1
        }
    }

    private func nodeHeight(_ node: Node) -> Int { 30 + node.lines.count * Self.lineHeight }

    private var rowHeight: Int { (nodes.map(nodeHeight).max() ?? 40) + 24 }

    private func origin(_ node: Node) -> (x: Int, y: Int) {
        (20 + node.column * (Self.width + Self.gap), 20 + node.row * rowHeight)
    }

    /// The drawing.
    var svg: String {
        let columns = (nodes.map(\.column).max() ?? 0) + 1
        let rows = (nodes.map(\.row).max() ?? 0) + 1
        let width = 40 + columns * Self.width + (columns - 1) * Self.gap
        let height = 40 + rows * rowHeight
        var parts: [String] = [
            "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"pipeline\" viewBox=\"0 0 \(width) \(height)\" width=\"\(width)\" height=\"\(height)\" role=\"img\" aria-label=\"pipeline\">",
            "<defs><marker id=\"arrow\" viewBox=\"0 0 10 10\" refX=\"9\" refY=\"5\" markerWidth=\"7\" markerHeight=\"7\" orient=\"auto\"><path d=\"M0,0 L10,5 L0,10 z\"/></marker></defs>",
        ]
        for edge in edges {
            let from = nodes[edge.from]
            let to = nodes[edge.to]
            let start = origin(from)
            let end = origin(to)
            let x1 = start.x + Self.width
            let y1 = start.y + nodeHeight(from) / 2
            let x2 = end.x
            let y2 = end.y + nodeHeight(to) / 2
            let bend = (x2 - x1) / 2
            parts.append(
                "<path class=\"edge\" d=\"M\(x1),\(y1) C\(x1 + bend),\(y1) \(x2 - bend),\(y2) \(x2),\(y2)\" marker-end=\"url(#arrow)\"/>")
        }
        for node in nodes {
            let at = origin(node)
            var text = "<text x=\"\(at.x + 10)\" y=\"\(at.y + 20)\" class=\"title\">\(HTML.escape(Self.shortened(node.title)))</text>"
            for (line, value) in node.lines.enumerated() {
                text += "<text x=\"\(at.x + 10)\" y=\"\(at.y + 38 + line * Self.lineHeight)\">\(HTML.escape(Self.shortened(value)))</text>"
            }
            parts.append(
                "<g class=\"node \(node.kind.rawValue)\" data-name=\"\(HTML.escape(node.title))\"><title>\(HTML.escape(node.title))</title>"
                    + "<rect x=\"\(at.x)\" y=\"\(at.y)\" width=\"\(Self.width)\" height=\"\(nodeHeight(node))\" rx=\"6\"/>\(text)</g>")
        }
        parts.append("</svg>")
        return parts.joined(separator: "\n")
    }

    /// Text that fits a node (about 26 characters), cut in the middle.
    static func shortened(_ text: String) -> String {
        guard text.count > 26 else { return text }
        return String(text.prefix(12)) + "…" + String(text.suffix(12))
    }
}
