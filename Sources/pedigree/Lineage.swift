import ArgumentParser
import GitStore
import Lineage
import Logging
import Serving

struct LineageCommand: AsyncParsableCommand, ConfiguredCommand {
    static let configurationGroups: [ConfigurationKey.Group] = [.common]

    static let configuration = CommandConfiguration(
        commandName: "lineage", abstract: "Show where a model revision came from.")

    @Argument(help: "A revision spec: name@sha, name@branch, name@v1.2.0, name#stage, name, or a bare SHA.")
    var spec: String

    @OptionGroup var common: CommonOptions

    @Flag(help: "Print JSON.")
    var json = false

    func run() async throws {
        let loaded = try await loadConfiguration(common, quiet: true)
        let service = try orExit { try Services.openLineage(loaded.serving, logger: Logger(label: "pedigree")) }
        let lineage = try orExit { try service.lineage(spec) }
        if json {
            print(try encodeJSON(lineage))
            return
        }
        print("\(lineage.id)")
        print("commit    \(lineage.commit.sha)  \(lineage.commit.author.name) <\(lineage.commit.author.email)>  \(lineage.commit.author.iso8601)")
        print("          \(lineage.commit.message.split(separator: "\n").first ?? "")")
        let artifact = lineage.artifact
        switch artifact.origin {
        case .dvc: print("artifact  \(artifact.path)  md5 \(artifact.md5)  \(artifact.size) bytes")
        case .git(let blob):
            print("artifact  \(artifact.path)  md5 \(artifact.md5)  \(artifact.size) bytes  committed to Git (blob \(blob.prefix(12)))")
        case .lfs: print("artifact  \(artifact.path)  sha256 \(artifact.sha256 ?? "")  \(artifact.size) bytes  in Git LFS")
        }
        if lineage.pipeline.isEmpty { print("pipeline  (tracked by a .dvc file)") }
        for stage in lineage.pipeline { print("stage     \(stage.name): \(stage.cmd)") }
        for dataset in lineage.datasets {
            let origin =
                dataset.source.map { "  imported from \(Redaction.urlCredentials(in: $0.url)) \($0.path)@\(($0.rev ?? "").prefix(12))" } ?? ""
            print("dataset   \(dataset.path)  md5 \(dataset.md5)  \(dataset.size) bytes  commit \(dataset.commit?.sha.prefix(12) ?? "-")\(origin)")
        }
        for parameter in lineage.parameters { print("param     \(parameter.file):\(parameter.key) = \(parameter.value)") }
        for code in lineage.code { print("code      \(code.path)  md5 \(code.md5)") }
    }
}
