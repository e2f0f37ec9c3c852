import FoundationEssentials
import Synchronization

/// The `Store` for SQL databases (SQLite and PostgreSQL): the same statements over a `SQLSession` per
/// worker thread. Each admin change, its audit event and the revision bump commit together.
final class SQLStore: Store, @unchecked Sendable {
    let backend: String
    let dialect: SQLDialect
    private let pool: WorkerPool<any SQLSession>
    /// One thread (and session) for `.background` work.
    private let backgroundPool: WorkerPool<any SQLSession>
    private let connect: @Sendable () throws(SQLError) -> any SQLSession

    /// `@unchecked Sendable`: all state is immutable; sessions live inside the worker pool.
    init(backend: String, dialect: SQLDialect, poolSize: Int, connect: @escaping @Sendable () throws(SQLError) -> any SQLSession) {
        self.backend = backend
        self.dialect = dialect
        self.connect = connect
        pool = WorkerPool(name: backend, threads: poolSize)
        // Nice 19: a waking event loop preempts this thread at once (at nice 0 its paced steps added ~0.15 ms
        // to one-connection p99s, 0.25 -> 0.4 ms); when a saturated loop starves it, `UsageWriter` moves
        // the batches to the nice-5 lane, paced too.
        backgroundPool = WorkerPool(name: backend + "-background", threads: 1, threadName: "llmp-store-bg", nice: 19)
    }

    // MARK: Running statements

    /// Runs `body` with a live session, reconnecting once if the session turned out to be dead.
    private func withSession<T: Sendable>(lane: StoreLane = .normal, _ body: @escaping @Sendable (any SQLSession) throws -> T) async throws -> T {
        let connect = self.connect
        let backend = self.backend
        return try await (lane == .background ? backgroundPool : pool).run { handle in
            var attempt = 0
            while true {
                attempt += 1
                do {
                    if handle == nil { handle = try connect() }
                    return try body(handle!)
                } catch let e as SQLError {
                    if e.kind == .connection {
                        handle = nil
                        if attempt < 2 { continue }
                        throw StoreError(.unavailable, "\(backend) is unavailable: \(e.message)")
                    }
                    throw Self.map(e, backend: backend)
                }
            }
        }
    }

    private func transaction<T: Sendable>(lane: StoreLane = .normal, _ body: @escaping @Sendable (any SQLSession) throws -> T) async throws -> T {
        let d = dialect
        return try await withSession(lane: lane) { s in try Self.inTransaction(s, d, body) }
    }

    /// Runs `body` in a write transaction on `s`: committed if it returns, rolled back if it throws.
    private static func inTransaction<T>(_ s: any SQLSession, _ d: SQLDialect, _ body: (any SQLSession) throws -> T) throws -> T {
        try s.execute(d.beginWrite, [])
        do {
            let r = try body(s)
            try s.execute("COMMIT", [])
            return r
        } catch {
            _ = try? s.execute("ROLLBACK", [])
            throw error
        }
    }

    private static func map(_ e: SQLError, backend: String) -> StoreError {
        switch e.kind {
        case .uniqueViolation: StoreError(.duplicate, e.message)
        case .foreignKeyViolation: StoreError(.notFound, e.message)
        case .connection: StoreError(.unavailable, "\(backend) is unavailable: \(e.message)")
        case .other: StoreError(.unavailable, "\(backend) error: \(e.message)")
        }
    }

    private func q(_ sql: String) -> String { dialect.placeholders(sql) }

    private func audit(_ s: any SQLSession, _ actor: AuditActor, _ action: String, _ type: String, _ id: String, _ detail: String = "") throws {
        try s.execute(q("INSERT INTO audit_events (at, actor, action, object_type, object_id, detail) VALUES ($1, $2, $3, $4, $5, $6)"),
                      [.int(nowMillis()), .text(actor.name), .text(action), .text(type), .text(id), .text(detail)])
        try s.execute("UPDATE meta SET revision = revision + 1 WHERE id = 1", [])
    }

    // MARK: Schema

    func migrate() async throws {
        let d = dialect
        try await withSession { s in
            try Self.inTransaction(s, d) { s in
                if let lock = d.migrationLock { _ = try s.query(lock, []) }
                try s.execute("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at \(d.bigint) NOT NULL)", [])
                let applied = Set(try s.query("SELECT version FROM schema_migrations", []).map { try $0.int(0) })
                if let newest = applied.max(), newest > Int64(SQLSchema.latestVersion) {
                    throw StoreError(.schemaTooNew, "the \(d.name) schema is at version \(newest), newer than this binary knows (\(SQLSchema.latestVersion)); upgrade llm-proxy")
                }
                for m in SQLSchema.migrations(d) where !applied.contains(Int64(m.version)) {
                    for stmt in m.statements { try s.execute(stmt, []) }
                    try s.execute(d.placeholders("INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)"), [.int(Int64(m.version)), .int(nowMillis())])
                }
            }
        }
    }

