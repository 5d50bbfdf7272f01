import API
import Access
import ArgumentParser
import Foundation
import GitStore
import Lineage
import Logging
import ServiceLifecycle
import Serving

struct Serve: AsyncParsableCommand, ConfiguredCommand {
    static let configurationGroups: [ConfigurationKey.Group] = [.common, .server, .artifacts, .inference, .ledger, .access]

    static let configuration = CommandConfiguration(
        abstract: "Serve GraphQL, GraphiQL, the OpenAI-compatible routes and health checks over HTTP; drain on SIGTERM.")

    @OptionGroup var common: CommonOptions

    func run() async throws {
        let loaded = try await loadConfiguration(common)
        let logger = Logger(label: "pedigree")
        try checkAccess(loaded.serving, logger: logger)
        // swift-metrics reports into the registry /metrics renders (off: nothing is recorded).
        let telemetry = loaded.serving.metrics ? Telemetry.bootstrap() : Telemetry()
        let services = try orExit { try Services.open(loaded.serving, telemetry: telemetry, logger: logger) }
        logger.info(
            "serving repository",
            metadata: [
                "source": "\(Redaction.urlCredentials(in: services.lineage.repository.source ?? ""))",
                "models": "\((try? services.lineage.models().count) ?? 0)", "host": "\(loaded.serving.host)", "port": "\(loaded.serving.port)",
            ])
        logger.info(
            "access", metadata: ["authentication": "\(services.access.isEnabled ? "on" : "off")", "keys_file": "\(loaded.serving.keys.url.path)"])
        let tracing = try loaded.serving.otlpEndpoint.map { try Traces.bootstrap(endpoint: $0, logger: logger) }
        let app = try buildApplication(services: services, logger: logger)
        try await services.serviceGroup(http: app, observability: tracing.map { [$0] } ?? [], logger: logger).run()
        logger.info("stopped")
    }
}

/// The safe default: a server that others can reach requires keys. A non-loopback address with
/// no keys refuses to start (exit 2) unless `--insecure-no-auth` says it is meant; a keys file
/// that cannot be read refuses too.
func checkAccess(_ configuration: ServingConfiguration, logger: Logger) throws {
    func refuse(_ message: String) -> ExitCode {
        FileHandle.standardError.write(Data("error: \(message)\n".utf8))
        return ExitCode(2)
    }
    let keys: [KeyRecord]
    do {
        keys = try configuration.keys.load()
    } catch {
        throw refuse("keys file: \(error.description)")
    }
    guard !configuration.listensOnLoopbackOnly, keys.isEmpty else { return }
    guard configuration.insecureNoAuth else {
        throw refuse(
            "refusing to serve \(configuration.host) without API keys: anyone who reaches it could generate, read every recorded "
                + "prompt and change the server. Create a key first (pedigree keys create --name NAME --role admin --cache \(configuration.cache.path)), "
                + "listen on 127.0.0.1, or pass --insecure-no-auth if that is really meant.")
    }
    logger.warning(
        "serving a non-loopback address without authentication (--insecure-no-auth): anyone who reaches the port may do everything",
        metadata: ["host": "\(configuration.host)"])
}
