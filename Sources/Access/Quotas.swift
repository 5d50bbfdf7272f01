import Synchronization

/// The quotas of a key; nil: no limit.
public struct QuotaLimits: Sendable, Codable, Equatable {
    /// Requests (HTTP requests, WebSocket operations) per minute.
    public var requestsPerMinute: Int?
    /// Generated tokens per minute.
    public var tokensPerMinute: Int?
    /// Generations running at once.
    public var concurrentGenerations: Int?

    public init(requestsPerMinute: Int? = nil, tokensPerMinute: Int? = nil, concurrentGenerations: Int? = nil) {
        self.requestsPerMinute = requestsPerMinute
        self.tokensPerMinute = tokensPerMinute
        self.concurrentGenerations = concurrentGenerations
    }

    /// These limits, with `defaults` where these are unset.
    public func over(_ defaults: QuotaLimits) -> QuotaLimits {
        QuotaLimits(
            requestsPerMinute: requestsPerMinute ?? defaults.requestsPerMinute, tokensPerMinute: tokensPerMinute ?? defaults.tokensPerMinute,
            concurrentGenerations: concurrentGenerations ?? defaults.concurrentGenerations)
    }

    public var isUnlimited: Bool { requestsPerMinute == nil && tokensPerMinute == nil && concurrentGenerations == nil }
}

/// A token bucket: holds up to `capacity`, refilled at `capacity` per minute. A generation
/// reserves its most tokens when it starts, possibly leaving the bucket in debt (it admits again
/// once refilled above zero), and what it did not use is given back when it ends.
struct TokenBucket {
    let capacity: Double
    var level: Double
    var updated: UInt64

    init(perMinute: Int, now: UInt64) {
        capacity = Double(perMinute)
        level = capacity
        updated = now
    }

    private var perNanosecond: Double { capacity / 60e9 }

    mutating func refill(_ now: UInt64) {
        if now > updated { level = min(capacity, level + Double(now - updated) * perNanosecond) }
        updated = max(updated, now)
    }

    /// Takes `amount` when the bucket holds it; else the whole seconds until it will.
    mutating func take(_ amount: Double, now: UInt64) -> Int? {
        refill(now)
        if level >= amount {
            level -= amount
            return nil
        }
        return Self.seconds((amount - level) / perNanosecond)
    }

    /// Seconds until the level is above zero; nil when it is.
    mutating func debt(now: UInt64) -> Int? {
        refill(now)
        return level > 0 ? nil : Self.seconds((1 - level) / perNanosecond)
    }

    /// Takes `amount` (a negative amount gives back, up to the capacity).
    mutating func charge(_ amount: Double, now: UInt64) {
        refill(now)
        level = min(capacity, level - amount)
    }

    private static func seconds(_ nanoseconds: Double) -> Int {
        let seconds = (nanoseconds / 1e9).rounded(.up)
        return seconds < 1 ? 1 : (seconds > 86_400 ? 86_400 : Int(seconds))
    }
}

/// One key's quota state and counters (by key name in `/metrics`, never the key). Requests and
/// generated tokens are token buckets; running generations a counter.
public final class KeyMeter: Sendable {
    public let name: String
    private struct State {
        var limits: QuotaLimits
        var requests: TokenBucket?
        var tokens: TokenBucket?
        var running = 0
        var counts = KeyMeter.Counts()
    }
    private let state: Mutex<State>

    /// What `/metrics` shows of a key.
    public struct Counts: Sendable, Equatable {
        public var requests: Int64 = 0
        public var rateLimited: Int64 = 0
        public var generatedTokens: Int64 = 0
        public var runningGenerations: Int64 = 0
    }

    init(name: String, limits: QuotaLimits, now: UInt64 = Clock.now) {
        self.name = name
        state = Mutex(
            State(
                limits: limits, requests: limits.requestsPerMinute.map { TokenBucket(perMinute: $0, now: now) },
                tokens: limits.tokensPerMinute.map { TokenBucket(perMinute: $0, now: now) }))
    }

    public var counts: Counts {
        state.withLock { state in
            var counts = state.counts
            counts.runningGenerations = Int64(state.running)
            return counts
        }
    }

    /// New limits (the keys file changed); buckets whose rate changed start full.
    func update(_ limits: QuotaLimits, now: UInt64 = Clock.now) {
        state.withLock { state in
            guard state.limits != limits else { return }
            if limits.requestsPerMinute != state.limits.requestsPerMinute {
                state.requests = limits.requestsPerMinute.map { TokenBucket(perMinute: $0, now: now) }
            }
            if limits.tokensPerMinute != state.limits.tokensPerMinute {
                state.tokens = limits.tokensPerMinute.map { TokenBucket(perMinute: $0, now: now) }
            }
            state.limits = limits
        }
    }

    /// Counts one request against the requests-per-minute quota.
    public func admitRequest(now: UInt64 = Clock.now) throws(AccessError) {
        let wait: Int? = state.withLock { state in
            state.counts.requests += 1
            guard let wait = state.requests?.take(1, now: now) else { return nil }
            state.counts.rateLimited += 1
            return wait
        }
        if let wait {
            throw .rateLimited("over this key's requests per minute; retry in \(wait) s", retryAfter: wait)
        }
    }

    /// Starts a generation: within the concurrent-generations quota and with tokens left this
    /// minute, of which `reserving` (its most tokens) are taken now, so concurrent generations
    /// cannot all start on the same tokens. The lease must be ended (with the tokens generated)
    /// exactly once; the unused part of the reservation is given back then.
    public func beginGeneration(reserving reserved: Int = 0, now: UInt64 = Clock.now) throws(AccessError) -> GenerationLease {
        let refusal: AccessError? = state.withLock { state in
            if let limit = state.limits.concurrentGenerations, state.running >= limit {
                state.counts.rateLimited += 1
                return .rateLimited("this key already runs \(limit) generations; retry in 1 s", retryAfter: 1)
            }
            if let wait = state.tokens?.debt(now: now) {
                state.counts.rateLimited += 1
                return .rateLimited("over this key's generated tokens per minute; retry in \(wait) s", retryAfter: wait)
            }
            state.running += 1
            state.tokens?.charge(Double(max(0, reserved)), now: now)
            return nil
        }
        if let refusal { throw refusal }
        return GenerationLease(meter: self, reserved: max(0, reserved))
    }

    fileprivate func end(tokens: Int, reserved: Int, now: UInt64 = Clock.now) {
        state.withLock { state in
            state.running -= 1
            state.counts.generatedTokens += Int64(tokens)
            state.tokens?.charge(Double(tokens - reserved), now: now)
        }
    }

    /// Monotonic nanoseconds.
    public enum Clock {
        public static var now: UInt64 {
            let elapsed = ContinuousClock.now - epoch
            return UInt64(max(0, elapsed.components.seconds)) * 1_000_000_000 + UInt64(max(0, elapsed.components.attoseconds / 1_000_000_000))
        }
        private static let epoch = ContinuousClock.now
    }
}

/// A running generation's place in its key's quota: ended once, with the tokens it generated.
public final class GenerationLease: Sendable {
    private let meter: KeyMeter
    private let reserved: Int
    private let ended = Atomic<Bool>(false)

    init(meter: KeyMeter, reserved: Int) {
        self.meter = meter
        self.reserved = reserved
    }

    public func end(tokens: Int) {
        guard !ended.exchange(true, ordering: .relaxed) else { return }
        meter.end(tokens: tokens, reserved: reserved)
    }

    deinit { if !ended.load(ordering: .relaxed) { meter.end(tokens: 0, reserved: reserved) } }
}
