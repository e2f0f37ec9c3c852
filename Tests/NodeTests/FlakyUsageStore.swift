import Storage
@testable import Node

/// A store that fails on demand, to prove accepted usage survives an outage (and pruning retries).
final class FlakyUsageStore: Store, @unchecked Sendable {
    let inner: any Store
    let down = LockedBox(false)
    /// Set to n: the n-th insert from now fails (and sets `down`).
    let failingInsert = LockedBox<Int?>(nil)
    /// The lane of every insert, in order.
    let lanes = LockedBox<[StoreLane]>([])
    init(_ inner: any Store) { self.inner = inner }
    var backend: String { "flaky" }
    func migrate() async throws { try await inner.migrate() }
    func createConnection(_ c: ConnectionRecord, actor: AuditActor) async throws { try await inner.createConnection(c, actor: actor) }
    func connection(id: String) async throws -> ConnectionRecord? { try await inner.connection(id: id) }
    func connections() async throws -> [ConnectionRecord] { try await inner.connections() }
    func deleteConnection(id: String, force: Bool, actor: AuditActor) async throws { try await inner.deleteConnection(id: id, force: force, actor: actor) }
    func resealConnections(_ reseal: @escaping @Sendable (String, [UInt8]) throws -> [UInt8], verifier: String, actor: AuditActor) async throws -> Int {
        try await inner.resealConnections(reseal, verifier: verifier, actor: actor)
    }
    func createVirtualKey(_ k: VirtualKeyRecord, actor: AuditActor) async throws { try await inner.createVirtualKey(k, actor: actor) }
    func virtualKey(id: String) async throws -> VirtualKeyRecord? { try await inner.virtualKey(id: id) }
    func virtualKey(hash: String) async throws -> VirtualKeyRecord? { try await inner.virtualKey(hash: hash) }
    func virtualKeys() async throws -> [VirtualKeyRecord] { try await inner.virtualKeys() }
    func updateVirtualKey(_ k: VirtualKeyRecord, actor: AuditActor) async throws { try await inner.updateVirtualKey(k, actor: actor) }
    func deleteVirtualKey(id: String, actor: AuditActor) async throws { try await inner.deleteVirtualKey(id: id, actor: actor) }
    /// The record ids of every insert attempted, in order.
    let batches = LockedBox<[[String]]>([])
    func insertUsage(_ inserted: [[UsageRecord]], lane: StoreLane) async throws {
        lanes.withLock { $0.append(lane) }
        batches.withLock { $0.append(inserted.joined().map(\.id)) }
        let failNow = failingInsert.withLock { n -> Bool in
            guard let left = n else { return false }
            n = left - 1
            return left == 1
        }
        if failNow { down.withLock { $0 = true } }
        if down.withLock({ $0 }) { throw StoreError(.unavailable, "store is down (test)") }
        try await inner.insertUsage(inserted, lane: lane)
    }
    func usageTotals(_ q: UsageQuery) async throws -> [UsageTotal] { try await inner.usageTotals(q) }
    func usageRecords(_ q: UsageQuery, limit: Int) async throws -> [UsageRecord] { try await inner.usageRecords(q, limit: limit) }
    func usagePage(_ q: UsageQuery, after: UsageCursor?, limit: Int) async throws -> [UsageRecord] {
        try await inner.usagePage(q, after: after, limit: limit)
    }
    /// The lane of every usage delete, in order, and a pause before each (a slow store).
    let deleteLanes = LockedBox<[StoreLane]>([])
    let deleteDelayMillis = LockedBox(0)
    func deleteUsage(startedBefore before: Int64, limit: Int, lane: StoreLane) async throws -> Int {
        deleteLanes.withLock { $0.append(lane) }
        let delay = deleteDelayMillis.withLock { $0 }
        if delay > 0 { try await Task.sleep(for: .milliseconds(delay)) }
        if down.withLock({ $0 }) { throw StoreError(.unavailable, "store is down (test)") }
        return try await inner.deleteUsage(startedBefore: before, limit: limit, lane: lane)
    }
    func auditEvents(limit: Int) async throws -> [AuditEvent] { try await inner.auditEvents(limit: limit) }
    func recordAudit(_ actor: AuditActor, action: String, objectType: String, objectID: String, detail: String) async throws {
        try await inner.recordAudit(actor, action: action, objectType: objectType, objectID: objectID, detail: detail)
    }
    func revision() async throws -> Int64 { try await inner.revision() }
    func setting(_ key: String) async throws -> String? { try await inner.setting(key) }
    func initSetting(_ key: String, value: String) async throws -> String { try await inner.initSetting(key, value: value) }
    func close() async { await inner.close() }
}
