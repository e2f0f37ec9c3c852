import Synchronization

/// Usage records in the SQL stores: batched inserts, totals, pages and pruning, with the hourly sums
/// (`HourlyUsage`) kept in step.
extension SQLStore {
    static let usageColumns = "id, vkey_id, connection_id, model, prompt_tokens, completion_tokens, estimated, status, latency_ms, stream, started_at, ended_at, node_id"

    /// One transaction, written in statements of up to 64 rows (the session caches each text's prepared
    /// statement) and then the hourly sums of the records it wrote (`HourlyUsage`), paced as one span
    /// (`WritePacing`) — COMMIT included, where SQLite writes the WAL and may checkpoint — so an event loop
    /// sharing the core is held off for one statement (background lane) or one slice (catch-up lane) at a
    /// time: the pace points are one after each statement (all PostgreSQL has) and, on the catch-up lane,
    /// SQLite's own (its progress handler and `PacedVFS`).
    ///
    /// A record is summed only if this call wrote it: when a statement writes fewer rows than it was given
    /// (records already stored — a batch retried after a commit whose reply was lost), the transaction is
    /// rolled back and written again without the records found stored.
    func insertUsage(_ batches: [[UsageRecord]], lane: StoreLane) async throws {
        let total = batches.reduce(0) { $0 + $1.count }
        guard total > 0 else { return }
        let pacing = WritePacing(lane)
        let d = dialect
        try await withSession(lane: lane) { s in
            try pacing.step {
                do {
                    try Self.inTransaction(s, d) { s in try self.writeUsage(batches, total: total, skipping: nil, s) }
                } catch is UsageAlreadyStored {
                    try Self.inTransaction(s, d) { s in
                        try self.writeUsage(batches, total: total, skipping: try self.storedUsageIDs(batches, s), s)
                    }
                }
            }
        }
    }

