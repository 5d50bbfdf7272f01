import Access
import Foundation
import GitStore
import HTTPTypes
import Hummingbird
import Inference
import Ledger
import Lineage
import Logging
import NIOCore
import Serving

/// The lineage web view under `/ui/`: server-rendered HTML with one stylesheet, no script, no
/// build step, nothing from another host. Pages: the models; a model's revision history; a
/// revision with its pipeline drawn as SVG, datasets, parameters, code and recent inferences; an
/// inference with a replay button; an evaluation, a comparison of two, and a model's evaluations
/// charted across its revisions (`EvaluationPages`). Every link names a canonical revision (`name@sha`), so a page
/// is a permanent link. Browsers send their key as a cookie set by `/ui/login` (HttpOnly,
/// SameSite=Strict), which only these pages accept.
struct WebView: Sendable {
    let services: Services

    static let cookie = "pedigree_key"

    func add(to router: RouterGroup<PedigreeRequestContext>) {
        // `/ui` and `/ui/` (Hummingbird matches both).
        router.get("ui") { _, context in try await page(context) { try await models(context) } }
        router.get("ui/models/:name") { _, context in
            try await page(context) { try await model(context.parameters.get("name") ?? "", context) }
        }
        router.get("ui/revisions/:id") { _, context in
            try await page(context) { try await revision(context.parameters.get("id") ?? "", context) }
        }
        router.get("ui/inferences/:id") { _, context in
            try await page(context) { try await inference(context.parameters.get("id") ?? "", context) }
        }
        router.get("ui/evaluations/:id") { _, context in
            try await page(context) { try await evaluationPage(context.parameters.get("id") ?? "", context) }
        }
        router.get("ui/evaluations/:id/compare/:b") { _, context in
            try await page(context) {
                try await comparisonPage(context.parameters.get("id") ?? "", context.parameters.get("b") ?? "", context)
            }
        }
        router.post("ui/inferences/:id/replay") { _, context in
            try await page(context) { try await replay(context.parameters.get("id") ?? "", context) }
        }
        router.get("ui/assets/ui.css") { _, _ -> Response in
            Response(
                status: .ok, headers: [.contentType: "text/css; charset=utf-8", .cacheControl: "public, max-age=3600"],
                body: ResponseBody(byteBuffer: ByteBuffer(string: Self.stylesheet)))
        }
        router.get("ui/login") { _, _ -> Response in Self.html(.ok, Self.loginPage(message: nil)) }
        router.post("ui/login") { request, _ -> Response in await login(request) }
        router.post("ui/logout") { _, _ -> Response in
            var response = Self.redirect("/ui/login")
            response.headers[.setCookie] = Self.cookieHeader(value: "", maxAge: 0, secure: services.configuration.tls != nil)
            return response
        }
    }

    // MARK: Pages

    private func models(_ context: PedigreeRequestContext) async throws -> String {
        let lineage = services.lineage
        let rows = try await offload {
            let registry = try lineage.registry()
            return try lineage.models().map { model -> [String] in
                let latest = try? lineage.lineage(model.name)
                return [
                    "<a href=\"/ui/models/\(HTML.segment(model.name))\">\(HTML.escape(model.name))</a>",
                    HTML.escape(model.description ?? ""),
                    latest.map { "<a href=\"/ui/revisions/\(HTML.segment($0.id))\"><code>\(HTML.escape(Self.short($0.id)))</code></a>" } ?? "—",
                    latest.map { HTML.escape($0.commit.author.iso8601) } ?? "",
                    HTML.escape(registry.versions(of: model.name).map(\.name).joined(separator: ", ")),
                    registry.stages(of: model.name).map { "<span class=\"stage-tag\">\(HTML.escape($0))</span>" }.joined(separator: " "),
                ]
            }
        }
        let head = try await offload { try lineage.head() }
        // What is loaded, by device, as llama.cpp allocated it.
        let loaded = await services.inference.loadedModels().flatMap { model in
            model.memory.devices.map { device -> [String] in
                [
                    "<code>\(HTML.escape(String(model.md5.prefix(12))))</code>", HTML.escape(model.revisions.joined(separator: ", ")),
                    HTML.escape(model.worker ?? "this process"),
                    HTML.escape(device.description.isEmpty ? device.name : "\(device.name) (\(device.description))"),
                    HTML.size(device.weights), HTML.size(device.context), HTML.size(device.compute), HTML.size(device.prefixCache),
                    HTML.size(device.metadata), HTML.size(device.total), "\(model.activeSlots)/\(model.slots)",
                ]
            }
        }
        let loadedTable =
            loaded.isEmpty
            ? "<p class=\"meta\">No model is loaded.</p>"
            : HTML.table(
                ["weights md5", "revisions", "where", "device", "weights", "context", "compute", "prefix cache", "metadata", "total", "slots busy"],
                loaded,
                id: "loaded")
        return HTML.page(
            signOut: context.principal.name != nil,
            title: "Models", crumbs: [("models", nil)],
            body: """
                <h1>Models</h1>
                <p class="meta">Default branch at <code>\(HTML.escape(String(head.prefix(12))))</code> · \(rows.count) models</p>
                \(HTML.table(["model", "description", "latest revision", "date", "versions", "stages"], rows, id: "models"))
                <h2>Loaded</h2>
                \(loadedTable)
                """)
    }

