import Foundation
import Inference
import Logging
import Testing

@testable import Serving

@Suite struct WorkerPoolTests {
    static let facts = EngineFacts(
        build: "ggml test", cpu: "CPU", threads: 1, batch: 2048, ubatch: 512, prefillChunk: 64, flashAttention: false, mode: .invariant,
        prefixCache: true)

    static func pool(_ urls: [String]) -> WorkerPool {
        WorkerPool(urls: urls, token: nil, facts: facts, validate: { $0 }, logger: .init(label: "test"))
    }

    static func status(models: [WorkerWire.Status.Model] = [], memoryFree: Int64? = nil, draining: Bool = false) -> WorkerWire.Status {
        WorkerWire.Status(engine: facts, models: models, memoryFree: memoryFree, maxModels: 2, draining: draining)
    }

    @Test func rendezvousOrderIsStableAndMovesOnlyTheLeavingWorkersModels() {
        let urls = (1...5).map { "http://10.0.0.\($0):9090" }
        let md5s = (0..<200).map { String(format: "%032x", $0 * 7919) }
        let before = Dictionary(uniqueKeysWithValues: md5s.map { ($0, WorkerPool.rank($0, urls)[0]) })
        // Every worker gets some models.
        #expect(Set(before.values) == Set(urls))
        // Without the third worker, only its models move.
        let remaining = urls.filter { $0 != urls[2] }
        for md5 in md5s {
            let after = WorkerPool.rank(md5, remaining)[0]
            if before[md5] != urls[2] { #expect(after == before[md5]) }
        }
        #expect(WorkerPool.rank(md5s[0], urls) == WorkerPool.rank(md5s[0], urls.reversed()))
    }

    @Test func workersThatWouldMakeARequestWaitGoLast() {
        let urls = ["http://a:1", "http://b:1"]
        let pool = Self.pool(urls)
        let md5 = (0..<100).map { String(format: "%032x", $0) }.first { WorkerPool.rank($0, urls)[0] == urls[0] } ?? ""
        #expect(pool.candidates(md5, size: 100) == urls)
        // Loaded there, every slot busy and requests queued: the other one first.
        _ = pool.update(
            urls[0],
            status: Self.status(models: [
                .init(md5: md5, memory: ModelMemory(devices: [.init(name: ModelMemory.host, weights: 100)]), slots: 4, activeSlots: 4, queueDepth: 2)
            ]))
        #expect(pool.candidates(md5, size: 100) == [urls[1], urls[0]])
        // Loaded with a free slot: back first.
        _ = pool.update(
            urls[0],
            status: Self.status(models: [
                .init(md5: md5, memory: ModelMemory(devices: [.init(name: ModelMemory.host, weights: 100)]), slots: 4, activeSlots: 3, queueDepth: 0)
            ]))
        #expect(pool.candidates(md5, size: 100) == urls)
        // Not loaded and too little free memory: last.
        _ = pool.update(urls[0], status: Self.status(memoryFree: 50))
        #expect(pool.candidates(md5, size: 100) == [urls[1], urls[0]])
        // Draining: not a candidate while another is healthy.
        _ = pool.update(urls[0], status: Self.status(draining: true))
        #expect(pool.candidates(md5, size: 100) == [urls[1]])
        // Replays need the record's engine facts: a worker with others is left out.
        var other = Self.facts
        other.flashAttention = true
        _ = pool.update(urls[0], status: Self.status())
        _ = pool.update(urls[1], status: WorkerWire.Status(engine: other, models: [], memoryFree: nil, maxModels: 2, draining: false))
        #expect(pool.candidates(md5, engine: Self.facts) == [urls[0]])
        #expect(pool.candidates(md5, engine: other) == [urls[1]])
    }
}
