import Access
import Evaluation
import Foundation
import GitStore
import Ledger
import Lineage
import Serving

/// The web view's evaluation pages: an evaluation (its summary and every item, the lowest scores
/// first, each linking to its inference), a comparison of two (score deltas, the items whose
/// scores differ, regressions first, and what changed in the lineage), and a model's evaluations
/// with a chart of each scorer across its revisions (server-made SVG, like the pipeline graph).
extension WebView {
    func evaluationPage(_ id: String, _ context: PedigreeRequestContext) async throws -> String {
        let caller = RequestInfo(principal: context.principal, requestID: nil)
        guard let result = try await Evaluator(services: services).load(id, caller: caller) else {
            throw ServingError(.notFound, "no evaluation \(id)")
        }
        let model = result.revision.model.name
        let names = result.scorers.map(\.description)
        let scores = result.summaries.map { summary in
            [
                "<code>\(HTML.escape(summary.scorer))</code>", "<span class=\"mean\">\(Self.number(summary.mean))</span>", "\(summary.count)",
                "\(summary.failures)",
            ]
        }
        // The weakest answers first: failures, then the lowest total over the scorers with a better direction.
        let directed = result.scorers.enumerated().filter { $0.element.direction == .higherIsBetter }.map(\.offset)
        func weight(_ item: EvaluationResult.Item) -> Double {
            item.error != nil ? -1 : directed.reduce(0.0) { $0 + (item.scores[$1] ?? 0) }
        }
        let items = result.items.enumerated().sorted { lhs, rhs in
            let (a, b) = (weight(lhs.element), weight(rhs.element))
            return a != b ? a < b : lhs.offset < rhs.offset
        }.map(\.element)
        let rows = items.map { item -> [String] in
            let inference: String =
                item.inferenceID.map { "<a href=\"/ui/inferences/\(HTML.segment($0))\"><code>\(HTML.escape(Self.short($0)))</code></a>" } ?? "—"
            let answer: String =
                item.error.map { "<span class=\"error\">\(HTML.escape(Self.excerpt($0)))</span>" } ?? HTML.escape(Self.excerpt(item.output ?? ""))
            let scores: [String] = item.scores.map { "<span class=\"score\">\(Self.number($0))</span>" }
            return ["<code class=\"item-id\">\(HTML.escape(item.item.id))</code>", "\(item.item.line)", inference, answer] + scores
        }
        let others = try await comparable(result, caller)
        let compare =
            others.isEmpty
            ? ""
            : "<h2>Compare</h2><ul id=\"compare\">" + others.map { compareLink(result.id, $0) }.joined() + "</ul>"
        let facts: [(String, String)] = [
            ("id", "<code id=\"evaluation-id\">\(HTML.escape(result.id))</code>"),
            ("revision", "<a href=\"/ui/revisions/\(HTML.segment(result.revision.id))\"><code>\(HTML.escape(result.revision.id))</code></a>"),
            (
                "dataset",
                "<code>\(HTML.escape(result.dataset))</code> @ <code>\(HTML.escape(String(result.datasetCommit.prefix(12))))</code> (md5 <code>\(HTML.escape(result.datasetMD5))</code>)"
            ),
            ("status", "<span id=\"status\">\(HTML.escape(result.status.rawValue))</span>"),
            ("items", "\(result.items.count) of \(result.total) answered, \(result.items.filter { $0.error != nil }.count) failed"),
            ("created", HTML.escape(ISO8601DateFormatter().string(from: result.createdAt))),
        ]
        return HTML.page(
            signOut: context.principal.name != nil, title: "Evaluation \(result.id)",
            crumbs: [("models", "/ui/"), (model, "/ui/models/\(HTML.segment(model))"), (result.id, nil)],
            body: """
                <h1>Evaluation <code>\(HTML.escape(result.id))</code></h1>
                <dl class="facts">\(facts.map { "<dt>\(HTML.escape($0.0))</dt><dd>\($0.1)</dd>" }.joined())</dl>
                <h2>Scores</h2>
                \(HTML.table(["scorer", "mean", "scored", "failed"], scores, id: "scores"))
                \(compare)
                <h2>Items</h2>
                <p class="meta">The weakest answers first; each links to its inference in the ledger.</p>
                \(HTML.table(["item", "line", "inference", "answer"] + names, rows, id: "items"))
                \(result.lineErrors.isEmpty ? "" : "<h2>Bad lines</h2><ul>" + result.lineErrors.map { "<li>\(HTML.escape($0.description))</li>" }.joined() + "</ul>")
                """)
    }

