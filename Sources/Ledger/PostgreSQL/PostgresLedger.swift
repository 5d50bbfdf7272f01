public import Foundation
public import Logging
import PostgresNIO
import Synchronization

/// The ledger in PostgreSQL, for several replicas sharing one record of inferences. Same records,
/// same queries as `SQLiteLedger`; migrations are named rows in `pedigree_migrations`, applied by
/// `run()` under an advisory lock so replicas starting together migrate once. Queries wait until
/// the migrations are applied (and fail as they did, when they failed).
public final class PostgresLedger: InferenceLedger {
    private let client: PostgresClient
    private let logger: Logger
    /// One connection made before the pool's, so a wrong password, TLS setting or pg_hba rule is
    /// a clear error at start rather than queries that wait for ever.
    private let probe: PostgresConnection.Configuration
    /// How long the first connection may keep failing for reasons that may pass (the server is
    /// starting, the network not up yet).
    static let probeDeadline: Duration = .seconds(30)
    private let migrated = Readiness()

    /// Prepares a client for `url` (`postgres://user[:password]@host:port/database[?sslmode=…]`);
    /// `run()` connects and migrates. `password` is used when the URL has none (from the
    /// environment or a file, so it is not on a command line). `sslmode`: `disable` (default),
    /// `require` (TLS, any certificate), `verify-ca` (TLS, a certificate `sslrootcert` or the
    /// system trusts), `verify-full` (and for this host name).
    public init(url: String, password: String? = nil, logger: Logger = Logger(label: "pedigree.ledger")) throws {
        guard let components = URLComponents(string: url), let host = components.host, let user = components.user else {
            throw LedgerError.configuration("the PostgreSQL URL must look like postgres://user:password@host:port/database")
        }
        let database = components.path.split(separator: "/").first.map(String.init)
        let query = Dictionary((components.queryItems ?? []).map { ($0.name, $0.value ?? "") }, uniquingKeysWith: { $1 })
        let tls = try Self.tls(mode: query["sslmode"] ?? "disable", rootCertificate: query["sslrootcert"])
        let configuration = PostgresClient.Configuration(
            host: host, port: components.port ?? 5432, username: user, password: components.password ?? password, database: database,
            tls: tls.map { .require($0) } ?? .disable)
        let probeTLS: PostgresConnection.Configuration.TLS
        do {
            probeTLS = try tls.map { .require(try NIOSSLContext(configuration: $0)) } ?? .disable
        } catch {
            throw LedgerError.configuration("the TLS settings of the PostgreSQL URL cannot be used: \(error)")
        }
        probe = PostgresConnection.Configuration(
            host: host, port: components.port ?? 5432, username: user, password: components.password ?? password, database: database, tls: probeTLS)
        // The pool's own chatter (e.g. a lease before `run()` got going) stays below errors.
        var background = logger
        background.logLevel = .error
        let client = PostgresClient(configuration: configuration, backgroundLogger: background)
        self.client = client
        self.logger = logger
    }

    /// The TLS configuration of an `sslmode`; nil: no TLS.
    static func tls(mode: String, rootCertificate: String?) throws -> TLSConfiguration? {
        var tls = TLSConfiguration.makeClientConfiguration()
        switch mode {
        case "disable": return nil
        case "require": tls.certificateVerification = .none
        case "verify-ca": tls.certificateVerification = .noHostnameVerification
        case "verify-full": tls.certificateVerification = .fullVerification
        default: throw LedgerError.configuration("sslmode must be disable, require, verify-ca or verify-full (got '\(mode)')")
        }
        if let rootCertificate {
            guard FileManager.default.isReadableFile(atPath: rootCertificate) else {
                throw LedgerError.configuration("sslrootcert \(rootCertificate) cannot be read")
            }
            tls.trustRoots = .file(rootCertificate)
        }
        return tls
    }

    /// Connects once: at once when the server answers (refusing with its reason when it refuses
    /// the role, the password or the TLS), retrying for `probeDeadline` while it cannot be reached.
    private func connectOnce() async throws {
        let started = ContinuousClock.now
        var attempt = 0
        while true {
            attempt += 1
            do {
                let connection = try await PostgresConnection.connect(
                    on: MultiThreadedEventLoopGroup.singleton.any(), configuration: probe, id: attempt, logger: logger
                ).get()
                try await connection.close()
                return
            } catch let error as PSQLError where error.code == .server || error.code == .sslUnsupported {
                let reason = error.serverInfo?[.message] ?? "the server refused the connection (\(error.code))"
                throw LedgerError.configuration("PostgreSQL refused the ledger's connection: \(reason)")
            } catch {
                let failure = (error as? PSQLError)?.underlying ?? error
                if ContinuousClock.now - started > Self.probeDeadline || failure is NIOSSLError {
                    throw LedgerError.configuration("cannot connect to the PostgreSQL ledger: \(failure)")
                }
                try await Task.sleep(for: .seconds(1))
            }
        }
    }

