import CSQLite

/// One `sqlite3*` connection. Owned by one worker thread (WAL mode, busy timeout), so no locking here.
final class SQLiteSession: SQLSession {
    private var db: OpaquePointer?
    private var statements: [String: OpaquePointer] = [:]

    /// Process-wide SQLite settings, applied once before the first connection opens.
    private static let configured: Void = {
        _ = llmp_sqlite_disable_memstatus()
        _ = PacedVFS.registered
    }()

    init(path: String) throws(SQLError) {
        _ = Self.configured
        let flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX
        let rc = sqlite3_open_v2(path, &db, flags, PacedVFS.registered ? PacedVFS.name : nil)
        guard rc == SQLITE_OK, db != nil else {
            let message = db.map { String(cString: sqlite3_errmsg($0)) } ?? "out of memory"
            sqlite3_close(db)
            db = nil
            throw SQLError(kind: .connection, message: "cannot open SQLite database \(path): \(message)")
        }
        sqlite3_busy_timeout(db, 10_000)
        // Pace points inside long statements (a 64-row insert): a writer paced in slices (the usage
        // catch-up lane, `WritePacing`) sleeps mid-statement; nothing for anyone else.
        sqlite3_progress_handler(db, 100, { _ in WritePacing.driverPoint(); return 0 }, nil)
        // 16 KiB pages for a new database (an existing one keeps its size: SQLite changes it only by a
        // VACUUM outside WAL mode). Usage records append to one b-tree, and a commit writes every page it
        // touched whole to the WAL: 16 KiB pages write ~3.4x fewer frames a commit, 1.34–1.46 -> 1.09–1.13
        // CPU µs a record (bench/usage-schema.sh, 4000 records a commit; 1000 keys: 1.86 -> 1.44).
        try execute("PRAGMA page_size=\(Self.newPageSize)", [])
        try execute("PRAGMA journal_mode=WAL", [])
        try execute("PRAGMA synchronous=NORMAL", [])
        try execute("PRAGMA foreign_keys=ON", [])
        // Checkpoint every `checkpointBytes` of WAL (200 pages of 4 KiB; SQLite's default is 1000 pages):
        // the checkpoint runs inside a COMMIT, and its final `fdatasync` — the kernel submitting every page
        // written since the last — is CPU that no pace point can slice (~350 µs at this size), so a smaller
        // one is a shorter stall for a loop sharing the writer's core (bench/profile.sh, one core, 16
        // connections, three alternated pairs: p99 2.0–2.1 -> 1.7 ms). The price is raw insert speed: one
        // unpaced writer 184–190k -> 130–148k records/s (bench/storage.sh, 4 KiB pages, before schema 3).
        // Measured again once the catch-up lane sliced checkpoints (`PacedVFS`): 1000 pages gained nothing
        // (2 of 4 pairs on req/s).
        let pageRows = try query("PRAGMA page_size", [])
        let pageSize = ((try? pageRows.first?.int(0)) ?? nil) ?? 4096
        try execute("PRAGMA wal_autocheckpoint=\(max(1, Self.checkpointBytes / max(512, pageSize)))", [])
    }

    /// The page size a new database file gets.
    static let newPageSize = 16384
    /// WAL bytes between checkpoints.
    static let checkpointBytes: Int64 = 200 * 4096

    deinit {
        for (_, stmt) in statements { sqlite3_finalize(stmt) }
        sqlite3_close_v2(db)
        arena.deallocate()
    }

    private func prepare(_ sql: String) throws(SQLError) -> OpaquePointer {
        if let s = statements[sql] { return s }  // reset, bindings cleared, by the `query` that last ran it
        var stmt: OpaquePointer?
        let rc = sqlite3_prepare_v2(db, sql, -1, &stmt, nil)
        guard rc == SQLITE_OK, let stmt else { throw error(rc, context: "prepare") }
        statements[sql] = stmt
        return stmt
    }

    private func error(_ rc: Int32, context: String) -> SQLError {
        let message = String(cString: sqlite3_errmsg(db))
        let extended = sqlite3_extended_errcode(db)
        let kind: SQLError.Kind
        switch extended {
        case 2067, 1555: kind = .uniqueViolation       // SQLITE_CONSTRAINT_UNIQUE, _PRIMARYKEY
        case 787: kind = .foreignKeyViolation          // SQLITE_CONSTRAINT_FOREIGNKEY
        default: kind = (rc == SQLITE_CANTOPEN || rc == SQLITE_IOERR || rc == SQLITE_CORRUPT || rc == SQLITE_NOTADB) ? .connection : .other
        }
        return SQLError(kind: kind, message: "SQLite \(context): \(message)")
    }