    private func model(_ name: String, _ context: PedigreeRequestContext) async throws -> String {
        let lineage = services.lineage
        let (declaration, history, labels) = try await offload { () throws -> (ModelDeclaration, [ModelLineage], [String: [String]]) in
            guard let declaration = try lineage.model(named: name) else { throw LineageError.notFound("no model named \(name)") }
            let history = try lineage.revisions(of: name).map { try lineage.lineage(model: name, at: $0) }
            // Which revision each GTO version and stage points at.
            var labels: [String: [String]] = [:]
            let registry = try lineage.registry()
            for version in registry.versions(of: name) {
                if let id = try? lineage.lineage(model: name, at: version.commit).id { labels[id, default: []].append(version.name) }
            }
            for stage in registry.stages(of: name) {
                if let commit = registry.stage(stage, of: name), let id = try? lineage.lineage(model: name, at: commit).id {
                    labels[id, default: []].append("#" + stage)
                }
            }
            return (declaration, history, labels)
        }
        let rows = history.map { revision in
            [
                "<a href=\"/ui/revisions/\(HTML.segment(revision.id))\"><code>\(HTML.escape(String(revision.commit.sha.prefix(12))))</code></a>",
                HTML.escape(revision.commit.author.iso8601), HTML.escape(revision.commit.author.name),
                HTML.escape(revision.commit.message.split(separator: "\n").first.map(String.init) ?? ""),
                HTML.escape(HTML.size(revision.artifact.size)), "<code>\(HTML.escape(String(revision.artifact.md5.prefix(12))))</code>",
                (labels[revision.id] ?? []).map { "<span class=\"stage-tag\">\(HTML.escape($0))</span>" }.joined(separator: " "),
            ]
        }
        return HTML.page(
            signOut: context.principal.name != nil,
            title: name, crumbs: [("models", "/ui/"), (name, nil)],
            body: """
                <h1>\(HTML.escape(name))</h1>
                <p class="meta">\(HTML.escape(declaration.description ?? "")) · <code>\(HTML.escape(declaration.path))</code></p>
                <h2>Revisions</h2>
                <p class="meta">Each commit of the default branch where the artifact changed, newest first.</p>
                \(HTML.table(["commit", "date", "author", "message", "size", "md5", "versions & stages"], rows, id: "revisions"))
                \(await modelEvaluations(name, revisions: history, context.principal))
                """)
    }

