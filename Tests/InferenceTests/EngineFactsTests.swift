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

    @Test func whatALoadDecidedIsComparedWhereBothKnowIt() {
        var loaded = Self.facts()
        loaded.tiledMatmul = false
        loaded.devices = []
        loaded.gpuLayers = 0
        loaded.repack = false
        loaded.batchInvariant = true
        // An engine's configured facts (no model yet) route a replay to it.
        var configured = Self.facts()
        configured.tiledMatmul = false
        configured.devices = []
        #expect(configured.reproduces(loaded) && loaded.reproduces(configured))
        var repacked = loaded
        repacked.repack = true
        #expect(!repacked.reproduces(loaded))
        var offloaded = loaded
        offloaded.gpuLayers = 31
        #expect(!offloaded.reproduces(loaded))
        // batchInvariant follows from the rest: never compared, but a replay is guaranteed only with it.
        var varying = loaded
        varying.batchInvariant = false
        // Either run may have shared its calls: both must be invariant.
        #expect(varying.reproduces(loaded) && !varying.guarantees(loaded) && !loaded.guarantees(varying) && loaded.guarantees(loaded))
        var tiled = loaded
        tiled.tiledMatmul = true
        #expect(!tiled.reproduces(loaded))
        #expect(!EngineFacts.external("vllm").guarantees(.external("vllm")))
    }

    @Test func recordsMadeBeforeTheKernelFactsRanAsGgmlDoesByDefault() {
        var now = Self.facts(mode: .mixed, ubatch: 512)
        now.tiledMatmul = true
        now.devices = []
        // An earlier build's record: no tiledMatmul, no devices (the tiled GEMM was on, no GPU named).
        #expect(Self.facts(mode: .mixed, ubatch: 512).reproduces(now) && now.reproduces(Self.facts(mode: .mixed, ubatch: 512)))
        var invariant = Self.facts()
        invariant.tiledMatmul = false
        invariant.devices = []
        #expect(!Self.facts().reproduces(invariant))
    }

    @Test func aModelsPlacementIsInItsFacts() {
        let configuration = BatchEngine.Configuration(slots: 4, contextPerSlot: 2048, queueLimit: 16, threads: 2)
        var placement = Placement()
        placement.repack = false
        placement.batchInvariant = true
        let facts = configuration.facts(placement: placement)
        #expect(facts.repack == false && facts.gpuLayers == 0 && facts.batchInvariant == true && facts.devices == [])
        var mixed = configuration
        mixed.mode = .mixed
        #expect(mixed.facts(placement: placement).batchInvariant == false)
        #expect(configuration.facts().batchInvariant == nil)
    }

    @Test func gpuLayersReadAsConfigured() {
        #expect(GPULayers("all") == .all && GPULayers("AUTO") == .auto && GPULayers("12") == .count(12))
        #expect(GPULayers("-1") == nil && GPULayers("many") == nil)
        #expect(GPULayers.count(7).description == "7")
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
