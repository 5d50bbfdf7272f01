import API
import ArgumentParser
import GitStore
import Lineage
import Logging
import ServiceLifecycle
import Serving

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Serve GraphQL, GraphiQL, the OpenAI-compatible routes and health checks over HTTP; drain on SIGTERM.")

    @OptionGroup var common: CommonOptions
    @OptionGroup var server: ServerOptions
    @OptionGroup var artifacts: ArtifactOptions
    @OptionGroup var inference: InferenceOptions
    @OptionGroup var ledger: LedgerOptions

    func run() async throws {
        let loaded = try await loadConfiguration(common, [server, artifacts, inference, ledger])
        let logger = Logger(label: "pedigree")
        let services = try orExit { try Services.open(loaded.serving, logger: logger) }
        logger.info(
            "serving repository",
            metadata: [
                "source": "\(LoadedConfiguration.redactingURLPasswords(services.lineage.repository.source ?? ""))",
                "models": "\((try? services.lineage.models().count) ?? 0)", "host": "\(loaded.serving.host)", "port": "\(loaded.serving.port)",
            ])
        let app = try buildApplication(services: services, logger: logger)
        try await services.serviceGroup(http: app, logger: logger).run()
        logger.info("stopped")
    }
}