    /// Runs the connection pool and applies the migrations; returns when cancelled.
    public func run() async throws {
        try await withThrowingDiscardingTaskGroup { group in
            group.addTask { await self.client.run() }
            do {
                try await connectOnce()
                try await migrate()
                migrated.open()
            } catch {
                migrated.fail(error)
                throw error
            }
            while !Task.isCancelled { try? await Task.sleep(for: .seconds(3600)) }
            group.cancelAll()
        }
    }

    private static let migrations: [(name: String, sql: [String])] = [
        (
            "v1: inferences",
            [
                """
                CREATE TABLE inference (
                  id text PRIMARY KEY, created_at timestamptz NOT NULL, caller text, status text NOT NULL, error text,
                  model text NOT NULL, revision text NOT NULL, commit_sha text NOT NULL, artifact_md5 text NOT NULL,
                  lineage text NOT NULL, engine text NOT NULL, sampling text NOT NULL, seed bigint NOT NULL,
                  input_kind text NOT NULL, input text NOT NULL, output text NOT NULL, finish_reason text NOT NULL,
                  prompt_tokens bigint NOT NULL, completion_tokens bigint NOT NULL, completion_token_ids text NOT NULL,
                  ttft_ms double precision NOT NULL, total_ms double precision NOT NULL)
                """,
                "CREATE INDEX inference_model ON inference (model, id)",
                "CREATE INDEX inference_revision ON inference (revision, id)",
                "CREATE INDEX inference_caller ON inference (caller, id)",
            ]
        ),
        ("v2: request ids", ["ALTER TABLE inference ADD COLUMN request_id text"]),
        ("v3: trace ids", ["ALTER TABLE inference ADD COLUMN trace_id text"]),
        (
            "v4: caller key ids",
            ["ALTER TABLE inference ADD COLUMN caller_key text", "CREATE INDEX inference_caller_key ON inference (caller_key, id)"]
        ),
        (
            "v5: evaluations",
            [
                """
                CREATE TABLE evaluation (
                  id text PRIMARY KEY, created_at timestamptz NOT NULL, updated_at timestamptz NOT NULL, caller text, caller_key text,
                  status text NOT NULL, model text NOT NULL, revision text NOT NULL, commit_sha text NOT NULL, dataset text NOT NULL,
                  dataset_commit text NOT NULL, dataset_md5 text NOT NULL, sampling text NOT NULL, total bigint NOT NULL,
                  done bigint NOT NULL, failed bigint NOT NULL, reused bigint NOT NULL, body text NOT NULL)
                """,
                "CREATE INDEX evaluation_model ON evaluation (model, created_at)",
            ]
        ),
        // An evaluation reads its answers by request-id prefix (`eval-<id>#`): LIKE 'prefix%' on this index.
        ("v6: request id index", ["CREATE INDEX inference_request_id ON inference (request_id text_pattern_ops)"]),
        ("v7: receipts", ["ALTER TABLE inference ADD COLUMN receipt text"]),
        (
            "v8: positions",
            [
                "ALTER TABLE inference ADD COLUMN position bigint",
                "CREATE UNIQUE INDEX inference_position ON inference (position)",
                // One row: the last position given; its row lock orders every writer (no forks).
                "CREATE TABLE ledger_sequence (id int PRIMARY KEY CHECK (id = 1), last bigint NOT NULL)",
                "INSERT INTO ledger_sequence (id, last) VALUES (1, 0)",
            ]
        ),
        (
            "v9: sequence floor",
            [
                // floor: the highest position retention removed; legacy: records made before positions.
                "ALTER TABLE ledger_sequence ADD COLUMN floor bigint NOT NULL DEFAULT 0",
                "ALTER TABLE ledger_sequence ADD COLUMN legacy bigint NOT NULL DEFAULT 0",
                "UPDATE ledger_sequence SET legacy = (SELECT count(*) FROM inference WHERE position IS NULL)",
            ]
        ),
        (
            "v10: merkle tree",
            [
                // A leaf per position, kept after retention removes its record; signed tree heads.
                "CREATE TABLE ledger_leaf (position bigint PRIMARY KEY, hash bytea NOT NULL)",
                "CREATE TABLE tree_head (size bigint PRIMARY KEY, root bytea NOT NULL, created_at timestamptz NOT NULL, envelope text NOT NULL)",
            ]
        ),
        ("v11: weights provenance", ["ALTER TABLE inference ADD COLUMN artifact_sha256 text, ADD COLUMN signature text"]),
    ]

