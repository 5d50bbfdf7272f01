import Synchronization

/// A small thread-safe cache with least-recently-used eviction.
///
/// Values are computed outside the lock, so two tasks may compute the same key at once; both
/// results are equal (keys are immutable ids), and only reads of shared state take the lock.
final class BoundedCache<Key: Hashable & Sendable, Value: Sendable>: Sendable {
    private struct State {
        var values: [Key: (value: Value, tick: UInt64)] = [:]
        var tick: UInt64 = 0
    }

    private let state = Mutex(State())
    private let capacity: Int

    init(capacity: Int) { self.capacity = capacity }

    func value(for key: Key) -> Value? {
        state.withLock { state in
            guard let entry = state.values[key] else { return nil }
            state.tick += 1
            state.values[key] = (entry.value, state.tick)
            return entry.value
        }
    }

    func insert(_ value: Value, for key: Key) {
        state.withLock { state in
            state.tick += 1
            state.values[key] = (value, state.tick)
            if state.values.count > capacity {
                // Evict the oldest quarter at once so eviction cost stays amortised.
                let victims = state.values.sorted { $0.value.tick < $1.value.tick }.prefix(max(1, capacity / 4))
                for victim in victims { state.values.removeValue(forKey: victim.key) }
            }
        }
    }

    func value(for key: Key, compute: () throws -> Value) rethrows -> Value {
        if let cached = value(for: key) { return cached }
        let computed = try compute()
        insert(computed, for: key)
        return computed
    }

    func removeAll() { state.withLock { $0.values.removeAll() } }
}
