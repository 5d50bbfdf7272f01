import ArgumentParser
import Lineage
import Logging
import Serving

struct Models: AsyncParsableCommand, ConfiguredCommand {
    static let configurationGroups: [ConfigurationKey.Group] = [.common]

    static let configuration = CommandConfiguration(abstract: "List the models on the default branch.")

    @OptionGroup var common: CommonOptions

    @Flag(help: "Print JSON.")
    var json = false

    func run() async throws {
        let loaded = try await loadConfiguration(common, quiet: true)
        let service = try orExit { try Services.openLineage(loaded.serving, logger: Logger(label: "pedigree")) }
        let models = try orExit { try service.models() }
        if json {
            print(try encodeJSON(models))
            return
        }
        let registry = try orExit { try service.registry() }
        for model in models {
            let versions = registry.versions(of: model.name).map(\.name)
            let stages = registry.stages(of: model.name)
            print("\(model.name)\t\(model.path)\tversions: \(versions.joined(separator: ","))\tstages: \(stages.joined(separator: ","))")
        }
    }
}