    // MARK: Connections

    private static let connectionColumns = "id, name, provider, endpoint, api_key_sealed, options, created_at, updated_at"

    private static func connection(_ r: SQLRow) throws -> ConnectionRecord {
        guard let provider = Provider(rawValue: try r.string(2)) else { throw StoreError(.invalid, "unknown provider \(try r.string(2)) in store") }
        let options = (try? JSONDecoder().decode([String: String].self, from: Data(try r.string(5).utf8))) ?? [:]
        return ConnectionRecord(id: try r.string(0), name: try r.string(1), provider: provider, endpoint: try r.string(3),
                                encryptedAPIKey: try r.blob(4), options: options, createdAt: try r.int(6), updatedAt: try r.int(7))
    }

    func createConnection(_ c: ConnectionRecord, actor: AuditActor) async throws {
        let options = String(decoding: try JSONEncoder().encode(c.options), as: UTF8.self)
        let sql = q("INSERT INTO connections (\(Self.connectionColumns)) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)")
        do {
            try await transaction { s in
                try s.execute(sql, [.text(c.id), .text(c.name), .text(c.provider.rawValue), .text(c.endpoint),
                                    .blob(c.encryptedAPIKey), .text(options), .int(c.createdAt), .int(c.updatedAt)])
                try self.audit(s, actor, "create", "connection", c.id, "name=\(c.name) provider=\(c.provider.rawValue)")
            }
        } catch let e as StoreError where e.code == .duplicate {
            throw StoreError(.duplicate, "a connection named \"\(c.name)\" already exists")
        }
    }

    func connection(id: String) async throws -> ConnectionRecord? {
        let sql = q("SELECT \(Self.connectionColumns) FROM connections WHERE id = $1")
        return try await withSession { s in try s.query(sql, [.text(id)]).first.map(Self.connection) }
    }

    func connections() async throws -> [ConnectionRecord] {
        let sql = "SELECT \(Self.connectionColumns) FROM connections ORDER BY created_at, id"
        return try await withSession { s in try s.query(sql, []).map(Self.connection) }
    }

    func deleteConnection(id: String, force: Bool, actor: AuditActor) async throws {
        let d = dialect
        try await transaction { s in
            guard try !s.query(d.placeholders("SELECT id FROM connections WHERE id = $1"), [.text(id)]).isEmpty else {
                throw StoreError(.notFound, "no connection with id \(id)")
            }
            let users = try s.query(d.placeholders("SELECT id FROM virtual_keys WHERE connection_id = $1"), [.text(id)])
            if !users.isEmpty && !force {
                throw StoreError(.inUse, "connection \(id) is used by \(users.count) virtual key(s); remove them first or use --force")
            }
            for u in users {
                let kid = try u.string(0)
                try s.execute(d.placeholders("DELETE FROM virtual_keys WHERE id = $1"), [.text(kid)])
                try self.audit(s, actor, "delete", "virtual_key", kid, "connection \(id) deleted with --force")
            }
            try s.execute(d.placeholders("DELETE FROM connections WHERE id = $1"), [.text(id)])
            try self.audit(s, actor, "delete", "connection", id)
        }
    }

    func resealConnections(_ reseal: @escaping @Sendable (_ id: String, _ sealed: [UInt8]) throws -> [UInt8], verifier: String,
                           actor: AuditActor) async throws -> Int {
        let d = dialect
        return try await transaction { s in
            let rows = try s.query("SELECT id, api_key_sealed FROM connections", [])
            for r in rows {
                let id = try r.string(0)
                let sealed = try reseal(id, try r.blob(1))
                try s.execute(d.placeholders("UPDATE connections SET api_key_sealed = $1, updated_at = $2 WHERE id = $3"),
                              [.blob(sealed), .int(nowMillis()), .text(id)])
            }
            try s.execute(d.placeholders("DELETE FROM settings WHERE key = $1"), [.text(MasterKeyVerifier.settingKey)])
            try s.execute(d.placeholders("INSERT INTO settings (key, value) VALUES ($1, $2)"), [.text(MasterKeyVerifier.settingKey), .text(verifier)])
            try self.audit(s, actor, "rotate_master_key", "store", "connections", "\(rows.count) connection(s) re-encrypted")
            return rows.count
        }
    }

