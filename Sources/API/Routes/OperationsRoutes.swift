import Access
import Foundation
import Hummingbird
import Inference
import Lineage
import Serving
import Trust

/// What operators and their probes read: `GET /healthz` (and HEAD) (the process answers; with
/// `Accept: application/json`, its version and build commit too), `GET /readyz`
/// (serving, and the repository readable), `GET /receipt-keys` (the public keys of receipts, the one in use first, then retired ones) and `GET /metrics` (Prometheus text; series by API key
/// only for scrapes that may see every caller).
struct OperationsRoutes: Sendable {
    let services: Services
    let metrics: ServerMetrics

    func add(to group: RouterGroup<PedigreeRequestContext>) {
        let lineage = services.lineage
        let state = services.state
        @Sendable func ready() -> Response {
            guard state.phase == .serving else { return text(.serviceUnavailable, "shutting down\n") }
            do {
                _ = try lineage.head()
                return text(.ok, "ready\n")
            } catch {
                return text(.serviceUnavailable, "repository not ready\n")
            }
        }
        // Plain probes get "ok"; asked for JSON, the build too: `{"status", "version", "commit"}`.
        let health: String = {
            let object = ["status": "ok", "version": PedigreeBuild.version, "commit": PedigreeBuild.commit]
            let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data("{}".utf8)
            return String(decoding: data, as: UTF8.self) + "\n"
        }()
        group.get("healthz") { request, _ -> Response in
            var response =
                request.headers[.accept]?.contains("application/json") == true
                ? text(.ok, health, contentType: "application/json") : text(.ok, "ok\n")
            // Two forms of one URL: a cache must keep them apart.
            response.headers[.vary] = "Accept"
            return response
        }
        group.get("readyz") { _, _ in ready() }
        // Probes that ask with HEAD get the same status, without a body.
        group.head("healthz") { _, _ in Response(status: .ok) }
        group.head("readyz") { _, _ in Response(status: ready().status) }
        // The public keys receipts are signed with (securesystemslib's key format), for anyone to verify them.
        let receiptKeys: String = {
            // The key in use first, then those it replaced (what they signed still verifies).
            let current = services.recorder.receiptKey.map { [$0.published] } ?? []
            let retired = (try? ReceiptKey.retired(at: services.configuration.receiptKeyPath)) ?? []
            let keys = current + (services.recorder.receiptKey == nil ? [] : retired.map(ReceiptKey.published))
            let data = (try? JSONSerialization.data(withJSONObject: ["keys": keys], options: [.sortedKeys])) ?? Data("{}".utf8)
            return String(decoding: data, as: UTF8.self) + "\n"
        }()
        group.get("receipt-keys") { _, _ in text(.ok, receiptKeys, contentType: "application/json") }
        group.get("metrics") { _, context -> Response in
            // Per-key series name every key: only for scrapes that may see every caller.
            let perKey = context.principal.permits(.readAllInferences)
            return text(.ok, await metrics.render(services, perKey: perKey), contentType: "text/plain; version=0.0.4")
        }
    }
}
