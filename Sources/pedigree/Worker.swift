import API
import ArgumentParser
import DVCKit
import Foundation
import Inference
import Logging
import ServiceLifecycle
import Serving

struct Worker: AsyncParsableCommand, ConfiguredCommand {
    static let configurationGroups: [ConfigurationKey.Group] = [.common, .worker, .artifacts, .inference]

    static let configuration = CommandConfiguration(
        abstract: "Serve models to a gateway: the inference engine and a verified artifact cache, no Git mirror (see WorkerWire).")

    @OptionGroup var common: CommonOptions

    func run() async throws {
        let loaded = try await loadConfiguration(common, requireRepo: false)
        let configuration = loaded.serving
        let logger = Logger(label: "pedigree.worker")
        let token = try readToken(configuration)
        let dvcConfig = try readDVCConfig(configuration)
        let services = try orExit { try WorkerServices.open(configuration, token: token, dvcConfig: dvcConfig, logger: logger) }
        logger.info(
            "worker",
            metadata: [
                "host": "\(configuration.host)", "port": "\(configuration.port)", "token": "\(token == nil ? "none" : "required")",
                "remotes": "\(dvcConfig.remotes.keys.sorted().joined(separator: ","))", "engine": "\(services.models.engineFacts.json)",
            ])
        let app = buildWorkerApplication(services: services, logger: logger)
        try await services.serviceGroup(http: app, logger: logger).run()
        logger.info("stopped")
    }

    /// The shared token, required unless the worker listens on loopback only (or
    /// `--insecure-no-auth` says an open worker is meant).
    private func readToken(_ configuration: ServingConfiguration) throws -> String? {
        guard let path = configuration.workerTokenFile else {
            guard configuration.listensOnLoopbackOnly || configuration.insecureNoAuth else {
                throw refuse("refusing to serve \(configuration.host) without --worker-token-file: anyone who reaches it could generate")
            }
            return nil
        }
        guard let token = try? configuration.workerToken(), token.count >= 16 else {
            throw refuse("worker-token-file \(path): cannot be read, or holds fewer than 16 characters")
        }
        return token
    }

    /// The worker's DVC remotes, read as the operator's own `.dvc/config.local`.
    private func readDVCConfig(_ configuration: ServingConfiguration) throws -> DVCConfig {
        guard let path = configuration.dvcConfig else {
            // Only --remote (a URL, or nothing: every request then fails with its reason).
            guard let remote = configuration.remote else { return DVCConfig() }
            var config = DVCConfig(defaultRemote: "default", remotes: ["default": ["url": remote]])
            config.localOptions = ["default": ["url"]]
            return config
        }
        guard let data = FileManager.default.contents(atPath: path) else { throw refuse("dvc-config \(path): cannot be read") }
        do {
            return try DVCConfig(config: nil, local: data)
        } catch {
            throw refuse("dvc-config \(path): \(error)")
        }
    }

    private func refuse(_ message: String) -> ExitCode {
        FileHandle.standardError.write(Data("error: \(message)\n".utf8))
        return ExitCode(2)
    }
}
