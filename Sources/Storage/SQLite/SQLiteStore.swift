extension SQLDialect {
    static let sqlite = SQLDialect(
        name: "SQLite", blob: "BLOB", bigint: "INTEGER", double: "REAL",
        serialPrimaryKey: "INTEGER PRIMARY KEY AUTOINCREMENT", beginWrite: "BEGIN IMMEDIATE", migrationLock: nil,
        insertIgnoringDuplicates: ("INSERT OR IGNORE INTO", ""),
        withoutRowID: " WITHOUT ROWID",
        placeholders: { sql in sql.replacing("$", with: "?") })
}

/// The embedded default: a SQLite file in WAL mode, a few worker threads each with its own connection.
func SQLiteStore(path: String, poolSize: Int) throws -> any Store {
    // Create the directory for the database file if needed.
    if let slash = path.lastIndex(of: "/") {
        let dir = String(path[..<slash])
        if !dir.isEmpty { try makeDirectories(dir) }
    }
    return SQLStore(backend: "sqlite", dialect: .sqlite, poolSize: max(1, poolSize)) { () throws(SQLError) -> any SQLSession in
        try SQLiteSession(path: path)
    }
}