    private func revision(_ spec: String, _ context: PedigreeRequestContext) async throws -> String {
        let revision = try await services.lineage.lineageOffloaded(spec)
        let name = revision.model.name
        let datasets = revision.datasets.map { dataset in
            [
                "<code>\(HTML.escape(dataset.path))</code>", "<code>\(HTML.escape(dataset.md5))</code>", HTML.escape(HTML.size(dataset.size)),
                dataset.commit.map { "<code>\(HTML.escape(String($0.sha.prefix(12))))</code> \(HTML.escape($0.author.iso8601))" } ?? "",
                dataset.source.map {
                    "\(HTML.escape(Redaction.urlCredentials(in: $0.url))) <code>\(HTML.escape($0.path))</code>"
                        + ($0.rev.map { " @ <code>\(HTML.escape(String($0.prefix(12))))</code>" } ?? "")
                } ?? "",
            ]
        }
        let parameters = revision.parameters.map {
            ["<code>\(HTML.escape($0.file))</code>", "<code>\(HTML.escape($0.key))</code>", "<code>\(HTML.escape($0.value))</code>"]
        }
        let code = revision.code.map { ["<code>\(HTML.escape($0.path))</code>", "<code>\(HTML.escape($0.md5))</code>"] }
        let stages = revision.pipeline.map { ["<code>\(HTML.escape($0.name))</code>", "<code>\(HTML.escape($0.cmd))</code>"] }
        var inferences = ""
        if let records = try await recentInferences(revision.id, context.principal) {
            let rows = records.map { record in
                [
                    "<a href=\"/ui/inferences/\(HTML.segment(record.id))\"><code>\(HTML.escape(record.id))</code></a>",
                    HTML.escape(ISO8601DateFormatter().string(from: record.createdAt)), HTML.escape(record.caller ?? "—"),
                    HTML.escape(record.status.rawValue), HTML.escape(Self.excerpt(record.input)), HTML.escape(Self.excerpt(record.output)),
                ]
            }
            inferences =
                "<h2>Recent inferences</h2>"
                + (rows.isEmpty
                    ? "<p class=\"meta\">None recorded for this revision.</p>"
                    : HTML.table(["id", "at", "caller", "status", "input", "output"], rows, id: "inferences"))
        }
        let commit = revision.commit
        let kept: String
        switch revision.artifact.origin {
        case .dvc: kept = ""
        case .git(let blob): kept = " · committed to Git, blob <code id=\"artifact-blob\">\(HTML.escape(blob))</code>"
        case .lfs: kept = " · in Git LFS, sha256 <code id=\"artifact-sha256\">\(HTML.escape(revision.artifact.sha256 ?? ""))</code>"
        }
        return HTML.page(
            signOut: context.principal.name != nil,
            title: revision.id, crumbs: [("models", "/ui/"), (name, "/ui/models/\(HTML.segment(name))"), (String(commit.sha.prefix(12)), nil)],
            body: """
                <h1>\(HTML.escape(name)) <code class="rev">@\(HTML.escape(commit.sha))</code></h1>
                <dl class="facts">
                <dt>commit</dt><dd><code id="commit">\(HTML.escape(commit.sha))</code></dd>
                <dt>author</dt><dd>\(HTML.escape(commit.author.name)) &lt;\(HTML.escape(commit.author.email))&gt;</dd>
                <dt>date</dt><dd>\(HTML.escape(commit.author.iso8601))</dd>
                <dt>message</dt><dd>\(HTML.escape(commit.message))</dd>
                <dt>artifact</dt><dd><code>\(HTML.escape(revision.artifact.path))</code> · md5 <code id="artifact-md5">\(HTML.escape(revision.artifact.md5))</code> · \(HTML.escape(HTML.size(revision.artifact.size)))\(kept)</dd>
                <dt>signature</dt><dd id="signature">\(HTML.escape(WeightsSignatureView(services.artifacts.provenance(of: revision), signature: revision.artifact.signature).summary))</dd>
                <dt>produced by</dt><dd>\(revision.stage.map { "<code>\(HTML.escape($0.name))</code>" } ?? (revision.artifact.origin == .dvc ? "a .dvc file (no stage)" : "a commit (no stage)"))</dd>
                </dl>
                <h2>Pipeline</h2>
                <div class="graph">\(PipelineGraph(revision).svg)</div>
                \(stages.isEmpty ? "" : HTML.table(["stage", "command"], stages, id: "stages"))
                <h2>Datasets</h2>
                \(datasets.isEmpty ? "<p class=\"meta\">No DVC-tracked source data.</p>" : HTML.table(["path", "md5", "size", "last changed", "imported from"], datasets, id: "datasets"))
                <h2>Parameters</h2>
                \(parameters.isEmpty ? "<p class=\"meta\">No parameters.</p>" : HTML.table(["file", "key", "value"], parameters, id: "parameters"))
                <h2>Code</h2>
                \(code.isEmpty ? "<p class=\"meta\">No Git-tracked code dependencies.</p>" : HTML.table(["path", "md5"], code, id: "code"))
                \(inferences)
                """)
    }

    /// The newest inferences of a revision this principal may see; nil when it may see none.
    private func recentInferences(_ revision: String, _ principal: Principal) async throws -> [InferenceRecord]? {
        guard services.recorder.isEnabled else { return nil }
        do {
            return try await services.recorder.inferences(InferenceFilter(revision: revision), first: 20, readableBy: principal).records
        } catch is AccessError {
            return nil
        }
    }