    private func migrate() async throws {
        try await client.withTransaction(logger: logger) { connection in
            try await connection.query("SELECT pg_advisory_xact_lock(7201)", logger: logger)
            try await connection.query("CREATE TABLE IF NOT EXISTS pedigree_migrations (name text PRIMARY KEY)", logger: logger)
            var applied = Set<String>()
            for try await name in try await connection.query("SELECT name FROM pedigree_migrations", logger: logger).decode(String.self) {
                applied.insert(name)
            }
            for migration in Self.migrations where !applied.contains(migration.name) {
                for statement in migration.sql { try await connection.query(PostgresQuery(unsafeSQL: statement), logger: logger) }
                try await connection.query("INSERT INTO pedigree_migrations (name) VALUES (\(migration.name))", logger: logger)
            }
        }
    }

    public func record(_ record: InferenceRecord, seal: (@Sendable (InferenceRecord) -> LedgerSeal)?) async throws -> InferenceRecord {
        try await migrated.wait()
        let logger = self.logger
        return try await client.withTransaction(logger: logger) { connection in
            var record = record
            var position: Int64?
            let next = try await connection.query("UPDATE ledger_sequence SET last = last + 1 WHERE id = 1 RETURNING last", logger: logger)
            for try await value in next.decode(Int64.self) { position = value }
            guard let position else { throw LedgerError.configuration("the ledger's sequence row is missing") }
            record.position = position
            if let seal {
                let sealed = seal(record)
                record.receipt = sealed.receipt
                try await connection.query("INSERT INTO ledger_leaf (position, hash) VALUES (\(position), \(sealed.leaf))", logger: logger)
            }
            try await connection.query(
                """
                INSERT INTO inference (id, created_at, caller, status, error, model, revision, commit_sha, artifact_md5, lineage, engine,
                  sampling, seed, input_kind, input, output, finish_reason, prompt_tokens, completion_tokens, completion_token_ids,
                  ttft_ms, total_ms, request_id, trace_id, caller_key, receipt, position, artifact_sha256, signature)
                VALUES (\(record.id), \(record.createdAt), \(record.caller), \(record.status.rawValue), \(record.error), \(record.model),
                  \(record.revision), \(record.commit), \(record.artifactMD5), \(record.lineage), \(record.engine), \(record.sampling),
                  \(record.seed), \(record.inputKind.rawValue), \(record.input), \(record.output), \(record.finishReason), \(record.promptTokens),
                  \(record.completionTokens), \(record.completionTokenIDs), \(record.timeToFirstTokenMs), \(record.totalMs),
                  \(record.requestID), \(record.traceID), \(record.callerKey), \(record.receipt), \(record.position),
                  \(record.artifactSHA256), \(record.signature))
                """, logger: logger)
            return record
        }
    }

    public func records(afterPosition position: Int64, limit: Int) async throws -> [InferenceRecord] {
        try await migrated.wait()
        return try await fetch("SELECT * FROM inference WHERE position > \(position) ORDER BY position LIMIT \(limit)")
    }

    public func leaves(afterPosition position: Int64, limit: Int) async throws -> [LedgerLeaf] {
        try await migrated.wait()
        var leaves: [LedgerLeaf] = []
        let rows = try await client.query(
            "SELECT position, hash FROM ledger_leaf WHERE position > \(position) ORDER BY position LIMIT \(limit)", logger: logger)
        for try await (position, hash) in rows.decode((Int64, Data).self) { leaves.append(LedgerLeaf(position: position, hash: hash)) }
        return leaves
    }

    public func addLeaves(_ leaves: [LedgerLeaf]) async throws {
        try await migrated.wait()
        let logger = self.logger
        try await client.withTransaction(logger: logger) { connection in
            for leaf in leaves {
                try await connection.query(
                    "INSERT INTO ledger_leaf (position, hash) VALUES (\(leaf.position), \(leaf.hash)) ON CONFLICT DO NOTHING", logger: logger)
            }
        }
    }

