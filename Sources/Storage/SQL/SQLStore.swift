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
    /// Usage statements' texts by row count, made once each (`SQLStore+Usage.swift`).
    let usageInsertTexts = Mutex<[Int: String]>([:])
    let hourlyUpsertTexts = Mutex<[Int: String]>([:])

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
    func withSession<T: Sendable>(lane: StoreLane = .normal, _ body: @escaping @Sendable (any SQLSession) throws -> T) async throws -> T {
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
    static func inTransaction<T>(_ s: any SQLSession, _ d: SQLDialect, _ body: (any SQLSession) throws -> T) throws -> T {
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

    func q(_ sql: String) -> String { dialect.placeholders(sql) }

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
                try Self.applyMigrations(s, d)
            }
        }
    }

    /// Applies the migrations `s` lacks, up to `version` (the tests stop early to make an older database),
    /// in the caller's transaction.
    static func applyMigrations(_ s: any SQLSession, _ d: SQLDialect, upTo version: Int = SQLSchema.latestVersion) throws {
        try s.execute("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at \(d.bigint) NOT NULL)", [])
        let applied = Set(try s.query("SELECT version FROM schema_migrations", []).map { try $0.int(0) })
        if let newest = applied.max(), newest > Int64(SQLSchema.latestVersion) {
            throw StoreError(.schemaTooNew, "the \(d.name) schema is at version \(newest), newer than this binary knows (\(SQLSchema.latestVersion)); upgrade llm-proxy")
        }
        for m in SQLSchema.migrations(d) where m.version <= version && !applied.contains(Int64(m.version)) {
            for stmt in m.statements { try s.execute(stmt, []) }
            try s.execute(d.placeholders("INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)"), [.int(Int64(m.version)), .int(nowMillis())])
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