    private func inference(_ id: String, _ context: PedigreeRequestContext) async throws -> String {
        guard services.recorder.isEnabled, let record = try await services.recorder.record(id: id, readableBy: context.principal) else {
            throw ServingError(.notFound, "no inference \(id) in the ledger")
        }
        let model = record.model
        let replayable = context.principal.mayRead(recordByKey: record.callerKey, replay: true) && !record.inputIsDigest && !record.inputIsExcerpt
        let facts: [(String, String)] = [
            ("id", "<code id=\"inference-id\">\(HTML.escape(record.id))</code>"),
            ("at", HTML.escape(ISO8601DateFormatter().string(from: record.createdAt))),
            ("revision", "<a href=\"/ui/revisions/\(HTML.segment(record.revision))\"><code>\(HTML.escape(record.revision))</code></a>"),
            ("artifact md5", "<code>\(HTML.escape(record.artifactMD5))</code>"),
            ("artifact sha256", "<code>\(HTML.escape(record.artifactSHA256 ?? "—"))</code>"),
            ("signature", "<span id=\"signature\">\(HTML.escape(WeightsSignatureView(record)?.summary ?? "—"))</span>"),
            ("caller", HTML.escape(record.caller ?? "—")), ("status", HTML.escape(record.status.rawValue)),
            ("finish reason", HTML.escape(record.finishReason)), ("seed", "\(record.seed)"),
            ("tokens", "\(record.promptTokens) in, \(record.completionTokens) out"),
            ("time to first token", String(format: "%.1f ms", record.timeToFirstTokenMs)), ("total", String(format: "%.1f ms", record.totalMs)),
            ("engine", "<code>\(HTML.escape(record.engine))</code>"), ("request id", HTML.escape(record.requestID ?? "—")),
        ]
        return HTML.page(
            signOut: context.principal.name != nil,
            title: "Inference \(id)",
            crumbs: [
                ("models", "/ui/"), (model, "/ui/models/\(HTML.segment(model))"),
                (Self.short(record.revision), "/ui/revisions/\(HTML.segment(record.revision))"), (id, nil),
            ],
            body: """
                <h1>Inference <code>\(HTML.escape(id))</code></h1>
                <dl class="facts">\(facts.map { "<dt>\(HTML.escape($0.0))</dt><dd>\($0.1)</dd>" }.joined())</dl>
                \(record.error.map { "<p class=\"error\">\(HTML.escape($0))</p>" } ?? "")
                <h2>Input (\(HTML.escape(record.inputKind.rawValue)))</h2>
                <pre id="input">\(HTML.escape(record.input))</pre>
                <h2>Output</h2>
                <pre id="output">\(HTML.escape(record.output))</pre>
                \(Self.constraintAndTools(record.sampling))
                <h2>Sampling</h2>
                <pre id="sampling">\(HTML.escape(record.sampling))</pre>
                \(replayable ? "<form method=\"post\" action=\"/ui/inferences/\(HTML.segment(id))/replay\"><button type=\"submit\" id=\"replay\">Replay</button> <span class=\"meta\">runs it again on the same revision, weights, input and sampling, and compares the tokens</span></form>" : "")
                """)
    }

