import CSQLite

/// One `sqlite3*` connection. Owned by one worker thread (WAL mode, busy timeout), so no locking here.
final class SQLiteSession: SQLSession {
    private var db: OpaquePointer?
    private var statements: [String: OpaquePointer] = [:]

    init(path: String) throws(SQLError) {
        let flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX
        let rc = sqlite3_open_v2(path, &db, flags, nil)
        guard rc == SQLITE_OK, db != nil else {
            let message = db.map { String(cString: sqlite3_errmsg($0)) } ?? "out of memory"
            sqlite3_close(db)
            db = nil
            throw SQLError(kind: .connection, message: "cannot open SQLite database \(path): \(message)")
        }
        sqlite3_busy_timeout(db, 10_000)
        try execute("PRAGMA journal_mode=WAL", [])
        try execute("PRAGMA synchronous=NORMAL", [])
        try execute("PRAGMA foreign_keys=ON", [])
        // Checkpoint every 200 WAL pages (default 1000): the checkpoint runs inside a COMMIT, in one
        // go, so a smaller one is a shorter stall for a loop sharing the writer's core (bench/profile.sh,
        // one core, 16 connections, three alternated pairs: p99 2.0–2.1 -> 1.7 ms). The price is raw
        // insert speed: one unpaced writer 184–190k -> 130–148k records/s (bench/storage.sh), still ~4x
        // what a saturated event-loop core produces.
        try execute("PRAGMA wal_autocheckpoint=200", [])
    }

    deinit {
        for (_, stmt) in statements { sqlite3_finalize(stmt) }
        sqlite3_close_v2(db)
    }

    private func prepare(_ sql: String) throws(SQLError) -> OpaquePointer {
        if let s = statements[sql] {
            sqlite3_reset(s)
            sqlite3_clear_bindings(s)
            return s
        }
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

    private func bind(_ stmt: OpaquePointer, _ params: [SQLValue]) {
        for (i, p) in params.enumerated() {
            let idx = Int32(i + 1)
            switch p {
            case .null: sqlite3_bind_null(stmt, idx)
            case .int(let v): sqlite3_bind_int64(stmt, idx, v)
            case .double(let d): sqlite3_bind_double(stmt, idx, d)
            case .text(let s):
                // With its length: no `strlen`, and a NUL inside the text is kept rather than ending it.
                let n = Int32(s.utf8.count)
                s.withCString { _ = sqlite3_bind_text(stmt, idx, $0, n, llmp_sqlite_transient()) }
            case .blob(let b):
                b.withUnsafeBytes { p in _ = sqlite3_bind_blob(stmt, idx, p.baseAddress, Int32(p.count), llmp_sqlite_transient()) }
            }
        }
    }

    func query(_ sql: String, _ params: [SQLValue]) throws(SQLError) -> [SQLRow] {
        let stmt = try prepare(sql)
        defer { sqlite3_reset(stmt) }
        bind(stmt, params)
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