    // MARK: Virtual keys

    private static let keyColumns = "id, name, key_hash, display_prefix, connection_id, requests_per_second, burst, tokens_per_minute, expires_at, allowed_models, max_concurrent, disabled, created_at, updated_at"

    private static func key(_ r: SQLRow) throws -> VirtualKeyRecord {
        let models = (try? JSONDecoder().decode([String].self, from: Data(try r.string(9).utf8))) ?? []
        return VirtualKeyRecord(id: try r.string(0), name: try r.string(1), keyHash: try r.string(2), displayPrefix: try r.string(3),
                                connectionID: try r.string(4), requestsPerSecond: try r.double(5), burst: try r.double(6),
                                tokensPerMinute: try r.int(7), expiresAt: r.optionalInt(8), allowedModels: models,
                                maxConcurrent: Int(try r.int(10)), disabled: try r.bool(11), createdAt: try r.int(12), updatedAt: try r.int(13))
    }

    private static func keyValues(_ k: VirtualKeyRecord) throws -> [SQLValue] {
        let models = String(decoding: try JSONEncoder().encode(k.allowedModels), as: UTF8.self)
        return [.text(k.id), .text(k.name), .text(k.keyHash), .text(k.displayPrefix), .text(k.connectionID),
                .double(k.requestsPerSecond), .double(k.burst), .int(k.tokensPerMinute), k.expiresAt.map { .int($0) } ?? .null,
                .text(models), .int(Int64(k.maxConcurrent)), .int(k.disabled ? 1 : 0), .int(k.createdAt), .int(k.updatedAt)]
    }

    func createVirtualKey(_ k: VirtualKeyRecord, actor: AuditActor) async throws {
        let values = try Self.keyValues(k)
        let d = dialect
        let sql = q("INSERT INTO virtual_keys (\(Self.keyColumns)) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)")
        do {
            try await transaction { s in
                guard try !s.query(d.placeholders("SELECT id FROM connections WHERE id = $1"), [.text(k.connectionID)]).isEmpty else {
                    throw StoreError(.notFound, "no connection with id \(k.connectionID)")
                }
                try s.execute(sql, values)
                try self.audit(s, actor, "create", "virtual_key", k.id, "name=\(k.name) connection=\(k.connectionID)")
            }
        } catch let e as StoreError where e.code == .duplicate {
            throw StoreError(.duplicate, "a virtual key named \"\(k.name)\" already exists")
        }
    }

    func virtualKey(id: String) async throws -> VirtualKeyRecord? {
        let sql = q("SELECT \(Self.keyColumns) FROM virtual_keys WHERE id = $1")
        return try await withSession { s in try s.query(sql, [.text(id)]).first.map(Self.key) }
    }

    func virtualKey(hash: String) async throws -> VirtualKeyRecord? {
        let sql = q("SELECT \(Self.keyColumns) FROM virtual_keys WHERE key_hash = $1")
        return try await withSession { s in try s.query(sql, [.text(hash)]).first.map(Self.key) }
    }

    func virtualKeys() async throws -> [VirtualKeyRecord] {
        let sql = "SELECT \(Self.keyColumns) FROM virtual_keys ORDER BY created_at, id"
        return try await withSession { s in try s.query(sql, []).map(Self.key) }
    }

    func updateVirtualKey(_ k: VirtualKeyRecord, actor: AuditActor) async throws {
        let values = try Self.keyValues(k)
        let sql = q("""
            UPDATE virtual_keys SET name = $2, key_hash = $3, display_prefix = $4, connection_id = $5, requests_per_second = $6,
              burst = $7, tokens_per_minute = $8, expires_at = $9, allowed_models = $10, max_concurrent = $11, disabled = $12,
              created_at = $13, updated_at = $14 WHERE id = $1
            """)
        do {
            try await transaction { s in
                guard try s.execute(sql, values) == 1 else { throw StoreError(.notFound, "no virtual key with id \(k.id)") }
                try self.audit(s, actor, "update", "virtual_key", k.id,
                               "rps=\(k.requestsPerSecond) burst=\(k.burst) tpm=\(k.tokensPerMinute) disabled=\(k.disabled)")
            }
        } catch let e as StoreError where e.code == .duplicate {
            throw StoreError(.duplicate, "a virtual key named \"\(k.name)\" already exists")
        }
    }