    /// What the answer had to match (a JSON Schema, any JSON object, a grammar) and the tools it
    /// could call, read from the recorded sampling; nothing when it had neither.
    static func constraintAndTools(_ sampling: String) -> String {
        guard let parameters = try? JSONDecoder().decode(SamplingParameters.self, from: Data(sampling.utf8)) else { return "" }
        func pretty(_ json: String) -> String {
            guard let object = try? JSONSerialization.jsonObject(with: Data(json.utf8), options: [.fragmentsAllowed]),
                let data = try? JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys, .fragmentsAllowed])
            else { return json }
            return String(decoding: data, as: UTF8.self)
        }
        var html = ""
        if let constraint = parameters.constraint {
            let title = constraint.name.map { " <code>\(HTML.escape($0))</code>" } ?? ""
            html += "<h2>Response format: \(HTML.escape(constraint.kind.rawValue))\(title)</h2>"
            if let schema = constraint.schema { html += "<pre id=\"schema\">\(HTML.escape(pretty(schema)))</pre>" }
            if constraint.kind == .grammar { html += "<pre id=\"grammar\">\(HTML.escape(constraint.grammar))</pre>" }
        }
        if let tools = parameters.tools {
            html += "<h2>Tools</h2><p class=\"meta\">choice <code id=\"tool-choice\">\(HTML.escape(tools.choice.description))</code>, "
            html += tools.parallel ? "several calls allowed</p>" : "one call at most</p>"
            html += "<dl class=\"facts\" id=\"tools\">"
            for function in tools.functions {
                let description = function.description.map { "<p>\(HTML.escape($0))</p>" } ?? ""
                html +=
                    "<dt><code>\(HTML.escape(function.name))</code></dt><dd>\(description)<pre>\(HTML.escape(pretty(function.parameters)))</pre></dd>"
            }
            html += "</dl>"
        }
        return html
    }

    private func replay(_ id: String, _ context: PedigreeRequestContext) async throws -> String {
        let replay = try await services.inference.replay(id: id, by: context.caller)
        let original = replay.original
        let verdict =
            replay.identical
            ? "<p class=\"verdict identical\" id=\"verdict\">Identical: the same \(replay.replay.summary.completionTokenCount) tokens.</p>"
            : "<p class=\"verdict different\" id=\"verdict\">Different: the tokens first differ at position \(replay.firstDifference ?? 0).</p>"
        return HTML.page(
            signOut: context.principal.name != nil,
            title: "Replay of \(id)",
            crumbs: [
                ("models", "/ui/"), (original.model, "/ui/models/\(HTML.segment(original.model))"), (id, "/ui/inferences/\(HTML.segment(id))"),
                ("replay", nil),
            ],
            body: """
                <h1>Replay of <a href="/ui/inferences/\(HTML.segment(id))"><code>\(HTML.escape(id))</code></a></h1>
                \(verdict)
                <p class="meta">Recorded as <a href="/ui/inferences/\(HTML.segment(replay.replay.id))"><code>\(HTML.escape(replay.replay.id))</code></a>.</p>
                <div class="pair"><div><h2>Recorded</h2><pre>\(HTML.escape(original.output))</pre></div>
                <div><h2>Now</h2><pre>\(HTML.escape(replay.replay.summary.text))</pre></div></div>
                """)
    }

    // MARK: Login

    private func login(_ request: Request) async -> Response {
        guard let body = try? await RequestBody.collect(request, timeout: services.configuration.httpIdleTimeout) else {
            return Self.html(.badRequest, Self.loginPage(message: "The form could not be read."))
        }
        let key = formDecoded(String(buffer: body))["key"]?.trimmingCharacters(in: .whitespaces) ?? ""
        guard case .success(let principal) = services.access.current().authenticate(key: key), principal.name != nil else {
            return Self.html(.unauthorized, Self.loginPage(message: "That key is not valid."))
        }
        var response = Self.redirect("/ui/")
        response.headers[.setCookie] = Self.cookieHeader(value: key, maxAge: Self.cookieLifetime, secure: services.configuration.tls != nil)
        return response
    }

    /// A signed-in browser keeps its key this long (then signs in again).
    static let cookieLifetime = 12 * 3600

    /// The key's cookie: for these pages only, not for scripts, not sent cross-site, and over TLS
    /// only when the listener is TLS.
    static func cookieHeader(value: String, maxAge: Int, secure: Bool) -> String {
        "\(cookie)=\(value); Path=/ui; Max-Age=\(maxAge); HttpOnly; SameSite=Strict" + (secure ? "; Secure" : "")
    }

    // MARK: Plumbing

    /// Runs a page; a failure is thrown to the group's `ErrorRendering` (an HTML page with the
    /// code's status).
    func page(_ context: PedigreeRequestContext, _ body: () async throws -> String) async throws -> Response {
        Self.html(.ok, try await body())
    }

    static let contentSecurityPolicy =
        "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"

    static func html(_ status: HTTPResponse.Status, _ text: String) -> Response {
        Response(
            status: status,
            headers: [
                .contentType: "text/html; charset=utf-8", .contentSecurityPolicy: contentSecurityPolicy, .xContentTypeOptions: "nosniff",
                .referrerPolicy: "same-origin", .cacheControl: "no-store",
            ],
            body: ResponseBody(byteBuffer: ByteBuffer(string: text)))
    }

    static func redirect(_ location: String) -> Response {
        Response(status: .seeOther, headers: [.location: location], body: ResponseBody())
    }

    static func loginPage(message: String?) -> String {
        HTML.page(
            title: "Sign in", crumbs: [("sign in", nil)],
            body: """
                <h1>Sign in</h1>
                \(message.map { "<p class=\"error\">\(HTML.escape($0))</p>" } ?? "")
                <p class="meta">This server requires an API key (<code>pedigree keys create</code>). It is kept in a cookie for these pages only.</p>
                <form method="post" action="/ui/login"><input type="password" name="key" autocomplete="off" placeholder="pdg_…" size="64"> <button type="submit">Sign in</button></form>
                """)
    }

    /// `name@` and the first 12 hex digits of a canonical id.
    static func short(_ id: String) -> String {
        guard let at = id.lastIndex(of: "@") else { return id }
        return String(id[...at]) + String(id[id.index(after: at)...].prefix(12))
    }

    static func excerpt(_ text: String) -> String { text.count > 80 ? String(text.prefix(80)) + "…" : text }

    static let stylesheet = """
        :root { --ink: #1d232a; --muted: #5b6570; --line: #d8dee4; --accent: #0b63c5; --paper: #fbfcfd; --stage: #e8f1fc; --data: #eaf6ec; --code: #f3eefb; --artifact: #fdf2e3; }
        * { box-sizing: border-box; }
        body { margin: 0; font: 15px/1.5 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--ink); background: var(--paper); }
        header { display: flex; gap: 1rem; align-items: baseline; padding: .7rem 1.5rem; border-bottom: 1px solid var(--line); background: #fff; }
        header .brand { font-weight: 700; color: var(--ink); text-decoration: none; }
        header .aside { margin-left: auto; }
        header .sep { color: var(--muted); }
        main { padding: 1rem 1.5rem 3rem; max-width: 1200px; }
        a { color: var(--accent); }
        h1 { font-size: 1.5rem; margin: .5rem 0; }
        h1 code.rev { font-size: .9rem; color: var(--muted); }
        h2 { font-size: 1.1rem; margin-top: 2rem; border-bottom: 1px solid var(--line); padding-bottom: .2rem; }
        code, pre { font: 13px/1.4 ui-monospace, SFMono-Regular, Menlo, monospace; }
        pre { background: #fff; border: 1px solid var(--line); padding: .7rem; white-space: pre-wrap; word-break: break-word; }
        table { border-collapse: collapse; width: 100%; background: #fff; }
        th, td { text-align: left; padding: .35rem .6rem; border-bottom: 1px solid var(--line); vertical-align: top; }
        th { font-weight: 600; color: var(--muted); font-size: .85rem; }
        .meta { color: var(--muted); }
        .stage-tag { display: inline-block; padding: 0 .4rem; border-radius: .6rem; background: var(--stage); font-size: .8rem; }
        #evaluation-charts { display: flex; flex-wrap: wrap; gap: .5rem 1.5rem; }
        figure.chart { margin: 0; }
        figure.chart figcaption { font-size: .8rem; color: var(--muted, #666); }
        .change.regressed { color: #b00; } .change.improved { color: #070; }
        dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: .2rem 1rem; }
        dl.facts dt { color: var(--muted); }
        dl.facts dd { margin: 0; }
        .graph { overflow-x: auto; background: #fff; border: 1px solid var(--line); padding: .5rem; }
        svg.pipeline rect { stroke: #9aa6b2; fill: #fff; }
        svg.pipeline .stage rect { fill: var(--stage); }
        svg.pipeline .dataset rect { fill: var(--data); }
        svg.pipeline .code rect { fill: var(--code); }
        svg.pipeline .artifact rect { fill: var(--artifact); }
        svg.pipeline text { font: 12px ui-monospace, monospace; fill: var(--ink); }
        svg.pipeline text.title { font-weight: 700; }
        svg.pipeline .edge { fill: none; stroke: #8795a1; stroke-width: 1.4; }
        svg.pipeline marker path { fill: #8795a1; }
        .error { color: #b42318; }
        .verdict { font-weight: 600; padding: .5rem .8rem; border-radius: .3rem; }
        .verdict.identical { background: var(--data); }
        .verdict.different { background: #fde8e7; }
        .pair { display: grid; grid-template-columns: 1fr 1fr; gap: 1rem; }
        button { font: inherit; padding: .3rem .9rem; }
        """
}