    /// Binds `params`; text and blobs point into `arena` (`SQLITE_STATIC`: SQLite neither copies nor frees
    /// them), which must stay valid until the statement is reset — `query` steps inside it. The session's
    /// one arena instead of SQLite copying every text (an allocation each: 5 per usage record).
    private func bind(_ stmt: OpaquePointer, _ params: [SQLValue], arena: UnsafeMutableRawBufferPointer) {
        var offset = 0
        func place(_ bytes: UnsafeRawBufferPointer) -> UnsafeRawPointer? {
            guard let base = arena.baseAddress else { return nil }
            if bytes.count > 0 { (base + offset).copyMemory(from: bytes.baseAddress!, byteCount: bytes.count) }
            defer { offset += bytes.count }
            return UnsafeRawPointer(base + offset)
        }
        for (i, p) in params.enumerated() {
            let idx = Int32(i + 1)
            switch p {
            case .null: sqlite3_bind_null(stmt, idx)
            case .int(let v): sqlite3_bind_int64(stmt, idx, v)
            case .double(let d): sqlite3_bind_double(stmt, idx, d)
            case .text(var s):
                // With its length: no `strlen`, and a NUL inside the text is kept rather than ending it.
                s.withUTF8 { u in
                    let at = place(UnsafeRawBufferPointer(u))
                    _ = sqlite3_bind_text(stmt, idx, (at ?? Self.empty).assumingMemoryBound(to: CChar.self), Int32(u.count), llmp_sqlite_static())
                }
            case .blob(let b):
                b.withUnsafeBytes { bytes in _ = sqlite3_bind_blob(stmt, idx, place(bytes) ?? Self.empty, Int32(bytes.count), llmp_sqlite_static()) }
            }
        }
    }

    /// What an empty text or blob points at (a null pointer would bind NULL).
    private static var empty: UnsafeRawPointer { UnsafeRawPointer(("" as StaticString).utf8Start) }

    private static func arenaSize(_ params: [SQLValue]) -> Int {
        var n = 0
        for p in params {
            switch p {
            case .text(let s): n += s.utf8.count
            case .blob(let b): n += b.count
            default: break
            }
        }
        return n
    }

    /// The bound texts' and blobs' bytes, kept from statement to statement (one allocation per statement
    /// was a ~6 KB `malloc` per 64 usage records); given back when a statement needed over 1 MiB.
    private var arena = UnsafeMutableRawBufferPointer(start: nil, count: 0)

    func query(_ sql: String, _ params: [SQLValue]) throws(SQLError) -> [SQLRow] {
        let stmt = try prepare(sql)
        let needed = Self.arenaSize(params)
        if needed > arena.count {
            arena.deallocate()
            arena = UnsafeMutableRawBufferPointer.allocate(byteCount: max(needed, 2 * arena.count), alignment: 1)
        }
        defer {
            // Before the arena is reused or freed: no cached statement keeps a pointer into it.
            sqlite3_reset(stmt)
            sqlite3_clear_bindings(stmt)
            if arena.count > 1 << 20 {
                arena.deallocate()
                arena = UnsafeMutableRawBufferPointer(start: nil, count: 0)
            }
        }
        bind(stmt, params, arena: arena)
        var rows: [SQLRow] = []
        let columns = sqlite3_column_count(stmt)
        while true {
            let rc = sqlite3_step(stmt)
            if rc == SQLITE_DONE { break }
            guard rc == SQLITE_ROW else { throw error(rc, context: "step") }
            var values: [SQLValue] = []
            values.reserveCapacity(Int(columns))
            for c in 0..<columns {
                switch sqlite3_column_type(stmt, c) {
                case SQLITE_INTEGER: values.append(.int(sqlite3_column_int64(stmt, c)))
                case SQLITE_FLOAT: values.append(.double(sqlite3_column_double(stmt, c)))
                case SQLITE_TEXT:
                    // By its length (after `column_text`, as SQLite asks): a NUL inside the text is kept.
                    let p = sqlite3_column_text(stmt, c)
                    let n = Int(sqlite3_column_bytes(stmt, c))
                    values.append(.text(p.map { String(decoding: UnsafeBufferPointer(start: $0, count: n), as: UTF8.self) } ?? ""))
                case SQLITE_BLOB:
                    let n = Int(sqlite3_column_bytes(stmt, c))
                    if let p = sqlite3_column_blob(stmt, c), n > 0 {
                        values.append(.blob(Array(UnsafeRawBufferPointer(start: p, count: n))))
                    } else {
                        values.append(.blob([]))
                    }
                default: values.append(.null)
                }
            }
            rows.append(SQLRow(values: values))
        }
        return rows
    }

    @discardableResult
    func execute(_ sql: String, _ params: [SQLValue]) throws(SQLError) -> Int {
        _ = try query(sql, params)
        return Int(sqlite3_changes(db))
    }
}