    /// Writes the records (but those in `stored`, and any id a second time) and adds them to the hourly
    /// sums. Throws `UsageAlreadyStored` if a statement wrote fewer rows than it was given.
    private func writeUsage(_ batches: [[UsageRecord]], total: Int, skipping stored: Set<String>?, _ s: any SQLSession) throws {
        var hourly = HourlyUsage()
        // One parameter array for every statement (each was a ~20 KB allocation, freed through glibc's
        // bins rather than its per-thread cache).
        var params: [SQLValue] = []
        params.reserveCapacity(min(64, total) * 13)
        var rows = 0
        var seen = Set<String>()
        func insert(_ n: Int, _ values: [SQLValue]) throws {
            let written = try s.execute(usageInsertSQL(rows: n), values)
            if written != n {
                guard stored == nil else {
                    throw StoreError(.unavailable, "usage records were stored by another session meanwhile; the batch will be retried")
                }
                throw UsageAlreadyStored()
            }
            WritePacing.point()
        }
        func flush() throws {
            if rows == 64 {
                try insert(rows, params)
            } else {
                var at = 0
                for n in Self.statementRows(rows) {
                    try insert(n, Array(params[at * 13..<(at + n) * 13]))
                    at += n
                }
            }
            params.removeAll(keepingCapacity: true)
            rows = 0
        }
        // Statements of 64 rows run across the batches' boundaries.
        for batch in batches {
            for r in batch {
                if let stored {
                    if stored.contains(r.id) || !seen.insert(r.id).inserted { continue }
                }
                hourly.add(r)
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
        try addHourly(hourly, s)
    }

    /// Adds `hourly`'s sums (negative ones take deleted records away) to `usage_hourly`, in statements of
    /// `statementRows` rows.
    private func addHourly(_ hourly: HourlyUsage, _ s: any SQLSession) throws {
        let rows = hourly.rows()
        var i = 0
        var params: [SQLValue] = []
        for n in Self.statementRows(rows.count) {
            params.removeAll(keepingCapacity: true)
            for values in rows[i..<i + n] { params += values }
            try s.execute(hourlyUpsertSQL(rows: n), params)
            WritePacing.point()
            i += n
        }
    }

    /// How many rows each statement of `n` takes: 64 at a time, then the rest as powers of two (37: 32, 4,
    /// 1), so a session prepares seven statement texts of each kind, not 64. Preparing a 64-row insert
    /// costs ~250 µs of CPU in one piece, where no pace point can pause it; with every row count its own
    /// text, each store session kept meeting counts it had not prepared yet.
    static func statementRows(_ n: Int) -> [Int] {
        var sizes = Array(repeating: 64, count: max(0, n) / 64)
        var rest = max(0, n) % 64
        while rest > 0 {
            let size = 1 << (Int.bitWidth - 1 - rest.leadingZeroBitCount)
            sizes.append(size)
            rest -= size
        }
        return sizes
    }

    /// Which of the records' ids are stored already, 500 a query, looked up by the records' key
    /// (`started_at`, `id`): a stored record with one of these ids has the same start, so matching both
    /// lists finds exactly the stored ones.
    private func storedUsageIDs(_ batches: [[UsageRecord]], _ s: any SQLSession) throws -> Set<String> {
        var found = Set<String>()
        var ids: [SQLValue] = []
        var starts: [Int64] = []
        func look() throws {
            let distinct = Array(Set(starts))
            let idList = (1...ids.count).map { "$\($0)" }.joined(separator: ", ")
            let startList = (1...distinct.count).map { "$\(ids.count + $0)" }.joined(separator: ", ")
            let sql = q("SELECT id FROM usage_records WHERE started_at IN (\(startList)) AND id IN (\(idList))")
            for row in try s.query(sql, ids + distinct.map { .int($0) }) { found.insert(try row.string(0)) }
            ids.removeAll(keepingCapacity: true)
            starts.removeAll(keepingCapacity: true)
        }
        for r in batches.joined() {
            ids.append(.text(r.id))
            starts.append(r.startedAt)
            if ids.count == 500 { try look() }
        }
        if !ids.isEmpty { try look() }
        return found
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

    /// `HourlyUsage.upsertSQL` in this store's dialect; made once per row count.
    private func hourlyUpsertSQL(rows: Int) -> String {
        if let sql = hourlyUpsertTexts.withLock({ $0[rows] }) { return sql }
        let sql = dialect.placeholders(HourlyUsage.upsertSQL(rows: rows))
        hourlyUpsertTexts.withLock { $0[rows] = sql }
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

    /// Whole hours from `usage_hourly`, the parts of an hour at either end of the window from the records.
    func usageTotals(_ query: UsageQuery) async throws -> [UsageTotal] {
        let window = UsageWindow(since: query.since, until: query.until)
        var params: [SQLValue] = []
        func bind(_ v: SQLValue) -> String {
            params.append(v)
            return "$\(params.count)"
        }
        let key = query.virtualKeyID.map { " AND vkey_id = " + bind(.text($0)) } ?? ""
        var parts: [String] = []
        if let hours = window.hours {
            var sql = "SELECT vkey_id, model, requests AS n, prompt_tokens AS p, completion_tokens AS c FROM usage_hourly WHERE 1 = 1" + key
            if let from = hours.from { sql += " AND hour_start >= " + bind(.int(from)) }
            if let to = hours.to { sql += " AND hour_start < " + bind(.int(to)) }
            parts.append(sql)
        }
        for range in window.records {
            var sql = "SELECT vkey_id, model, 1 AS n, prompt_tokens AS p, completion_tokens AS c FROM usage_records WHERE started_at < " + bind(.int(range.to)) + key
            if let from = range.from { sql += " AND started_at >= " + bind(.int(from)) }
            parts.append(sql)
        }
        guard !parts.isEmpty else { return [] }
        let sql = q("SELECT vkey_id, model, SUM(n), SUM(p), SUM(c) FROM (" + parts.joined(separator: " UNION ALL ")
            + ") AS parts GROUP BY vkey_id, model ORDER BY vkey_id, model")
        let bound = params
        return try await withSession { s in
            try s.query(sql, bound).map {
                UsageTotal(virtualKeyID: try $0.string(0), model: try $0.string(1), requests: try $0.int(2),
                           promptTokens: try $0.int(3), completionTokens: try $0.int(4))
            }
        }
    }

    /// A key's records are looked for only between its first and last hour with usage in the window
    /// (`usage_hourly`, through its `(vkey_id, hour_start)` index): the records have no per-key index.
    /// nil: the key has no usage there.
    private func narrowed(_ query: UsageQuery, _ s: any SQLSession) throws -> UsageQuery? {
        guard let k = query.virtualKeyID else { return query }
        var sql = "SELECT MIN(hour_start), MAX(hour_start) FROM usage_hourly WHERE vkey_id = $1"
        var params: [SQLValue] = [.text(k)]
        if let since = query.since { params.append(.int(HourlyUsage.hour(of: max(0, since)))); sql += " AND hour_start >= $\(params.count)" }
        if let until = query.until { params.append(.int(until)); sql += " AND hour_start < $\(params.count)" }
        let row = try s.query(q(sql), params).first
        guard let first = row?.optionalInt(0), let last = row?.optionalInt(1) else { return nil }
        var n = query
        n.since = max(query.since ?? first, first)
        n.until = min(query.until ?? last + HourlyUsage.hourMillis, last + HourlyUsage.hourMillis)
        return n
    }

    func usageRecords(_ query: UsageQuery, limit: Int) async throws -> [UsageRecord] {
        try await withSession { s in
            guard let query = try self.narrowed(query, s) else { return [] }
            let (w, params) = self.whereClause(query)
            let sql = self.q("SELECT \(Self.usageColumns) FROM usage_records\(w) ORDER BY started_at DESC, id LIMIT \(max(0, limit))")
            return try s.query(sql, params).map(Self.usageRecord)
        }
    }

    func usagePage(_ query: UsageQuery, after: UsageCursor?, limit: Int) async throws -> [UsageRecord] {
        try await withSession { s in
            guard let query = try self.narrowed(query, s) else { return [] }
            var (w, params) = self.whereClause(query)
            if let after {
                params += [.int(after.startedAt), .text(after.id)]
                let (t, id) = (params.count - 1, params.count)
                w += (w.isEmpty ? " WHERE " : " AND ") + "(started_at > $\(t) OR (started_at = $\(t) AND id > $\(id)))"
            }
            let sql = self.q("SELECT \(Self.usageColumns) FROM usage_records\(w) ORDER BY started_at, id LIMIT \(max(0, limit))")
            return try s.query(sql, params).map(Self.usageRecord)
        }
    }

    private static func usageRecord(_ row: SQLRow) throws -> UsageRecord {
        UsageRecord(id: try row.string(0), virtualKeyID: try row.string(1), connectionID: try row.string(2), model: try row.string(3),
                    promptTokens: try row.int(4), completionTokens: try row.int(5), estimated: try row.bool(6),
                    statusCode: Int(try row.int(7)), latencyMillis: try row.int(8), stream: try row.bool(9),
                    startedAt: try row.int(10), endedAt: try row.int(11), nodeID: try row.string(12))
    }

    func deleteUsage(startedBefore before: Int64, limit: Int, lane: StoreLane) async throws -> Int {
        // Through the records' key (started_at, id), oldest first. Paced as usage inserts are: on the background lane
        // (the node's rounds) one statement, so the pause comes after COMMIT and a paused prune never holds
        // the write lock; on the normal lane (`usage prune`) SQLite pauses inside it too, lock held, and a
        // usage batch may wait in the busy handler meanwhile — a background write; no request waits on it.
        // The deleted records' sums come back (`RETURNING`) and are taken from their hours in the same
        // transaction; an hour left with no requests goes.
        let d = dialect
        let sql = q("DELETE FROM usage_records WHERE (started_at, id) IN (SELECT started_at, id FROM usage_records WHERE started_at < $1 ORDER BY started_at, id LIMIT \(max(0, limit)))"
            + " RETURNING vkey_id, model, started_at, prompt_tokens, completion_tokens")
        let emptied = q("DELETE FROM usage_hourly WHERE hour_start <= $1 AND requests <= 0")
        let pacing = WritePacing(lane)
        return try await withSession(lane: lane) { s in
            try pacing.step {
                try Self.inTransaction(s, d) { s in
                    let deleted = try s.query(sql, [.int(before)])
                    var hourly = HourlyUsage()
                    var latest: Int64 = 0
                    for row in deleted {
                        let startedAt = try row.int(2)
                        latest = max(latest, startedAt)
                        hourly.add(virtualKeyID: try row.string(0), model: try row.string(1), startedAt: startedAt,
                                   promptTokens: try row.int(3), completionTokens: try row.int(4), sign: -1)
                    }
                    if !hourly.isEmpty {
                        try self.addHourly(hourly, s)
                        try s.execute(emptied, [.int(HourlyUsage.hour(of: latest))])
                    }
                    return deleted.count
                }
            }
        }
    }
}

/// A usage statement wrote fewer rows than it was given: some of the records were stored before.
private struct UsageAlreadyStored: Error {}