    private func compareLink(_ id: String, _ other: EvaluationRecord) -> String {
        "<li><a href=\"/ui/evaluations/\(HTML.segment(id))/compare/\(HTML.segment(other.id))\">with <code>\(HTML.escape(other.id))</code></a>"
            + " (<code>\(HTML.escape(other.revision))</code>)</li>"
    }

    /// Other evaluations over the same set, of the same model, this caller may read (newest first).
    private func comparable(_ result: EvaluationResult, _ caller: RequestInfo) async throws -> [EvaluationRecord] {
        let records = try await services.recorder.evaluations(
            EvaluationFilter(model: result.revision.model.name, dataset: result.dataset), first: 20, readableBy: caller.principal)
        return records.filter { $0.id != result.id }
    }

    func comparisonPage(_ a: String, _ b: String, _ context: PedigreeRequestContext) async throws -> String {
        let caller = RequestInfo(principal: context.principal, requestID: nil)
        let comparison = try await Evaluator(services: services).compare(a, b, caller: caller)
        let model = comparison.b.revision.model.name
        let deltas = comparison.scores.map { delta in
            [
                "<code>\(HTML.escape(delta.scorer))</code>", "<span class=\"a\">\(Self.number(delta.a))</span>",
                "<span class=\"b\">\(Self.number(delta.b))</span>", "<span class=\"delta\">\(Self.number(delta.delta, signed: true))</span>",
            ]
        }
        let rows = comparison.items.map { item in
            func scores(_ names: [String], _ values: [Double?]) -> String {
                zip(names, values).map { "\(HTML.escape($0)) \(Self.number($1))" }.joined(separator: "<br>")
            }
            func answer(_ side: EvaluationResult.Item) -> String {
                let text = HTML.escape(Self.excerpt(side.output ?? ""))
                return side.inferenceID.map { "<a href=\"/ui/inferences/\(HTML.segment($0))\">\(text.isEmpty ? "(empty)" : text)</a>" } ?? text
            }
            return [
                "<code class=\"item-id\">\(HTML.escape(item.a.item.id))</code>",
                "<span class=\"change \(item.change.rawValue)\">\(HTML.escape(item.change.rawValue))</span>", answer(item.a), answer(item.b),
                scores(item.scorersA, item.a.scores), scores(item.scorersB, item.b.scores),
                item.firstDifference.map { "token \($0.index): \($0.a.map { "\($0)" } ?? "end") → \($0.b.map { "\($0)" } ?? "end")" } ?? "—",
            ]
        }
        var lineage = "<p class=\"meta\">The two are revisions of different models.</p>"
        if let diff = comparison.lineage {
            let commits = diff.commits.map {
                "<li><code>\(HTML.escape(String($0.sha.prefix(12))))</code> \(HTML.escape($0.message.split(separator: "\n").first.map(String.init) ?? ""))</li>"
            }
            lineage = """
                <p class="meta">From <a href="/ui/revisions/\(HTML.segment(diff.a.id))"><code>\(HTML.escape(diff.a.id))</code></a> to \
                <a href="/ui/revisions/\(HTML.segment(diff.b.id))"><code>\(HTML.escape(diff.b.id))</code></a>: \
                the artifact \(diff.artifactChanged ? "changed" : "is the same"), \(diff.datasets.count) dataset change(s), \
                \(diff.parameters.count) parameter change(s), \(diff.code.count) code change(s).</p>
                <ul id="commits">\(commits.joined())</ul>
                """
        }
        return HTML.page(
            signOut: context.principal.name != nil, title: "Compare \(a) and \(b)",
            crumbs: [
                ("models", "/ui/"), (model, "/ui/models/\(HTML.segment(model))"), (a, "/ui/evaluations/\(HTML.segment(a))"),
                ("compare", nil),
            ],
            body: """
                <h1>Comparison</h1>
                <p class="meta"><a href="/ui/evaluations/\(HTML.segment(a))"><code>\(HTML.escape(a))</code></a> \
                (<code>\(HTML.escape(comparison.a.revision.id))</code>) → <a href="/ui/evaluations/\(HTML.segment(b))"><code>\(HTML.escape(b))</code></a> \
                (<code>\(HTML.escape(comparison.b.revision.id))</code>) on <code>\(HTML.escape(comparison.a.dataset))</code>: \
                <span id="differing">\(comparison.items.count)</span> items differ, <span id="unchanged">\(comparison.unchanged)</span> unchanged.</p>
                <h2>Scores</h2>
                \(HTML.table(["scorer", "a", "b", "b − a"], deltas, id: "deltas"))
                <h2>Items whose scores differ</h2>
                \(HTML.table(["item", "change", "answer a", "answer b", "scores a", "scores b", "first differing token"], rows, id: "changes"))
                <h2>Lineage</h2>
                \(lineage)
                """)
    }

