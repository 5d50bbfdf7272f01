import Synchronization

/// A small thread-safe cache with least-recently-used eviction and single-flight computation.
///
/// `value(for:compute:)` computes a missing key once however many tasks ask for it at the same
/// time: the first caller computes while holding that key's own lock, the others wait on it and
/// take its result. Different keys compute in parallel; the cache-wide lock is only held for
/// dictionary updates. (A blob read twice by two concurrent resolvers is what this prevents: the
/// metrics count Git reads, and a request must not read the same blob twice.)
final class BoundedCache<Key: Hashable & Sendable, Value: Sendable>: Sendable {
    /// A computation in progress: its lock is held by the task computing it.
    private final class Flight: Sendable {
        let result = Mutex<Result<Value, any Error>?>(nil)
    }

    private struct State {
        var values: [Key: (value: Value, tick: UInt64)] = [:]
        var flights: [Key: Flight] = [:]
        var tick: UInt64 = 0
        mutating func lookup(_ key: Key) -> Value? {
            guard let entry = values[key] else { return nil }
            tick += 1
            values[key] = (entry.value, tick)
            return entry.value
        }

        mutating func insert(_ value: Value, for key: Key, capacity: Int) {
            tick += 1
            values[key] = (value, tick)
            if values.count > capacity {
                // Evict the oldest quarter at once so eviction cost stays amortised.
                let victims = values.sorted { $0.value.tick < $1.value.tick }.prefix(max(1, capacity / 4))
                for victim in victims { values.removeValue(forKey: victim.key) }
            }
        }
    }

    private let state = Mutex(State())
    private let capacity: Int

    init(capacity: Int) { self.capacity = capacity }

    func value(for key: Key) -> Value? {
        state.withLock { state in state.lookup(key) }
    }

    func insert(_ value: Value, for key: Key) {
        state.withLock { state in state.insert(value, for: key, capacity: capacity) }
    }

    /// The cached value for `key`, computing it once when missing. An error is handed to the
    /// callers that waited for that computation and is not cached.
    func value(for key: Key, compute: () throws -> Value) throws -> Value {
        let flight: Flight
        switch state.withLock({ state -> Either in
            if let cached = state.lookup(key) { return .cached(cached) }
            if let existing = state.flights[key] { return .flight(existing) }
            let created = Flight()
            state.flights[key] = created
            return .flight(created)
        }) {
        case .cached(let value): return value
        case .flight(let existing): flight = existing
        }
        let result = flight.result.withLock { result -> Result<Value, any Error> in
            if let done = result { return done }
            let computed = Result { try compute() }
            result = computed
            state.withLock { state in
                if case .success(let value) = computed { state.insert(value, for: key, capacity: capacity) }
                if state.flights[key] === flight { state.flights[key] = nil }
            }
            return computed
        }
        return try result.get()
    }

    func removeAll() { state.withLock { $0.values.removeAll() } }

    private enum Either {
        case cached(Value)
        case flight(Flight)
    }
}
