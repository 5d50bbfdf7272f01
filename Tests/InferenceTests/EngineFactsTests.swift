import Testing

@testable import Inference

/// Which recorded engines an engine reproduces.
@Suite struct EngineFactsTests {
    static func facts(mode: DecodeMode = .invariant, batch: Int = 64, ubatch: Int = 64, threads: Int = 2) -> EngineFacts {
        EngineFacts(
            build: "ggml 0.25.3 (test)", cpu: "AVX2", threads: threads, batch: batch, ubatch: ubatch, prefillChunk: 64, flashAttention: false,
            mode: mode, prefixCache: true)
    }

    @Test func theInvariantModeIgnoresBatchSizesThatNeverSplitACall() {
        // A record of an earlier build (ubatch 512, batch 2048) against one whose ubatch is its largest call.
        #expect(Self.facts(batch: 64, ubatch: 64).reproduces(Self.facts(batch: 2048, ubatch: 512)))
        // Anything else that differs does not.
        #expect(!Self.facts(threads: 4).reproduces(Self.facts()))
        #expect(!Self.facts(mode: .mixed, ubatch: 512).reproduces(Self.facts(mode: .mixed, ubatch: 256)))
        #expect(!EngineFacts.external("vllm").reproduces(.external("vllm")))
    }

    @Test func theConfiguredFactsAreTheEnginesOwn() {
        var configuration = BatchEngine.Configuration(slots: 4, contextPerSlot: 2048, queueLimit: 16, threads: 2)
        #expect(configuration.facts().ubatch == 64 && configuration.facts().batch == 64)
        configuration.slots = 128
        #expect(configuration.facts().ubatch == 128)
        configuration.mode = .mixed
        #expect(configuration.facts().ubatch == 512 && configuration.facts().batch == 2048)
    }
}
