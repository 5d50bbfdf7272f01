public import Foundation
import GRDB

/// The ledger in SQLite (GRDB, WAL mode): one row per inference, indexed for the filters.
/// Migrations are registered by name and applied on open, so an old file is upgraded in place.
public final class SQLiteLedger: InferenceLedger {
    private let pool: DatabasePool
    /// A connection of its own that folds the log into the database in the background, so no
    /// request's write waits for a checkpoint's fsync.
    private let checkpointer: DatabaseQueue
    private let path: String
    /// The write-ahead log is checkpointed and truncated once it passes this size, even while
    /// passive checkpoints cannot keep up (a long reader, a flood of writes).
    let walLimit: Int64

    /// Opens (or creates) the ledger at `path`.
    public init(path: String, walLimit: Int64 = 64 << 20) throws {
        self.path = path
        self.walLimit = walLimit
        try FileManager.default.createDirectory(
            atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        var configuration = Configuration()
        configuration.busyMode = .timeout(5)
        // WAL with synchronous=NORMAL: a commit is durable against a crash or kill of the process
        // (it is in the log, which the OS holds) without an fsync per inference; only a power
        // loss can take back the last commits before a checkpoint. Automatic checkpoints are off:
        // `run()` does them.
        configuration.prepareDatabase { db in
            try db.execute(sql: "PRAGMA synchronous = NORMAL")
            try db.execute(sql: "PRAGMA wal_autocheckpoint = 0")
            // After a checkpoint resets the log, its file is cut back to this size.
            try db.execute(sql: "PRAGMA journal_size_limit = \(walLimit)")
        }
        pool = try DatabasePool(path: path, configuration: configuration)
        try Self.migrator.migrate(pool)
        var checkpointConfiguration = Configuration()
        checkpointConfiguration.busyMode = .timeout(5)
        checkpointer = try DatabaseQueue(path: path, configuration: checkpointConfiguration)
    }

    /// Checkpoints every second, off the writers' path; a last full one (the log truncated) when
    /// cancelled.
    public func run() async throws {
        while !Task.isCancelled {
            try? await Task.sleep(for: .seconds(1))
            // PASSIVE: copies what it can without waiting for or blocking the writer; past the
            // limit, TRUNCATE waits (up to the busy timeout) and empties the log.
            let kind: Database.CheckpointMode = walSize > walLimit ? .truncate : .passive
            _ = try? await checkpointer.writeWithoutTransaction { db in try db.checkpoint(kind) }
        }
        // This task is cancelled and GRDB would refuse to start: the last one runs in a task of
        // its own, awaited.
        let checkpointer = self.checkpointer
        await Task { _ = try? await checkpointer.writeWithoutTransaction { db in try db.checkpoint(.truncate) } }.value
    }

    /// The write-ahead log's size in bytes (0 when absent).
    var walSize: Int64 {
        ((try? FileManager.default.attributesOfItem(atPath: path + "-wal"))?[.size] as? NSNumber)?.int64Value ?? 0
    }

    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1: inferences") { db in
            try db.create(table: "inference") { table in
                table.primaryKey("id", .text)
                table.column("createdAt", .datetime).notNull()
                table.column("caller", .text)
                table.column("status", .text).notNull()
                table.column("error", .text)
                table.column("model", .text).notNull()
                table.column("revision", .text).notNull()
                table.column("commit", .text).notNull()
                table.column("artifactMD5", .text).notNull()
                table.column("lineage", .text).notNull()
                table.column("engine", .text).notNull()
                table.column("sampling", .text).notNull()
                table.column("seed", .integer).notNull()
                table.column("inputKind", .text).notNull()
                table.column("input", .text).notNull()
                table.column("output", .text).notNull()
                table.column("finishReason", .text).notNull()
                table.column("promptTokens", .integer).notNull()
                table.column("completionTokens", .integer).notNull()
                table.column("completionTokenIDs", .text).notNull()
                table.column("timeToFirstTokenMs", .double).notNull()
                table.column("totalMs", .double).notNull()
            }
            try db.create(index: "inference_model", on: "inference", columns: ["model", "id"])
            try db.create(index: "inference_revision", on: "inference", columns: ["revision", "id"])
            try db.create(index: "inference_caller", on: "inference", columns: ["caller", "id"])
        }
        migrator.registerMigration("v2: request ids") { db in
            try db.alter(table: "inference") { table in table.add(column: "requestID", .text) }
        }
        migrator.registerMigration("v3: trace ids") { db in
            try db.alter(table: "inference") { table in table.add(column: "traceID", .text) }
        }
        migrator.registerMigration("v4: caller key ids") { db in
            try db.alter(table: "inference") { table in table.add(column: "callerKey", .text) }
            try db.create(index: "inference_caller_key", on: "inference", columns: ["callerKey", "id"])
        }
        migrator.registerMigration("v5: evaluations") { db in
            try db.create(table: "evaluation") { table in
                table.primaryKey("id", .text)
                table.column("createdAt", .datetime).notNull()
                table.column("updatedAt", .datetime).notNull()
                table.column("caller", .text)
                table.column("callerKey", .text)
                table.column("status", .text).notNull()
                table.column("model", .text).notNull()
                table.column("revision", .text).notNull()
                table.column("commit", .text).notNull()
                table.column("dataset", .text).notNull()
                table.column("datasetCommit", .text).notNull()
                table.column("datasetMD5", .text).notNull()
                table.column("sampling", .text).notNull()
                table.column("total", .integer).notNull()
                table.column("done", .integer).notNull()
                table.column("failed", .integer).notNull()
                table.column("reused", .integer).notNull()
                table.column("body", .text).notNull()
            }
            try db.create(index: "evaluation_model", on: "evaluation", columns: ["model", "createdAt"])
        }
        migrator.registerMigration("v6: request id index") { db in
            // An evaluation reads its answers by request-id prefix (`eval-<id>#`).
            try db.create(index: "inference_request_id", on: "inference", columns: ["requestID"])
        }
        migrator.registerMigration("v7: receipts") { db in
            try db.alter(table: "inference") { table in table.add(column: "receipt", .text) }
        }
        migrator.registerMigration("v8: positions") { db in
            try db.alter(table: "inference") { table in table.add(column: "position", .integer) }
            try db.create(index: "inference_position", on: "inference", columns: ["position"], unique: true)
            // One row: the last position given (positions are never reused, even after retention).
            try db.execute(sql: "CREATE TABLE ledger_sequence (id INTEGER PRIMARY KEY CHECK (id = 1), last INTEGER NOT NULL)")
            try db.execute(sql: "INSERT INTO ledger_sequence (id, last) VALUES (1, 0)")
        }
        migrator.registerMigration("v9: sequence floor") { db in
            // floor: the highest position retention removed; legacy: records made before positions.
            try db.execute(sql: "ALTER TABLE ledger_sequence ADD COLUMN floor INTEGER NOT NULL DEFAULT 0")
            try db.execute(sql: "ALTER TABLE ledger_sequence ADD COLUMN legacy INTEGER NOT NULL DEFAULT 0")
            try db.execute(sql: "UPDATE ledger_sequence SET legacy = (SELECT count(*) FROM inference WHERE position IS NULL)")
        }
        migrator.registerMigration("v10: merkle tree") { db in
            // A leaf per position, kept after retention removes its record; signed tree heads.
            try db.execute(sql: "CREATE TABLE ledger_leaf (position INTEGER PRIMARY KEY, hash BLOB NOT NULL)")
            try db.execute(
                sql: "CREATE TABLE tree_head (size INTEGER PRIMARY KEY, root BLOB NOT NULL, createdAt DATETIME NOT NULL, envelope TEXT NOT NULL)")
        }
        migrator.registerMigration("v11: weights provenance") { db in
            try db.alter(table: "inference") { table in
                table.add(column: "artifactSHA256", .text)
                table.add(column: "signature", .text)
            }
        }
        return migrator
    }

    public func record(_ record: InferenceRecord, seal: (@Sendable (InferenceRecord) -> LedgerSeal)?) async throws -> InferenceRecord {
        try await pool.write { db in
            var record = record
            guard let position = try Int64.fetchOne(db, sql: "UPDATE ledger_sequence SET last = last + 1 WHERE id = 1 RETURNING last") else {
                throw LedgerError.configuration("the ledger's sequence row is missing")
            }
            record.position = position
            if let seal {
                let sealed = seal(record)
                record.receipt = sealed.receipt
                try db.execute(sql: "INSERT INTO ledger_leaf (position, hash) VALUES (?, ?)", arguments: [position, sealed.leaf])
            }
            try Row.insert(record, into: db)
            return record
        }
    }

    public func leaves(afterPosition position: Int64, limit: Int) async throws -> [LedgerLeaf] {
        try await pool.read { db in
            try Row.fetchAll(
                db, sql: "SELECT position, hash FROM ledger_leaf WHERE position > ? ORDER BY position LIMIT ?", arguments: [position, limit]
            ).map { LedgerLeaf(position: $0["position"], hash: $0["hash"]) }
        }
    }

    public func addLeaves(_ leaves: [LedgerLeaf]) async throws {
        try await pool.write { db in
            for leaf in leaves {
                try db.execute(sql: "INSERT OR IGNORE INTO ledger_leaf (position, hash) VALUES (?, ?)", arguments: [leaf.position, leaf.hash])
            }
        }
    }

    public func saveTreeHead(_ head: LedgerTreeHead) async throws {
        try await pool.write { db in
            try db.execute(
                sql: "INSERT OR IGNORE INTO tree_head (size, root, createdAt, envelope) VALUES (?, ?, ?, ?)",
                arguments: [head.size, head.root, head.createdAt, head.envelope])
        }
    }

    public func treeHead(size: Int64?) async throws -> LedgerTreeHead? {
        try await pool.read { db in
            try Row.fetchOne(
                db, sql: "SELECT * FROM tree_head WHERE ? IS NULL OR size = ? ORDER BY size DESC LIMIT 1", arguments: [size, size]
            ).map(Self.decodeTreeHead)
        }
    }

    public func treeHeads() async throws -> [LedgerTreeHead] {
        try await pool.read { db in try Row.fetchAll(db, sql: "SELECT * FROM tree_head ORDER BY size").map(Self.decodeTreeHead) }
    }

    static func decodeTreeHead(_ row: Row) -> LedgerTreeHead {
        LedgerTreeHead(size: row["size"], root: row["root"], createdAt: row["createdAt"], envelope: row["envelope"])
    }

    public func sequence() async throws -> LedgerSequence {
        try await pool.read { db in
            let row = try Row.fetchOne(db, sql: "SELECT last, floor, legacy FROM ledger_sequence WHERE id = 1")
            let unpositioned = try Int.fetchOne(db, sql: "SELECT count(*) FROM inference WHERE position IS NULL OR position < 1") ?? 0
            return LedgerSequence(last: row?["last"] ?? 0, floor: row?["floor"] ?? 0, legacy: row?["legacy"] ?? 0, unpositioned: unpositioned)
        }
    }

    public func records(afterPosition position: Int64, limit: Int) async throws -> [InferenceRecord] {
        try await pool.read { db in
            try Row.fetchAll(
                db, sql: "SELECT * FROM inference WHERE position > ? ORDER BY position LIMIT ?", arguments: [position, limit]
            ).map(Self.decode)
        }
    }

    public func inference(id: String) async throws -> InferenceRecord? {
        try await pool.read { db in try Row.fetchOne(db, sql: "SELECT * FROM inference WHERE id = ?", arguments: [id]).map(Self.decode) }
    }

    public func inferences(_ filter: InferenceFilter, first: Int, after: String?) async throws -> (records: [InferenceRecord], hasMore: Bool) {
        var clauses: [String] = []
        var arguments: StatementArguments = []
        func add(_ clause: String, _ value: (any DatabaseValueConvertible)?) {
            guard let value else { return }
            clauses.append(clause)
            _ = arguments.append(contentsOf: [value])
        }
        add("model = ?", filter.model)
        add("revision = ?", filter.revision)
        add("caller = ?", filter.caller)
        add("callerKey = ?", filter.callerKey)
        if let prefix = filter.requestIDPrefix {
            // A range the index serves: [prefix, prefix with its last character incremented).
            if let last = prefix.unicodeScalars.last, let next = Unicode.Scalar(last.value + 1) {
                clauses.append("requestID >= ? AND requestID < ?")
                _ = arguments.append(contentsOf: [prefix, String(prefix.unicodeScalars.dropLast()) + String(next)])
            } else {
                clauses.append("substr(requestID, 1, ?) = ?")
                _ = arguments.append(contentsOf: [prefix.count, prefix])
            }
        }
        add("createdAt >= ?", filter.since)
        add("createdAt < ?", filter.until)
        add("id < ?", after)
        let condition = clauses.isEmpty ? "" : "WHERE " + clauses.joined(separator: " AND ")
        _ = arguments.append(contentsOf: [first + 1])
        let rows = try await pool.read { [arguments] db in
            try Row.fetchAll(db, sql: "SELECT * FROM inference \(condition) ORDER BY id DESC LIMIT ?", arguments: arguments)
        }
        let records = rows.prefix(first).map(Self.decode)
        return (Array(records), rows.count > first)
    }

    public func export(since: Date?, until: Date?, batch: Int, _ body: ([InferenceRecord]) throws -> Void) async throws {
        var cursor = ""
        while true {
            let page = try await pool.read { [cursor] db in
                try Row.fetchAll(
                    db,
                    sql: """
                        SELECT * FROM inference WHERE id > ? AND (? IS NULL OR createdAt >= ?) AND (? IS NULL OR createdAt < ?)
                        ORDER BY id LIMIT ?
                        """,
                    arguments: [cursor, since, since, until, until, batch]
                ).map(Self.decode)
            }
            guard let last = page.last else { return }
            try body(page)
            cursor = last.id
        }
    }

    public func saveEvaluation(_ evaluation: EvaluationRecord) async throws {
        try await pool.write { db in
            try db.execute(
                sql: """
                    INSERT INTO evaluation (id, createdAt, updatedAt, caller, callerKey, status, model, revision, "commit", dataset,
                      datasetCommit, datasetMD5, sampling, total, done, failed, reused, body)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                    ON CONFLICT (id) DO UPDATE SET updatedAt = excluded.updatedAt, status = excluded.status, total = excluded.total,
                      done = excluded.done, failed = excluded.failed, reused = excluded.reused, body = excluded.body
                    """,
                arguments: [
                    evaluation.id, evaluation.createdAt, evaluation.updatedAt, evaluation.caller, evaluation.callerKey,
                    evaluation.status.rawValue, evaluation.model, evaluation.revision, evaluation.commit, evaluation.dataset,
                    evaluation.datasetCommit, evaluation.datasetMD5, evaluation.sampling, evaluation.total, evaluation.done, evaluation.failed,
                    evaluation.reused, evaluation.body,
                ])
        }
    }

    public func evaluation(id: String) async throws -> EvaluationRecord? {
        try await pool.read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM evaluation WHERE id = ?", arguments: [id]).map(Self.decodeEvaluation)
        }
    }

    public func evaluations(_ filter: EvaluationFilter, first: Int) async throws -> [EvaluationRecord] {
        try await pool.read { db in
            try Row.fetchAll(
                db,
                sql: """
                    SELECT * FROM evaluation WHERE (? IS NULL OR model = ?) AND (? IS NULL OR revision = ?) AND (? IS NULL OR dataset = ?)
                      AND (? IS NULL OR callerKey = ?)
                    ORDER BY createdAt DESC, id LIMIT ?
                    """,
                arguments: [
                    filter.model, filter.model, filter.revision, filter.revision, filter.dataset, filter.dataset, filter.callerKey,
                    filter.callerKey, first,
                ]
            ).map(Self.decodeEvaluation)
        }
    }

    static func decodeEvaluation(_ row: Row) -> EvaluationRecord {
        var record = EvaluationRecord(
            id: row["id"], createdAt: row["createdAt"], updatedAt: row["updatedAt"], caller: row["caller"], callerKey: row["callerKey"],
            status: EvaluationStatus(rawValue: row["status"] ?? "") ?? .failed, model: row["model"], revision: row["revision"],
            commit: row["commit"], dataset: row["dataset"], datasetCommit: row["datasetCommit"], datasetMD5: row["datasetMD5"],
            sampling: row["sampling"], scorers: [], total: row["total"], done: row["done"], failed: row["failed"], reused: row["reused"],
            means: [], items: [], badLines: [])
        record.setBody(row["body"] ?? "")
        return record
    }

    public func applyRetention(maxAge: Duration?, maxRows: Int?) async throws -> Int {
        try await pool.write { db in
            var removed = 0
            // Positioned records go by position, a prefix at a time, so no gap opens in the middle
            // of the sequence; the floor says where what is left begins.
            var floor: Int64 = 0
            if let maxAge {
                let cutoff = Date().addingTimeInterval(-Double(maxAge.components.seconds))
                floor = max(floor, try Int64.fetchOne(db, sql: "SELECT max(position) FROM inference WHERE createdAt < ?", arguments: [cutoff]) ?? 0)
                try db.execute(sql: "DELETE FROM inference WHERE position IS NULL AND createdAt < ?", arguments: [cutoff])
                removed += db.changesCount
            }
            if let maxRows {
                let total = try Int.fetchOne(db, sql: "SELECT count(*) FROM inference") ?? 0
                if total > maxRows {
                    try db.execute(
                        sql: "DELETE FROM inference WHERE position IS NULL AND id NOT IN (SELECT id FROM inference ORDER BY id DESC LIMIT ?)",
                        arguments: [maxRows])
                    removed += db.changesCount
                    let positioned = try Int.fetchOne(db, sql: "SELECT count(*) FROM inference WHERE position IS NOT NULL") ?? 0
                    if positioned > maxRows {
                        floor = max(
                            floor,
                            try Int64.fetchOne(
                                db, sql: "SELECT position FROM inference WHERE position IS NOT NULL ORDER BY position DESC LIMIT 1 OFFSET ?",
                                arguments: [maxRows]) ?? 0)
                    }
                }
            }
            if floor > 0 {
                try db.execute(sql: "DELETE FROM inference WHERE position <= ?", arguments: [floor])
                removed += db.changesCount
                try db.execute(sql: "UPDATE ledger_sequence SET floor = max(floor, ?) WHERE id = 1", arguments: [floor])
            }
            return removed
        }
    }

    /// Row ↔ record, column by column (the record type stays free of GRDB).
    static func decode(_ row: Row) -> InferenceRecord {
        InferenceRecord(
            id: row["id"], createdAt: row["createdAt"], caller: row["caller"],
            status: RecordStatus(rawValue: row["status"] ?? "") ?? .failed, error: row["error"],
            model: row["model"], revision: row["revision"], commit: row["commit"], artifactMD5: row["artifactMD5"],
            lineage: row["lineage"], engine: row["engine"], sampling: row["sampling"], seed: row["seed"],
            inputKind: InputKind(rawValue: row["inputKind"] ?? "") ?? .prompt,
            input: row["input"], output: row["output"], finishReason: row["finishReason"], promptTokens: row["promptTokens"],
            completionTokens: row["completionTokens"], completionTokenIDs: row["completionTokenIDs"],
            timeToFirstTokenMs: row["timeToFirstTokenMs"], totalMs: row["totalMs"], requestID: row["requestID"], traceID: row["traceID"],
            callerKey: row["callerKey"], receipt: row["receipt"], position: row["position"], artifactSHA256: row["artifactSHA256"],
            signature: row["signature"])
    }
}

extension Row {
    /// Inserts a record as one row.
    static func insert(_ record: InferenceRecord, into db: Database) throws {
        try db.execute(
            sql: """
                INSERT INTO inference (id, createdAt, caller, status, error, model, revision, "commit", artifactMD5, lineage, engine,
                  sampling, seed, inputKind, input, output, finishReason, promptTokens, completionTokens, completionTokenIDs,
                  timeToFirstTokenMs, totalMs, requestID, traceID, callerKey, receipt, position, artifactSHA256, signature)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """,
            arguments: [
                record.id, record.createdAt, record.caller, record.status.rawValue, record.error, record.model, record.revision, record.commit,
                record.artifactMD5, record.lineage, record.engine, record.sampling, record.seed, record.inputKind.rawValue, record.input,
                record.output, record.finishReason, record.promptTokens, record.completionTokens, record.completionTokenIDs,
                record.timeToFirstTokenMs, record.totalMs, record.requestID, record.traceID, record.callerKey, record.receipt,
                record.position, record.artifactSHA256, record.signature,
            ])
    }
}
