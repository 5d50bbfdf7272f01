import ArgumentParser
import Foundation
import Inference
import Lineage
import Logging
import Serving

struct Infer: AsyncParsableCommand, ConfiguredCommand {
    static let configurationGroups: [ConfigurationKey.Group] = [.common, .artifacts, .inference, .ledger]

    static let configuration = CommandConfiguration(
        abstract: "Generate with a model revision; tokens stream to standard output as they come.")

    @Argument(help: "A revision spec: name@sha, name@branch, name@v1.2.0, name#stage, name, or a bare SHA.")
    var spec: String

    @Option(help: "Raw text to complete.")
    var prompt: String?

    @Option(help: "A user message, rendered with the model's chat template (instead of --prompt).")
    var message: String?

    @Option(help: "Seed of the random draw (random when not given; printed at the end).")
    var seed: UInt32?

    @Option(help: "0 is greedy.")
    var temperature = 0.8

    @Option(help: "Tokens to generate at most.")
    var maxTokens = 128

    @Option(help: "Stop when this text appears (repeatable).")
    var stop: [String] = []

    @Flag(help: "Print one JSON object (text, tokens, lineage id, seed, timings) instead of streaming.")
    var json = false

    @OptionGroup var common: CommonOptions

    func run() async throws {
        let input: GenerationRequest.Input
        switch (prompt, message) {
        case (let prompt?, nil): input = .prompt(prompt)
        case (nil, let message?): input = .messages([ChatMessage(role: "user", content: message)])
        default: throw ValidationError("give exactly one of --prompt and --message")
        }
        let loaded = try await loadConfiguration(common, quiet: true)
        let services = try orExit { try Services.open(loaded.serving, logger: Logger(label: "pedigree")) }
        let revision = try orExit { try services.lineage.lineage(spec) }
        let sampling = SamplingParameters(temperature: temperature, seed: seed, maxTokens: maxTokens, stop: stop)
        let json = self.json
        let finished = try await services.withBackgroundWork {
            try await orExit { () async throws -> InferenceAnswer? in
                var answer: InferenceAnswer?
                for try await event in try await services.inference.start(
                    GenerationRequest(input: input, sampling: sampling), on: revision, by: RequestInfo())
                {
                    switch event {
                    case .token(let text) where !json:
                        FileHandle.standardOutput.write(Data(text.utf8))
                    case .token: break
                    case .payload(let done): answer = done
                    }
                }
                return answer
            }
        }
        guard let answer = finished else { throw ExitCode(1) }
        let summary = answer.summary
        if json {
            print(try encodeJSON(InferOutput(id: answer.id, revision: answer.revision.id, summary: summary)))
        } else {
            let rate = String(format: "%.1f", summary.tokensPerSecond)
            FileHandle.standardError.write(
                Data(
                    "\n[\(answer.id) \(answer.revision.id) seed \(summary.seed), \(summary.completionTokenCount) tokens, \(summary.finishReason.rawValue), \(rate) tokens/s]\n"
                        .utf8))
        }
    }

    /// The `--json` answer.
    struct InferOutput: Encodable {
        /// The ledger id.
        let id: String
        let revision: String
        let summary: GenerationSummary
    }
}
