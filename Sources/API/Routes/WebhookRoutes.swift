import Foundation
import Hummingbird
import Lineage
import Logging
import NIOCore
import Serving

/// `POST /hooks/git`: a Git host's push notification, signed with `webhook-secret` (HMAC), fetches
/// the repository now. Off (404) without a secret.
struct WebhookRoutes: Sendable {
    let services: Services

    func add(to group: RouterGroup<PedigreeRequestContext>) {
        let services = self.services
        group.post("hooks/git") { request, context -> Response in
            guard let secret = services.configuration.webhookSecret else {
                throw EdgeError(.notFound, "the Git webhook is off: set webhook-secret")
            }
            let body = try await RequestBody.collect(request, timeout: services.configuration.httpIdleTimeout)
            guard GitWebhook(secret: secret).verify(request.headers, body: Data(body.readableBytesView)) else {
                context.logger.warning("webhook refused: bad or missing signature")
                var refusal = EdgeError(.unauthenticated, "bad or missing signature")
                refusal.headers[.wwwAuthenticate] = nil  // signed, not a bearer key
                throw refusal
            }
            do {
                try await services.refresher.refresh()
                return text(.ok, "refreshed \((try? services.lineage.head()) ?? "")\n")
            } catch {
                let (code, message) = ErrorCode.classify(error)
                throw EdgeError(code, "refresh failed: \(message)", status: .badGateway)
            }
        }
    }
}
