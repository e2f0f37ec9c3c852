/// Versioned schema for the SQL backends. Append new migrations; never edit an applied one.
enum SQLSchema {
    static func migrations(_ d: SQLDialect) -> [(version: Int, statements: [String])] {
        [
            (1, [
                "CREATE TABLE meta (id INTEGER PRIMARY KEY, revision \(d.bigint) NOT NULL)",
                "INSERT INTO meta (id, revision) VALUES (1, 0)",
                "CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
                """
                CREATE TABLE connections (
                  id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, provider TEXT NOT NULL, endpoint TEXT NOT NULL,
                  api_key_sealed \(d.blob) NOT NULL, options TEXT NOT NULL,
                  created_at \(d.bigint) NOT NULL, updated_at \(d.bigint) NOT NULL)
                """,
                """
                CREATE TABLE virtual_keys (
                  id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, key_hash TEXT NOT NULL UNIQUE, display_prefix TEXT NOT NULL,
                  connection_id TEXT NOT NULL REFERENCES connections(id),
                  requests_per_second \(d.double) NOT NULL, burst \(d.double) NOT NULL, tokens_per_minute \(d.bigint) NOT NULL,
                  expires_at \(d.bigint), allowed_models TEXT NOT NULL, max_concurrent INTEGER NOT NULL, disabled INTEGER NOT NULL,
                  created_at \(d.bigint) NOT NULL, updated_at \(d.bigint) NOT NULL)
                """,
                "CREATE INDEX virtual_keys_connection ON virtual_keys (connection_id)",
                """
                CREATE TABLE usage_records (
                  id TEXT PRIMARY KEY, vkey_id TEXT NOT NULL, connection_id TEXT NOT NULL, model TEXT NOT NULL,
                  prompt_tokens \(d.bigint) NOT NULL, completion_tokens \(d.bigint) NOT NULL, estimated INTEGER NOT NULL,
                  status INTEGER NOT NULL, latency_ms \(d.bigint) NOT NULL, stream INTEGER NOT NULL,
                  started_at \(d.bigint) NOT NULL, ended_at \(d.bigint) NOT NULL, node_id TEXT NOT NULL)
                """,
                "CREATE INDEX usage_vkey_time ON usage_records (vkey_id, started_at)",
                "CREATE INDEX usage_time ON usage_records (started_at)",
                """
                CREATE TABLE audit_events (
                  id \(d.serialPrimaryKey), at \(d.bigint) NOT NULL, actor TEXT NOT NULL, action TEXT NOT NULL,
                  object_type TEXT NOT NULL, object_id TEXT NOT NULL, detail TEXT NOT NULL)
                """,
            ]),
            // Usage summed per hour, key and model (`HourlyUsage`), kept with the records; it replaces the
            // records' per-key index, whose pages every commit wrote once per key in it.
            (2, [
                """
                CREATE TABLE usage_hourly (
                  hour_start \(d.bigint) NOT NULL, vkey_id TEXT NOT NULL, model TEXT NOT NULL,
                  requests \(d.bigint) NOT NULL, prompt_tokens \(d.bigint) NOT NULL, completion_tokens \(d.bigint) NOT NULL,
                  PRIMARY KEY (hour_start, vkey_id, model))
                """,
                "CREATE INDEX usage_hourly_vkey ON usage_hourly (vkey_id, hour_start)",
                """
                INSERT INTO usage_hourly (hour_start, vkey_id, model, requests, prompt_tokens, completion_tokens)
                SELECT started_at / 3600000 * 3600000, vkey_id, model, COUNT(*), SUM(prompt_tokens), SUM(completion_tokens)
                FROM usage_records GROUP BY started_at / 3600000 * 3600000, vkey_id, model
                """,
                "DROP INDEX usage_vkey_time",
            ]),
            // Records keyed by (started_at, id), in SQLite stored in that key's b-tree: one b-tree written per
            // record instead of three (the rows, the id's unique index, the started_at index) — every query
            // on records reads a time range, and a record's id never changes its start. Rebuilt by copying.
            (3, [
                """
                CREATE TABLE usage_records_v3 (
                  id TEXT NOT NULL, vkey_id TEXT NOT NULL, connection_id TEXT NOT NULL, model TEXT NOT NULL,
                  prompt_tokens \(d.bigint) NOT NULL, completion_tokens \(d.bigint) NOT NULL, estimated INTEGER NOT NULL,
                  status INTEGER NOT NULL, latency_ms \(d.bigint) NOT NULL, stream INTEGER NOT NULL,
                  started_at \(d.bigint) NOT NULL, ended_at \(d.bigint) NOT NULL, node_id TEXT NOT NULL,
                  PRIMARY KEY (started_at, id))\(d.withoutRowID)
                """,
                """
                INSERT INTO usage_records_v3 (\(SQLStore.usageColumns))
                SELECT \(SQLStore.usageColumns) FROM usage_records
                """,
                "DROP TABLE usage_records",
                "ALTER TABLE usage_records_v3 RENAME TO usage_records",
            ]),
        ]
    }

    static var latestVersion: Int { migrations(SQLDialect.sqlite).map(\.version).max() ?? 0 }
}