    func deleteVirtualKey(id: String, actor: AuditActor) async throws {
        let sql = q("DELETE FROM virtual_keys WHERE id = $1")
        try await transaction { s in
            guard try s.execute(sql, [.text(id)]) == 1 else { throw StoreError(.notFound, "no virtual key with id \(id)") }
            try self.audit(s, actor, "delete", "virtual_key", id)
        }
    }

    // MARK: Usage

    private let usageInsertTexts = Mutex<[Int: String]>([:])
    private static let usageColumns = "id, vkey_id, connection_id, model, prompt_tokens, completion_tokens, estimated, status, latency_ms, stream, started_at, ended_at, node_id"

    /// One transaction, written in statements of up to 64 rows (the session caches each text's prepared
    /// statement), paced as one span (`WritePacing`) — COMMIT included, where SQLite writes the WAL and may
    /// checkpoint — so an event loop sharing the core is held off for one statement (background lane) or
    /// one slice (catch-up lane) at a time: the pace points are one after each statement (all PostgreSQL
    /// has) and, on the catch-up lane, SQLite's own (its progress handler and `PacedVFS`).
    func insertUsage(_ batches: [[UsageRecord]], lane: StoreLane) async throws {
        let total = batches.reduce(0) { $0 + $1.count }
        guard total > 0 else { return }
        let pacing = WritePacing(lane)
        let d = dialect
        try await withSession(lane: lane) { s in
            try pacing.step {
                try Self.inTransaction(s, d) { s in
                    // One parameter array for every statement (each was a ~20 KB allocation, freed through
                    // glibc's bins rather than its per-thread cache).
                    var params: [SQLValue] = []
                    params.reserveCapacity(min(64, total) * 13)
                    var rows = 0
                    func flush() throws {
                        try s.execute(self.usageInsertSQL(rows: rows), params)
                        WritePacing.point()
                        params.removeAll(keepingCapacity: true)
                        rows = 0
                    }
                    // Statements of 64 rows run across the batches' boundaries.
                    for batch in batches {
                        for r in batch {
                            // One append each (an array literal per row was an allocation per record).
                            params.append(.text(r.id))
                            params.append(.text(r.virtualKeyID))
                            params.append(.text(r.connectionID))
                            params.append(.text(r.model))
                            params.append(.int(r.promptTokens))
                            params.append(.int(r.completionTokens))
                            params.append(.int(r.estimated ? 1 : 0))
                            params.append(.int(Int64(r.statusCode)))
                            params.append(.int(r.latencyMillis))
                            params.append(.int(r.stream ? 1 : 0))
                            params.append(.int(r.startedAt))
                            params.append(.int(r.endedAt))
                            params.append(.text(r.nodeID))
                            rows += 1
                            if rows == 64 { try flush() }
                        }
                    }
                    if rows > 0 { try flush() }
                }
            }
        }
    }

    /// An `INSERT … VALUES (…), (…)` of `rows` records that skips ids already written (a retried batch),
    /// in this store's dialect; made once per row count.
    private func usageInsertSQL(rows: Int) -> String {
        if let sql = usageInsertTexts.withLock({ $0[rows] }) { return sql }
        let ignoring = dialect.insertIgnoringDuplicates
        var sql = "\(ignoring.prefix) usage_records (\(Self.usageColumns)) VALUES "
        for n in 0..<rows {
            let base = n * 13
            sql += (n == 0 ? "" : ", ") + "(" + (1...13).map { "$\(base + $0)" }.joined(separator: ", ") + ")"
        }
        sql = dialect.placeholders(sql + ignoring.suffix)
        usageInsertTexts.withLock { $0[rows] = sql }
        return sql
    }

    private func whereClause(_ query: UsageQuery) -> (String, [SQLValue]) {
        var conditions: [String] = []
        var params: [SQLValue] = []
        if let k = query.virtualKeyID { params.append(.text(k)); conditions.append("vkey_id = $\(params.count)") }
        if let s = query.since { params.append(.int(s)); conditions.append("started_at >= $\(params.count)") }
        if let u = query.until { params.append(.int(u)); conditions.append("started_at < $\(params.count)") }
        return (conditions.isEmpty ? "" : " WHERE " + conditions.joined(separator: " AND "), params)
    }

