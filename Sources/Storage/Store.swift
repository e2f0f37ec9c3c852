/// Persistent state shared by every node: connections, virtual keys, usage, the audit trail and a
/// revision counter that every admin change bumps (nodes compare it to know their caches are stale).
///
/// Every mutating call writes its audit event and bumps the revision in the same transaction as the
/// change, so a failure leaves nothing half-applied. Blocking drivers run on a bounded worker pool, never
/// on the caller's thread.
public protocol Store: Sendable {
    /// A short name for logs and errors: `sqlite`, `postgres`, `mongodb`.
    var backend: String { get }

    /// Brings the schema up to date; safe to call from several nodes at once.
    func migrate() async throws

    // MARK: Connections
    func createConnection(_ connection: ConnectionRecord, actor: AuditActor) async throws
    func connection(id: String) async throws -> ConnectionRecord?
    func connections() async throws -> [ConnectionRecord]
    /// Deletes a connection. Refuses with `.inUse` while keys use it, unless `force`, which deletes those keys too.
    func deleteConnection(id: String, force: Bool, actor: AuditActor) async throws
    /// Replaces every connection's sealed key and the master-key verifier setting in one transaction
    /// (master-key rotation). Nothing is written if any `reseal` throws.
    func resealConnections(_ reseal: @escaping @Sendable (_ id: String, _ sealed: [UInt8]) throws -> [UInt8], verifier: String,
                           actor: AuditActor) async throws -> Int

    // MARK: Virtual keys
    func createVirtualKey(_ key: VirtualKeyRecord, actor: AuditActor) async throws
    func virtualKey(id: String) async throws -> VirtualKeyRecord?
    func virtualKey(hash: String) async throws -> VirtualKeyRecord?
    func virtualKeys() async throws -> [VirtualKeyRecord]
    func updateVirtualKey(_ key: VirtualKeyRecord, actor: AuditActor) async throws
    func deleteVirtualKey(id: String, actor: AuditActor) async throws

    // MARK: Usage
    /// Inserts the records of every batch in one transaction (all or none); re-inserting records whose ids
    /// exist is a no-op (safe to retry). On the `.background` lane the work yields the CPU to request
    /// handling (see `StoreLane`). Several batches in one call are one commit: a commit has fixed costs
    /// (SQLite writes every page it changed whole to the WAL — the records' last pages, the hourly sums').
    func insertUsage(_ batches: [[UsageRecord]], lane: StoreLane) async throws
    func usageTotals(_ query: UsageQuery) async throws -> [UsageTotal]
    func usageRecords(_ query: UsageQuery, limit: Int) async throws -> [UsageRecord]
    /// The records `query` selects, oldest first — by `startedAt`, then `id` — strictly after `after` (the
    /// previous page's last record), at most `limit`: pages for an export that neither skips nor repeats a
    /// record, whatever is written or pruned meanwhile.
    func usagePage(_ query: UsageQuery, after: UsageCursor?, limit: Int) async throws -> [UsageRecord]
    /// Deletes at most `limit` of the oldest usage records that started before `before` (Unix ms), in one
    /// short transaction, and returns how many it deleted; `pruneUsage` repeats it until none are left.
    /// On the `.background` lane the work yields the CPU to request handling, as usage writes do.
    func deleteUsage(startedBefore before: Int64, limit: Int, lane: StoreLane) async throws -> Int

    // MARK: Audit, revision, settings
    func auditEvents(limit: Int) async throws -> [AuditEvent]
    /// Writes an audit event for an action that changes no record it could share a transaction with (a
    /// usage prune); like every admin change it moves the revision.
    func recordAudit(_ actor: AuditActor, action: String, objectType: String, objectID: String, detail: String) async throws
    func revision() async throws -> Int64
    func setting(_ key: String) async throws -> String?
    /// Stores a setting only if it is not set yet; returns the value now stored.
    func initSetting(_ key: String, value: String) async throws -> String

    /// Releases connections and worker threads.
    func close() async
}

/// Opens the store a URL names: `sqlite:PATH`, `postgres://…`/`postgresql://…`, `mongodb://…`.
public enum StoreFactory {
    public static func open(url: String, poolSize: Int = 4) throws -> any Store {
        if url.hasPrefix("sqlite:") {
            var path = String(url.dropFirst("sqlite:".count))
            if path.hasPrefix("//") { path = String(path.dropFirst(2)) }
            guard !path.isEmpty else { throw StoreError(.unsupportedURL, "sqlite URL needs a path, e.g. sqlite:./data/llm-proxy.db") }
            return try SQLiteStore(path: path, poolSize: min(poolSize, 4))
        }
        if url.hasPrefix("postgres://") || url.hasPrefix("postgresql://") {
            return try PostgresStore(url: url, poolSize: poolSize)
        }
        if url.hasPrefix("mongodb://") || url.hasPrefix("mongodb+srv://") {
            return try MongoStore(url: url, poolSize: poolSize)
        }
        throw StoreError(.unsupportedURL, "unsupported database URL \"\(redactURL(url))\": use sqlite:PATH, postgres://… or mongodb://…")
    }
}

/// A URL with any password replaced, safe for logs and errors.
public func redactURL(_ url: String) -> String {
    guard let scheme = url.firstRange(of: "://"), let at = url[scheme.upperBound...].lastIndex(of: "@") else { return url }
    let userinfo = url[scheme.upperBound..<at]
    guard let colon = userinfo.firstIndex(of: ":") else { return url }
    return String(url[..<colon]) + ":***" + String(url[at...])
}

extension Store {
    /// One batch, in one transaction.
    public func insertUsage(_ records: [UsageRecord], lane: StoreLane = .normal) async throws {
        try await insertUsage([records], lane: lane)
    }

    /// Deletes every usage record that started before `before` (Unix ms), `batch` records per transaction
    /// so that usage writes and reports keep moving meanwhile; returns how many it deleted. Stops between
    /// batches when its task is cancelled (what was deleted stays deleted).
    public func pruneUsage(startedBefore before: Int64, batch: Int = 5000, lane: StoreLane = .normal) async throws -> Int {
        precondition(batch > 0, "batch must be positive")
        var total = 0
        while !Task.isCancelled {
            let n = try await deleteUsage(startedBefore: before, limit: batch, lane: lane)
            total += n
            if n < batch { break }
        }
        return total
    }
}

/// Which threads run a store call, and how usage writes share a core with the event loops:
/// - `.normal`: the store's threads (nice 5); SQL usage writes pace themselves lightly (`WritePacing`).
/// - `.background`: one thread per store for bookkeeping that must not delay requests — in the SQL stores a
///   nice-19 writer that paces itself, in MongoDB a nice-19 thread.
/// - `.urgent`: the normal threads, unpaced — for a usage backlog near its cap and the final flush, where
///   losing accepted records would be worse than delaying requests.
public enum StoreLane: Sendable, Equatable {
    case normal
    case background
    case urgent
}
