import Synchronization

/// Usage records in the SQL stores: batched inserts, totals, pages and pruning.
extension SQLStore {
    static let usageColumns = "id, vkey_id, connection_id, model, prompt_tokens, completion_tokens, estimated, status, latency_ms, stream, started_at, ended_at, node_id"

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
}