    public func saveTreeHead(_ head: LedgerTreeHead) async throws {
        try await migrated.wait()
        try await client.query(
            """
            INSERT INTO tree_head (size, root, created_at, envelope) VALUES (\(head.size), \(head.root), \(head.createdAt), \(head.envelope))
            ON CONFLICT DO NOTHING
            """, logger: logger)
    }

    public func treeHead(size: Int64?) async throws -> LedgerTreeHead? {
        try await migrated.wait()
        if let size { return try await fetchTreeHeads("SELECT size, root, created_at, envelope FROM tree_head WHERE size = \(size)").first }
        return try await fetchTreeHeads("SELECT size, root, created_at, envelope FROM tree_head ORDER BY size DESC LIMIT 1").first
    }

    public func treeHeads() async throws -> [LedgerTreeHead] {
        try await migrated.wait()
        return try await fetchTreeHeads("SELECT size, root, created_at, envelope FROM tree_head ORDER BY size")
    }

    private func fetchTreeHeads(_ query: PostgresQuery) async throws -> [LedgerTreeHead] {
        var heads: [LedgerTreeHead] = []
        for try await (size, root, created, envelope) in try await client.query(query, logger: logger).decode((Int64, Data, Date, String).self) {
            heads.append(LedgerTreeHead(size: size, root: root, createdAt: created, envelope: envelope))
        }
        return heads
    }

    public func inference(id: String) async throws -> InferenceRecord? {
        try await migrated.wait()
        return try await fetch("SELECT * FROM inference WHERE id = \(id)").first
    }

