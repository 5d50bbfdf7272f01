public import Foundation

/// Where an evaluation stands.
public enum EvaluationStatus: String, Sendable, Hashable, Codable, CaseIterable {
    /// Items are being answered (or the process that ran it stopped: a rerun resumes it).
    case running
    case completed
    /// Stopped on request; a rerun resumes it.
    case cancelled
    /// Stopped by an error before every item was tried.
    case failed
}

/// One evaluation as the ledger keeps it: what was evaluated (a revision, a set at a commit with
/// its md5, the sampling, the scorers), how far it got, each scorer's summary and each item's
/// scores. The answers themselves are inference records (request id `eval-<id>#<item id>`); this
/// row holds their ids, not their text, so the privacy setting covers evaluations too.
public struct EvaluationRecord: Sendable, Hashable, Codable {
    /// Derived from what decides the answers (see `Evaluator.id`), or random for a fresh run.
    public var id: String
    public var createdAt: Date
    public var updatedAt: Date
    /// The API key's name and id that ran it (nil without authentication).
    public var caller: String?
    public var callerKey: String?
    public var status: EvaluationStatus
    public var model: String
    /// Canonical revision id (`name@sha`) and its commit.
    public var revision: String
    public var commit: String
    /// The set's path, the commit it was read at and the md5 of its bytes.
    public var dataset: String
    public var datasetCommit: String
    public var datasetMD5: String
    /// The sampling as JSON.
    public var sampling: String
    /// The scorers' names, in order.
    public var scorers: [String]
    public var total: Int
    public var done: Int
    public var failed: Int
    public var reused: Int
    /// Each scorer's mean (nil when no item was scored), in `scorers` order.
    public var means: [Double?]
    /// One per item of the set, in order (absent items were not answered yet).
    public var items: [Item]
    public var badLines: [BadLine]

    public struct Item: Sendable, Hashable, Codable {
        public var id: String
        public var line: Int
        public var inferenceID: String?
        public var finishReason: String?
        /// In `scorers` order; nil where the scorer does not apply or the item failed.
        public var scores: [Double?]
        public var error: String?

        public init(id: String, line: Int, inferenceID: String?, finishReason: String?, scores: [Double?], error: String?) {
            self.id = id
            self.line = line
            self.inferenceID = inferenceID
            self.finishReason = finishReason
            self.scores = scores
            self.error = error
        }
    }

    public struct BadLine: Sendable, Hashable, Codable {
        public var line: Int
        public var reason: String

        public init(line: Int, reason: String) {
            self.line = line
            self.reason = reason
        }
    }

    public init(
        id: String, createdAt: Date, updatedAt: Date, caller: String?, callerKey: String?, status: EvaluationStatus, model: String,
        revision: String, commit: String, dataset: String, datasetCommit: String, datasetMD5: String, sampling: String, scorers: [String],
        total: Int, done: Int, failed: Int, reused: Int, means: [Double?], items: [Item], badLines: [BadLine]
    ) {
        self.id = id
        self.createdAt = createdAt
        self.updatedAt = updatedAt
        self.caller = caller
        self.callerKey = callerKey
        self.status = status
        self.model = model
        self.revision = revision
        self.commit = commit
        self.dataset = dataset
        self.datasetCommit = datasetCommit
        self.datasetMD5 = datasetMD5
        self.sampling = sampling
        self.scorers = scorers
        self.total = total
        self.done = done
        self.failed = failed
        self.reused = reused
        self.means = means
        self.items = items
        self.badLines = badLines
    }

    /// The columns that are lists, as one JSON document (`scorers`, `means`, `items`, `badLines`).
    struct Body: Codable {
        var scorers: [String]
        var means: [Double?]
        var items: [Item]
        var badLines: [BadLine]
    }

    /// `scorers`, `means`, `items` and `badLines` as the JSON text stored in one column.
    public var body: String {
        let body = Body(scorers: scorers, means: means, items: items, badLines: badLines)
        return String(decoding: (try? JSONEncoder().encode(body)) ?? Data("{}".utf8), as: UTF8.self)
    }

    /// Sets `scorers`, `means`, `items` and `badLines` from a stored body (an unreadable one leaves them empty).
    mutating func setBody(_ text: String) {
        guard let body = try? JSONDecoder().decode(Body.self, from: Data(text.utf8)) else { return }
        scorers = body.scorers
        means = body.means
        items = body.items
        badLines = body.badLines
    }
}

/// Filters of `evaluations` (combined with AND).
public struct EvaluationFilter: Sendable, Hashable {
    public var model: String?
    /// A canonical revision id (`name@sha`).
    public var revision: String?
    /// The set's path.
    public var dataset: String?
    /// The owning key's id.
    public var callerKey: String?

    public init(model: String? = nil, revision: String? = nil, dataset: String? = nil, callerKey: String? = nil) {
        self.model = model
        self.revision = revision
        self.dataset = dataset
        self.callerKey = callerKey
    }
}
