import CLlama

/// Saved KV memory of prompt prefixes, cut at prefill chunk boundaries only, so that a request
/// that reuses one computes exactly what it would have computed alone: the saved cells are the
/// bytes its own first chunks would have written, and its remaining chunks start at the same
/// positions. Least recently used entries go first when the byte budget is exceeded.
///
/// Belongs to the decode loop thread (no locking).
struct PrefixCache {
    struct Entry {
        /// The prefix's tokens; a multiple of the chunk size long.
        let tokens: [Int32]
        /// `llama_state_seq_get_data_ext` of a sequence holding exactly those tokens.
        let state: [UInt8]
        var lastUsed: UInt64
    }

    let budget: Int
    let chunk: Int
    private(set) var entries: [Entry] = []
    private(set) var bytes = 0
    private var clock: UInt64 = 0

    init(budget: Int, chunk: Int) {
        self.budget = budget
        self.chunk = chunk
    }

    var isEnabled: Bool { budget > 0 }

    /// Where a prompt of `count` tokens saves its prefix: its last chunk boundary before its last
    /// token (the last token is always decoded, for its logits); nil when that is not one chunk.
    func saveBoundary(promptCount count: Int) -> Int? {
        guard isEnabled, count > 1 else { return nil }
        let boundary = (count - 1) / chunk * chunk
        return boundary >= chunk ? boundary : nil
    }

    /// The longest usable prefix of `tokens`: an entry and how many of its tokens to keep (a
    /// chunk boundary that `tokens` shares with it and that lies before `tokens`' last token).
    mutating func lookup(_ tokens: [Int32]) -> (state: [UInt8], entryLength: Int, keep: Int)? {
        guard isEnabled, let limit = saveBoundary(promptCount: tokens.count) else { return nil }
        var best: (index: Int, keep: Int)?
        for (index, entry) in entries.enumerated() {
            let shared = Self.commonPrefix(entry.tokens, tokens, limit: min(limit, entry.tokens.count))
            let keep = shared / chunk * chunk
            if keep >= chunk, keep > (best?.keep ?? 0) { best = (index, keep) }
        }
        guard let best else { return nil }
        clock += 1
        entries[best.index].lastUsed = clock
        let entry = entries[best.index]
        return (entry.state, entry.tokens.count, best.keep)
    }

    /// Whether `tokens` (a prefix at a chunk boundary) is worth saving: no entry holds it already.
    func wants(_ tokens: ArraySlice<Int32>) -> Bool {
        isEnabled && !entries.contains { $0.tokens.count >= tokens.count && $0.tokens.starts(with: tokens) }
    }

    mutating func insert(tokens: [Int32], state: [UInt8]) {
        guard isEnabled, state.count <= budget else { return }
        // An entry this one extends is no longer needed.
        entries.removeAll { entry in
            guard entry.tokens.count < tokens.count, tokens.starts(with: entry.tokens) else { return false }
            bytes -= entry.state.count
            return true
        }
        clock += 1
        entries.append(Entry(tokens: tokens, state: state, lastUsed: clock))
        bytes += state.count
        while bytes > budget, let oldest = entries.indices.min(by: { entries[$0].lastUsed < entries[$1].lastUsed }) {
            bytes -= entries[oldest].state.count
            entries.remove(at: oldest)
        }
    }

    private static func commonPrefix(_ a: [Int32], _ b: [Int32], limit: Int) -> Int {
        var count = 0
        while count < limit, count < a.count, count < b.count, a[count] == b[count] { count += 1 }
        return count
    }
}