    func usageTotals(_ query: UsageQuery) async throws -> [UsageTotal] {
        let (w, params) = whereClause(query)
        let sql = q("SELECT vkey_id, model, COUNT(*), SUM(prompt_tokens), SUM(completion_tokens) FROM usage_records\(w) GROUP BY vkey_id, model ORDER BY vkey_id, model")
        return try await withSession { s in
            try s.query(sql, params).map {
                UsageTotal(virtualKeyID: try $0.string(0), model: try $0.string(1), requests: try $0.int(2),
                           promptTokens: try $0.int(3), completionTokens: try $0.int(4))
            }
        }
    }

    func usageRecords(_ query: UsageQuery, limit: Int) async throws -> [UsageRecord] {
        let (w, params) = whereClause(query)
        let sql = q("SELECT \(Self.usageColumns) FROM usage_records\(w) ORDER BY started_at DESC, id LIMIT \(max(0, limit))")
        return try await withSession { s in try s.query(sql, params).map(Self.usageRecord) }
    }

    func usagePage(_ query: UsageQuery, after: UsageCursor?, limit: Int) async throws -> [UsageRecord] {
        var (w, params) = whereClause(query)
        if let after {
            params += [.int(after.startedAt), .text(after.id)]
            let (t, id) = (params.count - 1, params.count)
            w += (w.isEmpty ? " WHERE " : " AND ") + "(started_at > $\(t) OR (started_at = $\(t) AND id > $\(id)))"
        }
        let sql = q("SELECT \(Self.usageColumns) FROM usage_records\(w) ORDER BY started_at, id LIMIT \(max(0, limit))")
        let bound = params
        return try await withSession { s in try s.query(sql, bound).map(Self.usageRecord) }
    }

    private static func usageRecord(_ row: SQLRow) throws -> UsageRecord {
        UsageRecord(id: try row.string(0), virtualKeyID: try row.string(1), connectionID: try row.string(2), model: try row.string(3),
                    promptTokens: try row.int(4), completionTokens: try row.int(5), estimated: try row.bool(6),
                    statusCode: Int(try row.int(7)), latencyMillis: try row.int(8), stream: try row.bool(9),
                    startedAt: try row.int(10), endedAt: try row.int(11), nodeID: try row.string(12))
    }

    func deleteUsage(startedBefore before: Int64, limit: Int, lane: StoreLane) async throws -> Int {
        // Through the index on started_at, oldest first. Paced as usage inserts are: on the background lane
        // (the node's rounds) one statement, so the pause comes after COMMIT and a paused prune never holds
        // the write lock; on the normal lane (`usage prune`) SQLite pauses inside it too, lock held, and a
        // usage batch may wait in the busy handler meanwhile — a background write; no request waits on it.
        let d = dialect
        let sql = q("DELETE FROM usage_records WHERE \(d.rowKey) IN (SELECT \(d.rowKey) FROM usage_records WHERE started_at < $1 ORDER BY started_at LIMIT \(max(0, limit)))")
        let pacing = WritePacing(lane)
        return try await withSession(lane: lane) { s in
            try pacing.step { try Self.inTransaction(s, d) { s in try s.execute(sql, [.int(before)]) } }
        }
    }

    // MARK: Audit, revision, settings

    func recordAudit(_ actor: AuditActor, action: String, objectType: String, objectID: String, detail: String) async throws {
        try await transaction { s in try self.audit(s, actor, action, objectType, objectID, detail) }
    }

    func auditEvents(limit: Int) async throws -> [AuditEvent] {
        let sql = "SELECT id, at, actor, action, object_type, object_id, detail FROM audit_events ORDER BY id DESC LIMIT \(max(0, limit))"
        return try await withSession { s in
            try s.query(sql, []).map {
                AuditEvent(id: try $0.int(0), at: try $0.int(1), actor: try $0.string(2), action: try $0.string(3),
                           objectType: try $0.string(4), objectID: try $0.string(5), detail: try $0.string(6))
            }
        }
    }

    func revision() async throws -> Int64 {
        try await withSession { s in try s.query("SELECT revision FROM meta WHERE id = 1", []).first?.int(0) ?? 0 }
    }

    func setting(_ key: String) async throws -> String? {
        let sql = q("SELECT value FROM settings WHERE key = $1")
        return try await withSession { s in try s.query(sql, [.text(key)]).first?.string(0) }
    }

    func initSetting(_ key: String, value: String) async throws -> String {
        let insert = q("INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING")
        let select = q("SELECT value FROM settings WHERE key = $1")
        return try await transaction { s in
            try s.execute(insert, [.text(key), .text(value)])
            return try s.query(select, [.text(key)]).first?.string(0) ?? value
        }
    }

    func close() async {
        pool.shutdown()
        backgroundPool.shutdown()
    }
}