    public func inferences(_ filter: InferenceFilter, first: Int, after: String?) async throws -> (records: [InferenceRecord], hasMore: Bool) {
        try await migrated.wait()
        // The prefix as a LIKE pattern (its own wildcards and the escape character escaped).
        let pattern = filter.requestIDPrefix.map {
            $0.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "%", with: "\\%").replacingOccurrences(of: "_", with: "\\_")
                + "%"
        }
        // NULL parameters switch a condition off, so one statement serves every filter.
        let rows = try await fetch(
            """
            SELECT * FROM inference
            WHERE (\(filter.model)::text IS NULL OR model = \(filter.model))
              AND (\(filter.revision)::text IS NULL OR revision = \(filter.revision))
              AND (\(filter.caller)::text IS NULL OR caller = \(filter.caller))
              AND (\(filter.callerKey)::text IS NULL OR caller_key = \(filter.callerKey))
              AND (\(pattern)::text IS NULL OR request_id LIKE \(pattern))
              AND (\(filter.since)::timestamptz IS NULL OR created_at >= \(filter.since))
              AND (\(filter.until)::timestamptz IS NULL OR created_at < \(filter.until))
              AND (\(after)::text IS NULL OR id < \(after))
            ORDER BY id DESC LIMIT \(first + 1)
            """)
        return (Array(rows.prefix(first)), rows.count > first)
    }

    public func export(since: Date?, until: Date?, batch: Int, _ body: ([InferenceRecord]) throws -> Void) async throws {
        try await migrated.wait()
        var cursor = ""
        while true {
            let page = try await fetch(
                """
                SELECT * FROM inference WHERE id > \(cursor)
                  AND (\(since)::timestamptz IS NULL OR created_at >= \(since))
                  AND (\(until)::timestamptz IS NULL OR created_at < \(until))
                ORDER BY id LIMIT \(batch)
                """)
            guard let last = page.last else { return }
            try body(page)
            cursor = last.id
        }
    }

    public func saveEvaluation(_ evaluation: EvaluationRecord) async throws {
        try await migrated.wait()
        try await client.query(
            """
            INSERT INTO evaluation (id, created_at, updated_at, caller, caller_key, status, model, revision, commit_sha, dataset,
              dataset_commit, dataset_md5, sampling, total, done, failed, reused, body)
            VALUES (\(evaluation.id), \(evaluation.createdAt), \(evaluation.updatedAt), \(evaluation.caller), \(evaluation.callerKey),
              \(evaluation.status.rawValue), \(evaluation.model), \(evaluation.revision), \(evaluation.commit), \(evaluation.dataset),
              \(evaluation.datasetCommit), \(evaluation.datasetMD5), \(evaluation.sampling), \(evaluation.total), \(evaluation.done),
              \(evaluation.failed), \(evaluation.reused), \(evaluation.body))
            ON CONFLICT (id) DO UPDATE SET updated_at = excluded.updated_at, status = excluded.status, total = excluded.total,
              done = excluded.done, failed = excluded.failed, reused = excluded.reused, body = excluded.body
            """, logger: logger)
    }

    public func evaluation(id: String) async throws -> EvaluationRecord? {
        try await migrated.wait()
        return try await fetchEvaluations("SELECT * FROM evaluation WHERE id = \(id)").first
    }

    public func evaluations(_ filter: EvaluationFilter, first: Int) async throws -> [EvaluationRecord] {
        try await migrated.wait()
        return try await fetchEvaluations(
            """
            SELECT * FROM evaluation
            WHERE (\(filter.model)::text IS NULL OR model = \(filter.model))
              AND (\(filter.revision)::text IS NULL OR revision = \(filter.revision))
              AND (\(filter.dataset)::text IS NULL OR dataset = \(filter.dataset))
              AND (\(filter.callerKey)::text IS NULL OR caller_key = \(filter.callerKey))
            ORDER BY created_at DESC, id LIMIT \(first)
            """)
    }

    private func fetchEvaluations(_ query: PostgresQuery) async throws -> [EvaluationRecord] {
        var records: [EvaluationRecord] = []
        for try await row in try await client.query(query, logger: logger) {
            let cells = row.makeRandomAccess()
            var record = EvaluationRecord(
                id: try cells["id"].decode(String.self), createdAt: try cells["created_at"].decode(Date.self),
                updatedAt: try cells["updated_at"].decode(Date.self), caller: try cells["caller"].decode(String?.self),
                callerKey: try cells["caller_key"].decode(String?.self),
                status: EvaluationStatus(rawValue: try cells["status"].decode(String.self)) ?? .failed,
                model: try cells["model"].decode(String.self), revision: try cells["revision"].decode(String.self),
                commit: try cells["commit_sha"].decode(String.self), dataset: try cells["dataset"].decode(String.self),
                datasetCommit: try cells["dataset_commit"].decode(String.self), datasetMD5: try cells["dataset_md5"].decode(String.self),
                sampling: try cells["sampling"].decode(String.self), scorers: [], total: try cells["total"].decode(Int.self),
                done: try cells["done"].decode(Int.self), failed: try cells["failed"].decode(Int.self),
                reused: try cells["reused"].decode(Int.self), means: [], items: [], badLines: [])
            record.setBody(try cells["body"].decode(String.self))
            records.append(record)
        }
        return records
    }

    public func applyRetention(maxAge: Duration?, maxRows: Int?) async throws -> Int {
        try await migrated.wait()
        var removed = 0
        // Positioned records go by position, a prefix at a time, so no gap opens in the middle of
        // the sequence; the floor says where what is left begins.
        var floor: Int64 = 0
        if let maxAge {
            let cutoff = Date().addingTimeInterval(-Double(maxAge.components.seconds))
            floor = max(floor, try await scalar("SELECT coalesce(max(position), 0) FROM inference WHERE created_at < \(cutoff)"))
            removed += try await count(
                "WITH gone AS (DELETE FROM inference WHERE position IS NULL AND created_at < \(cutoff) RETURNING 1) SELECT count(*) FROM gone")
        }
        if let maxRows {
            removed += try await count(
                """
                WITH gone AS (DELETE FROM inference WHERE position IS NULL
                  AND id NOT IN (SELECT id FROM inference ORDER BY id DESC LIMIT \(maxRows)) RETURNING 1)
                SELECT count(*) FROM gone
                """)
            floor = max(
                floor,
                try await scalar(
                    """
                    SELECT coalesce((SELECT position FROM inference WHERE position IS NOT NULL ORDER BY position DESC
                      LIMIT 1 OFFSET \(maxRows)), 0)
                    """))
        }
        if floor > 0 {
            removed += try await count("WITH gone AS (DELETE FROM inference WHERE position <= \(floor) RETURNING 1) SELECT count(*) FROM gone")
            try await client.query("UPDATE ledger_sequence SET floor = greatest(floor, \(floor)) WHERE id = 1", logger: logger)
        }
        return removed
    }

    public func sequence() async throws -> LedgerSequence {
        try await migrated.wait()
        var state = LedgerSequence(last: 0, floor: 0, legacy: 0, unpositioned: 0)
        for try await (last, floor, legacy) in try await client.query("SELECT last, floor, legacy FROM ledger_sequence WHERE id = 1", logger: logger)
            .decode((Int64, Int64, Int64).self)
        {
            state = LedgerSequence(last: last, floor: floor, legacy: Int(legacy), unpositioned: 0)
        }
        state.unpositioned = try await count("SELECT count(*) FROM inference WHERE position IS NULL OR position < 1")
        return state
    }

    private func scalar(_ query: PostgresQuery) async throws -> Int64 {
        var value: Int64 = 0
        for try await found in try await client.query(query, logger: logger).decode(Int64.self) { value = found }
        return value
    }

    private func count(_ query: PostgresQuery) async throws -> Int {
        var total = 0
        for try await value in try await client.query(query, logger: logger).decode(Int.self) { total = value }
        return total
    }

    private func fetch(_ query: PostgresQuery) async throws -> [InferenceRecord] {
        var records: [InferenceRecord] = []
        for try await row in try await client.query(query, logger: logger) {
            let cells = row.makeRandomAccess()
            records.append(
                InferenceRecord(
                    id: try cells["id"].decode(String.self), createdAt: try cells["created_at"].decode(Date.self),
                    caller: try cells["caller"].decode(String?.self),
                    status: RecordStatus(rawValue: try cells["status"].decode(String.self)) ?? .failed,
                    error: try cells["error"].decode(String?.self), model: try cells["model"].decode(String.self),
                    revision: try cells["revision"].decode(String.self), commit: try cells["commit_sha"].decode(String.self),
                    artifactMD5: try cells["artifact_md5"].decode(String.self), lineage: try cells["lineage"].decode(String.self),
                    engine: try cells["engine"].decode(String.self), sampling: try cells["sampling"].decode(String.self),
                    seed: try cells["seed"].decode(Int64.self),
                    inputKind: InputKind(rawValue: try cells["input_kind"].decode(String.self)) ?? .prompt,
                    input: try cells["input"].decode(String.self), output: try cells["output"].decode(String.self),
                    finishReason: try cells["finish_reason"].decode(String.self), promptTokens: try cells["prompt_tokens"].decode(Int.self),
                    completionTokens: try cells["completion_tokens"].decode(Int.self),
                    completionTokenIDs: try cells["completion_token_ids"].decode(String.self),
                    timeToFirstTokenMs: try cells["ttft_ms"].decode(Double.self), totalMs: try cells["total_ms"].decode(Double.self),
                    requestID: try cells["request_id"].decode(String?.self), traceID: try cells["trace_id"].decode(String?.self),
                    callerKey: try cells["caller_key"].decode(String?.self), receipt: try cells["receipt"].decode(String?.self),
                    position: try cells["position"].decode(Int64?.self), artifactSHA256: try cells["artifact_sha256"].decode(String?.self),
                    signature: try cells["signature"].decode(String?.self)))
        }
        return records
    }
}

