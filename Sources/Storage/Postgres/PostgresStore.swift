extension SQLDialect {
    static let postgres = SQLDialect(
        name: "PostgreSQL", blob: "BYTEA", bigint: "BIGINT", double: "DOUBLE PRECISION",
        serialPrimaryKey: "BIGSERIAL PRIMARY KEY", beginWrite: "BEGIN",
        // One migration at a time across every node sharing the database.
        migrationLock: "SELECT pg_advisory_xact_lock(7271827)",
        insertIgnoringDuplicates: ("INSERT INTO", " ON CONFLICT (started_at, id) DO NOTHING"),
        withoutRowID: "",
        placeholders: { $0 })
}

/// PostgreSQL through libpq: a bounded pool of worker threads, each with its own connection, reconnecting
/// after the server restarts.
func PostgresStore(url: String, poolSize: Int) throws -> any Store {
    SQLStore(backend: "postgres", dialect: .postgres, poolSize: max(1, poolSize)) { () throws(SQLError) -> any SQLSession in
        try PostgresSession(url: url)
    }
}
