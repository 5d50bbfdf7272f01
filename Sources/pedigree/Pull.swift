import ArgumentParser
import ArtifactStore
import Foundation
import Lineage
import Logging
import Serving

struct Pull: AsyncParsableCommand, ConfiguredCommand {
    static let configurationGroups: [ConfigurationKey.Group] = [.common, .artifacts]

    static let configuration = CommandConfiguration(
        abstract: "Fetch model revisions' artifacts from their DVC remote into the cache; print each cached file's path, in order.")

    @Argument(help: "Revision specs: name@sha, name@branch, name@v1.2.0, name#stage, name, or a bare SHA. Several are pulled together.")
    var specs: [String]

    @OptionGroup var common: CommonOptions

    func run() async throws {
        let loaded = try await loadConfiguration(common, quiet: true)
        let logger = Logger(label: "pedigree")
        let service = try orExit { try Services.openLineage(loaded.serving, logger: logger) }
        let store = try orExit { try Services.openArtifacts(loaded.serving, lineage: service, logger: logger) }
        // Specs are resolved here, at the edge; below this the revisions travel as values.
        let revisions = try orExit { try specs.map { try service.lineage($0) } }
        let progress = revisions.map { TransferProgress(label: $0.id) }
        let reporter = Task { await ProgressReporter(progress: progress).run() }
        let results = await withTaskGroup(of: (Int, Result<RevisionArtifacts.Pulled, any Error>).self) { group in
            for (index, revision) in revisions.enumerated() {
                group.addTask {
                    do {
                        return (index, .success(try await store.pull(revision, progress: progress[index])))
                    } catch {
                        return (index, .failure(error))
                    }
                }
            }
            var results: [Int: Result<RevisionArtifacts.Pulled, any Error>] = [:]
            for await (index, result) in group { results[index] = result }
            return results.sorted { $0.key < $1.key }.map(\.value)
        }
        reporter.cancel()
        _ = await reporter.result
        for result in results {
            let pulled = try orExit { try result.get() }
            FileHandle.standardError.write(
                Data("pulled \(pulled.revision.id): \(pulled.downloadedObjects) objects, \(pulled.downloadedBytes) bytes downloaded\n".utf8))
            print(pulled.path)
        }
    }
}
