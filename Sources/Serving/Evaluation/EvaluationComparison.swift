public import Evaluation
public import Lineage

/// Two evaluations over the same set compared item by item: each scorer's summaries and their
/// difference, the items whose scores differ (regressed, improved or changed, each with both
/// answers and the first token where they part), and, for two revisions of one model, the
/// lineage diff between them, so "why did it get worse on this case" is one answer.
public struct EvaluationComparison: Sendable {
    /// How an item's scores moved from `a` to `b`.
    public enum Change: String, Sendable, CaseIterable {
        /// A score that has a better direction fell and none rose.
        case regressed
        /// One rose and none fell.
        case improved
        /// Scores differ otherwise: some rose and some fell, or only ones without a better
        /// direction (length) differ.
        case changed
    }

    /// One scorer in both.
    public struct ScorerDelta: Sendable {
        public let scorer: String
        public let a: Double?
        public let b: Double?
        public var delta: Double? { a.flatMap { a in b.map { $0 - a } } }
    }

    /// Where two answers' generated tokens first differ: the index, and each side's token there
    /// (nil where that answer had ended).
    public struct TokenDifference: Sendable, Hashable {
        public let index: Int
        public let a: Int32?
        public let b: Int32?
    }

    /// One item whose scores differ.
    public struct Item: Sendable {
        public let change: Change
        public let a: EvaluationResult.Item
        public let b: EvaluationResult.Item
        /// The scorers of `a`'s and of `b`'s scores, in their order.
        public let scorersA: [String]
        public let scorersB: [String]
        /// Nil when the answers' tokens are equal or either is not known as ids.
        public let firstDifference: TokenDifference?
    }

    public let a: EvaluationResult
    public let b: EvaluationResult
    public let scores: [ScorerDelta]
    /// The items whose scores differ: regressions first, then improvements, then changes, each
    /// in the set's order.
    public let items: [Item]
    /// Items in both whose compared scores are equal.
    public let unchanged: Int
    /// Items in one evaluation only (answered in one, not yet or failed in the other).
    public let unmatched: Int
    /// What changed between the two revisions; nil when they are revisions of two models.
    public let lineage: LineageDiff?

    /// Compares `a` with `b` (usually the newer). `BAD_USER_INPUT` unless both ran over the same set path.
    public init(_ a: EvaluationResult, _ b: EvaluationResult, lineage: LineageDiff?) throws {
        guard a.dataset == b.dataset, a.datasetMD5 == b.datasetMD5 else {
            throw ServingError(
                .badUserInput,
                "evaluations compare over one set: \(a.id) ran on \(a.dataset) (md5 \(a.datasetMD5)), \(b.id) on \(b.dataset) (md5 \(b.datasetMD5))")
        }
        self.a = a
        self.b = b
        self.lineage = lineage
        let namesA = a.scorers.map(\.description)
        let namesB = b.scorers.map(\.description)
        let summariesA = a.summaries
        let summariesB = b.summaries
        scores = namesA.enumerated().compactMap { index, name in
            guard let other = namesB.firstIndex(of: name) else { return nil }
            return ScorerDelta(scorer: name, a: summariesA[index].mean, b: summariesB[other].mean)
        }
        // Compared item by item: the scorers in both whose score does not vary from run to run.
        let compared: [(scorer: Scorer, a: Int, b: Int)] = a.scorers.enumerated().compactMap { index, scorer in
            guard scorer.direction != .measurement, let other = namesB.firstIndex(of: scorer.description) else { return nil }
            return (scorer, index, other)
        }
        let itemsB = Dictionary(b.items.map { ($0.item.id, $0) }, uniquingKeysWith: { first, _ in first })
        var differing: [Item] = []
        var unchanged = 0
        var matched = 0
        for itemA in a.items where itemA.error == nil {
            guard let itemB = itemsB[itemA.item.id], itemB.error == nil else { continue }
            matched += 1
            var rose = false
            var fell = false
            var differs = false
            for (scorer, indexA, indexB) in compared where itemA.scores[indexA] != itemB.scores[indexB] {
                differs = true
                guard scorer.direction == .higherIsBetter, let old = itemA.scores[indexA], let new = itemB.scores[indexB] else { continue }
                if new > old { rose = true } else { fell = true }
            }
            guard differs else {
                unchanged += 1
                continue
            }
            let change: Change = fell && !rose ? .regressed : rose && !fell ? .improved : .changed
            differing.append(
                Item(
                    change: change, a: itemA, b: itemB, scorersA: namesA, scorersB: namesB,
                    firstDifference: Self.firstDifference(itemA.tokenIDs, itemB.tokenIDs)))
        }
        items = Change.allCases.flatMap { change in differing.filter { $0.change == change } }
        self.unchanged = unchanged
        let answeredA = a.items.filter { $0.error == nil }.count
        let answeredB = b.items.filter { $0.error == nil }.count
        unmatched = answeredA + answeredB - 2 * matched
    }

    /// The first index where two token sequences differ (nil when equal, or either is unknown).
    static func firstDifference(_ a: [Int32]?, _ b: [Int32]?) -> TokenDifference? {
        guard let a, let b, a != b else { return nil }
        let index = zip(a, b).prefix { $0 == $1 }.count
        return TokenDifference(index: index, a: index < a.count ? a[index] : nil, b: index < b.count ? b[index] : nil)
    }
}