/// A ledger that cannot be opened as configured.
public enum LedgerError: Error, Sendable, CustomStringConvertible {
    case configuration(String)
    public var description: String {
        switch self {
        case .configuration(let message): message
        }
    }
}

/// A one-time gate: waiters resume when it opens, or throw the error it failed with.
final class Readiness: Sendable {
    private enum State {
        case waiting([CheckedContinuation<Void, any Error>])
        case open
        case failed(any Error)
    }
    private let state = Mutex(State.waiting([]))

    func wait() async throws {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            let outcome: Result<Void, any Error>? = state.withLock { state in
                switch state {
                case .waiting(let waiters):
                    state = .waiting(waiters + [continuation])
                    return nil
                case .open: return .success(())
                case .failed(let error): return .failure(error)
                }
            }
            if let outcome { continuation.resume(with: outcome) }
        }
    }

    func open() { settle(.success(())) }

    func fail(_ error: any Error) { settle(.failure(error)) }

    private func settle(_ outcome: Result<Void, any Error>) {
        let waiters = state.withLock { state -> [CheckedContinuation<Void, any Error>] in
            guard case .waiting(let waiters) = state else { return [] }
            switch outcome {
            case .success: state = .open
            case .failure(let error): state = .failed(error)
            }
            return waiters
        }
        for waiter in waiters { waiter.resume(with: outcome) }
    }
}