    /// A model's evaluations (newest first) and, per set and scorer, a chart of the newest
    /// evaluation's mean at each revision; empty when the ledger is off or this key reads none.
    func modelEvaluations(_ name: String, revisions: [ModelLineage], _ principal: Principal) async -> String {
        guard services.recorder.isEnabled,
            let records = try? await services.recorder.evaluations(EvaluationFilter(model: name), first: 200, readableBy: principal),
            !records.isEmpty
        else { return "" }
        let rows = records.prefix(50).map { record in
            [
                "<a href=\"/ui/evaluations/\(HTML.segment(record.id))\"><code>\(HTML.escape(record.id))</code></a>",
                "<a href=\"/ui/revisions/\(HTML.segment(record.revision))\"><code>\(HTML.escape(Self.short(record.revision)))</code></a>",
                "<code>\(HTML.escape(record.dataset))</code>", HTML.escape(record.status.rawValue),
                zip(record.scorers, record.means).map { "\(HTML.escape($0)) \(Self.number($1))" }.joined(separator: "<br>"),
            ]
        }
        // Oldest revision first along the x axis; per (set, scorer), the newest evaluation of each revision.
        let order = Dictionary(revisions.reversed().enumerated().map { ($1.id, $0) }, uniquingKeysWith: { first, _ in first })
        var series: [String: [Int: Double]] = [:]
        for record in records.reversed() where record.status == .completed {
            guard let x = order[record.revision] else { continue }
            for (scorer, mean) in zip(record.scorers, record.means) {
                if let mean { series["\(record.dataset) · \(scorer)", default: [:]][x] = mean }
            }
        }
        let charts = series.keys.sorted().map { key in
            EvaluationChart.svg(title: key, points: (series[key] ?? [:]).sorted { $0.key < $1.key }, revisions: revisions.count)
        }
        return """
            <h2>Evaluations</h2>
            <div id="evaluation-charts">\(charts.joined(separator: "\n"))</div>
            \(HTML.table(["evaluation", "revision", "set", "status", "means"], Array(rows), id: "evaluations"))
            """
    }

    static func number(_ value: Double?, signed: Bool = false) -> String {
        guard let value else { return "—" }
        return String(format: signed ? "%+.4f" : "%.4f", value)
    }
}

/// A line chart of one scorer's mean across a model's revisions, as inline SVG (no script).
enum EvaluationChart {
    static func svg(title: String, points: [(key: Int, value: Double)], revisions: Int) -> String {
        let width = 320.0
        let height = 120.0
        let pad = 24.0
        let low = min(0, points.map(\.value).min() ?? 0)
        let high = max(1, points.map(\.value).max() ?? 1)
        func x(_ index: Int) -> Double { pad + (width - 2 * pad) * (revisions > 1 ? Double(index) / Double(revisions - 1) : 0.5) }
        func y(_ value: Double) -> Double { height - pad - (height - 2 * pad) * (high > low ? (value - low) / (high - low) : 0.5) }
        let line = points.map { String(format: "%.1f,%.1f", x($0.key), y($0.value)) }.joined(separator: " ")
        let dots = points.map { point in
            String(format: "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\">", x(point.key), y(point.value))
                + "<title>\(String(format: "%.4f", point.value))</title></circle>"
        }
        return """
            <figure class="chart"><svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 \(Int(width)) \(Int(height))" width="\(Int(width))" height="\(Int(height))" role="img" aria-label="\(HTML.escape(title))">\
            <line x1="\(pad)" y1="\(height - pad)" x2="\(width - pad)" y2="\(height - pad)" stroke="#999"/>\
            <text x="2" y="\(pad)" font-size="10">\(HTML.escape(String(format: "%g", high)))</text><text x="2" y="\(height - pad)" font-size="10">\(HTML.escape(String(format: "%g", low)))</text>\
            <polyline fill="none" stroke="#2a6" stroke-width="2" points="\(line)"/>\(dots.joined())</svg>\
            <figcaption>\(HTML.escape(title))</figcaption></figure>
            """
    }
}
