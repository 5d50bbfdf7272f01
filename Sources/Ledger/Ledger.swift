/// Ledger: one record per inference, so any answer can be traced and replayed, and one per
/// evaluation (its items' scores, pointing at those records).
///
/// This module owns the provenance records (`InferenceRecord`) and where they are kept
/// (`InferenceLedger`; `SQLiteLedger` on GRDB in WAL mode, with migrations). It knows nothing of
/// llama.cpp or HTTP: callers hand it finished records, and it answers lookups, filtered pages,
/// exports and retention. A failed write is reported to the caller, which decides whether the
/// answer still goes out (see `LedgerFailurePolicy`).
public import Foundation

/// Where records are kept.
public protocol InferenceLedger: Sendable {
    /// Stores a record at the next ledger position (1, 2, 3, … across every writer of this
    /// ledger, never reused, never forked); returns the record as stored once it is durable.
    /// `seal`, when given, is called inside the write with the record given its position; what
    /// it returns is stored with it: the record's receipt (so a receipt can sign its position) and
    /// its leaf in the ledger's Merkle tree (kept after retention removes the record).
    func record(_ record: InferenceRecord, seal: (@Sendable (InferenceRecord) -> LedgerSeal)?) async throws -> InferenceRecord
    /// Records at positions after `position`, in position order, `limit` at most (for `ledger verify`).
    func records(afterPosition position: Int64, limit: Int) async throws -> [InferenceRecord]
    /// Where the sequence stands: the last position given, the highest retention removed, the
    /// records made before positions, and how many records now have none.
    func sequence() async throws -> LedgerSequence
    /// The Merkle tree's leaves at positions after `position`, in position order, `limit` at most.
    func leaves(afterPosition position: Int64, limit: Int) async throws -> [LedgerLeaf]
    /// Stores leaves at positions that have none (made for records written before the tree);
    /// a position's leaf, once stored, is never replaced.
    func addLeaves(_ leaves: [LedgerLeaf]) async throws
    /// Keeps a signed tree head (one per size: a second of the same size is ignored).
    func saveTreeHead(_ head: LedgerTreeHead) async throws
    /// Signed tree heads by size: the one of `size`, or the newest (largest) when nil.
    func treeHead(size: Int64?) async throws -> LedgerTreeHead?
    /// Every signed tree head, smallest first.
    func treeHeads() async throws -> [LedgerTreeHead]
    /// A record by id.
    func inference(id: String) async throws -> InferenceRecord?
    /// Records matching `filter`, newest first, `first` at most, after the cursor `after` (an id).
    func inferences(_ filter: InferenceFilter, first: Int, after: String?) async throws -> (records: [InferenceRecord], hasMore: Bool)
    /// Every record created in [since, until), oldest first, in batches (for exports).
    func export(since: Date?, until: Date?, batch: Int, _ body: ([InferenceRecord]) throws -> Void) async throws
    /// Stores an evaluation, replacing the one with its id (whose creation time it keeps).
    func saveEvaluation(_ evaluation: EvaluationRecord) async throws
    /// An evaluation by id.
    func evaluation(id: String) async throws -> EvaluationRecord?
    /// Evaluations matching `filter`, newest first (by creation), `first` at most.
    func evaluations(_ filter: EvaluationFilter, first: Int) async throws -> [EvaluationRecord]
    /// Deletes records older than `maxAge` and beyond the newest `maxRows`; returns how many went.
    /// (Evaluations stay: they are small, and say what a release was measured with.)
    func applyRetention(maxAge: Duration?, maxRows: Int?) async throws -> Int
    /// The ledger's background work, until the calling task is cancelled: SQLite folds its log
    /// into the database; PostgreSQL runs its connection pool and applies migrations (records wait
    /// until they are applied). Returns after a last flush. Run it once, for as long as the ledger
    /// is used (a lifecycle service, or `withBackgroundWork`).
    func run() async throws
}

extension InferenceLedger {
    /// Stores a record without a receipt.
    public func record(_ record: InferenceRecord) async throws { _ = try await self.record(record, seal: nil) }

    /// Runs `body` while the ledger's background work runs beside it (for commands that use the
    /// ledger outside a service group).
    public func withBackgroundWork<T: Sendable>(_ body: () async throws -> T) async throws -> T {
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await self.run() }
            do {
                let result = try await body()
                group.cancelAll()
                try await group.waitForAll()
                return result
            } catch {
                group.cancelAll()
                try? await group.waitForAll()
                throw error
            }
        }
    }
}

/// What seals a record inside its write.
public struct LedgerSeal: Sendable {
    /// Its signed receipt (nil when signing failed: the record is kept without one).
    public var receipt: String?
    /// Its leaf's hash in the ledger's Merkle tree (RFC 9162: `SHA-256(0x00 ‖ data)`).
    public var leaf: Data

    public init(receipt: String?, leaf: Data) {
        self.receipt = receipt
        self.leaf = leaf
    }
}

/// One leaf of the ledger's Merkle tree: the hash at a position (the tree's index is position − 1).
public struct LedgerLeaf: Sendable, Hashable {
    public var position: Int64
    public var hash: Data

    public init(position: Int64, hash: Data) {
        self.position = position
        self.hash = hash
    }
}

/// A signed tree head as the ledger keeps it: the tree's size and root, and the signed envelope
/// that says so.
public struct LedgerTreeHead: Sendable, Hashable {
    public var size: Int64
    public var root: Data
    public var createdAt: Date
    /// The DSSE envelope's JSON.
    public var envelope: String

    public init(size: Int64, root: Data, createdAt: Date, envelope: String) {
        self.size = size
        self.root = root
        self.createdAt = createdAt
        self.envelope = envelope
    }
}

/// Where a ledger's sequence stands (for `ledger verify`).
public struct LedgerSequence: Sendable, Hashable {
    /// The last position given (0: none yet).
    public var last: Int64
    /// Positions up to this one were removed by retention (0: none).
    public var floor: Int64
    /// Records the ledger held when positions began (they have none).
    public var legacy: Int
    /// Records without a position (or with one below 1) now.
    public var unpositioned: Int

    public init(last: Int64, floor: Int64, legacy: Int, unpositioned: Int) {
        self.last = last
        self.floor = floor
        self.legacy = legacy
        self.unpositioned = unpositioned
    }
}

/// What a failed ledger write does to the answer.
public enum LedgerFailurePolicy: String, Sendable, CaseIterable {
    /// Answer anyway; log a warning and count it in the metrics.
    case warn
    /// Fail the request (`INTERNAL`): no answer goes out unrecorded.
    case fail
}

/// Filters of `inferences` (all optional, combined with AND).
public struct InferenceFilter: Sendable, Hashable {
    public var model: String?
    /// A canonical revision id (`name@sha`).
    public var revision: String?
    public var since: Date?
    public var until: Date?
    public var caller: String?
    /// The owning key's id (`InferenceRecord.callerKey`).
    public var callerKey: String?
    /// Records whose request id starts with this (an evaluation's: `eval-<id>#`).
    public var requestIDPrefix: String?

    public init(
        model: String? = nil, revision: String? = nil, since: Date? = nil, until: Date? = nil, caller: String? = nil, callerKey: String? = nil
    ) {
        self.callerKey = callerKey
        self.model = model
        self.revision = revision
        self.since = since
        self.until = until
        self.caller = caller
    }
}
