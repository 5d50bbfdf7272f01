import ArgumentParser
import GitStore
import Lineage
import Logging
import Serving

/// `pedigree diff A B`: what changed between two revisions of a model (the GraphQL `compare`).
struct Diff: AsyncParsableCommand, ConfiguredCommand {
    static let configurationGroups: [ConfigurationKey.Group] = [.common]

    static let configuration = CommandConfiguration(
        abstract: "Show what changed between two revisions of a model: commits, datasets, parameters, code, stages, artifact.")

    @Argument(help: "The older revision spec (name@sha, name@v1.0.0, name#stage, …).")
    var a: String

    @Argument(help: "The newer revision spec.")
    var b: String

    @OptionGroup var common: CommonOptions

    @Flag(help: "Print JSON.")
    var json = false

    func run() async throws {
        let loaded = try await loadConfiguration(common, quiet: true)
        let service = try orExit { try Services.openLineage(loaded.serving, logger: Logger(label: "pedigree")) }
        let diff = try orExit { try service.compare(a, b) }
        if json {
            print(try encodeJSON(DiffReport(diff)))
            return
        }
        print("\(diff.a.id) → \(diff.b.id)")
        if diff.related {
            print("commits   \(diff.commits.count)")
            for commit in diff.commits {
                print("          \(commit.sha.prefix(12))  \(commit.author.iso8601)  \(commit.message.split(separator: "\n").first ?? "")")
            }
        } else {
            print("commits   \(diff.b.commit.sha.prefix(12)) does not descend from \(diff.a.commit.sha.prefix(12)) along first parents")
        }
        let artifact = diff.artifactChanged ? "changed" : "same"
        print("artifact  \(artifact)  md5 \(diff.a.artifact.md5) → \(diff.b.artifact.md5)  \(diff.a.artifact.size) → \(diff.b.artifact.size) bytes")
        for stage in diff.stagesAdded { print("stage     + \(stage)") }
        for stage in diff.stagesRemoved { print("stage     - \(stage)") }
        for change in diff.datasets {
            print(
                "dataset   \(change.kind) \(change.path)  \(change.before.map { "\($0.md5) (\($0.size) bytes)" } ?? "-") → \(change.after.map { "\($0.md5) (\($0.size) bytes)" } ?? "-")"
            )
        }
        for change in diff.parameters { print("param     \(change.file):\(change.key)  \(change.before ?? "-") → \(change.after ?? "-")") }
        for change in diff.code { print("code      \(change.kind) \(change.path)  \(change.before?.md5 ?? "-") → \(change.after?.md5 ?? "-")") }
        if diff.datasets.isEmpty && diff.parameters.isEmpty && diff.code.isEmpty && diff.stagesAdded.isEmpty && diff.stagesRemoved.isEmpty {
            print("lineage   no dataset, parameter, code or stage changed")
        }
    }
}

/// `pedigree diff --json`: the change lists with both sides.
private struct DiffReport: Encodable {
    struct Side<Value: Encodable>: Encodable {
        let path: String
        let change: String
        let before: Value?
        let after: Value?
    }
    let a: String
    let b: String
    let related: Bool
    let commits: [String]
    let artifact: [String: [String: String]]
    let datasets: [Side<DatasetInfo>]
    let parameters: [LineageDiff.ParameterChange]
    let code: [Side<String>]
    let stagesAdded: [String]
    let stagesRemoved: [String]

    init(_ diff: LineageDiff) {
        a = diff.a.id
        b = diff.b.id
        related = diff.related
        commits = diff.commits.map(\.sha)
        artifact = [
            "a": ["md5": diff.a.artifact.md5, "size": String(diff.a.artifact.size)],
            "b": ["md5": diff.b.artifact.md5, "size": String(diff.b.artifact.size)],
        ]
        datasets = diff.datasets.map { Side(path: $0.path, change: $0.kind, before: $0.before, after: $0.after) }
        parameters = diff.parameters
        code = diff.code.map { Side(path: $0.path, change: $0.kind, before: $0.before?.md5, after: $0.after?.md5) }
        stagesAdded = diff.stagesAdded
        stagesRemoved = diff.stagesRemoved
    }
}
