import Foundation
@testable import Storage
import Testing
import TestSupport

/// A database a version-1 binary left (records keyed by id alone, indexed by key and by start) moves to
/// hourly sums (version 2) and to records keyed by (started_at, id) (version 3) on `migrate`, on both SQL
/// backends, losing nothing.
@Suite struct UsageSchemaMigrationTests {
    enum Backend: String, CaseIterable, Sendable { case sqlite, postgres }

    @Test(arguments: Backend.allCases) func aVersionOneDatabaseKeepsEveryRecordSummedByHourAndKeyedByItsStart(_ b: Backend) async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("llmp-migrate-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let sqlitePath = dir.appendingPathComponent("old.db").path
        let url = b == .sqlite ? "sqlite:\(sqlitePath)" : try PostgresTestServer.shared().makeDatabase()
        let dialect: SQLDialect = b == .sqlite ? .sqlite : .postgres
        func session() throws -> any SQLSession { b == .sqlite ? try SQLiteSession(path: sqlitePath) : try PostgresSession(url: url) }
        let hour: Int64 = 3_600_000
        let base: Int64 = 1_700_000_000_000 / hour * hour
        do {
            // What a version-1 binary left: its schema, and records across three hours for two keys and models.
            let s = try session()
            try SQLStore.applyMigrations(s, dialect, upTo: 1)
            for i in 0..<90 {
                let t = base + Int64(i) * (hour / 30)  // three hours, 30 records each
                try s.execute(dialect.placeholders("INSERT INTO usage_records VALUES ($1, $2, 'c', $3, $4, 1, 0, 200, 1, 0, $5, $5, 'n')"),
                              [.text("u\(i)"), .text(i % 3 == 0 ? "vk_a" : "vk_b"), .text(i % 2 == 0 ? "m1" : "m2"), .int(Int64(i)), .int(t)])
            }
        }
        let store = try StoreFactory.open(url: url)
        try await store.migrate()
        let a = try await store.usageTotals(UsageQuery(virtualKeyID: "vk_a"))
        #expect(a.reduce(0) { $0 + $1.requests } == 30)
        #expect(a.reduce(0) { $0 + $1.promptTokens } == stride(from: 0, to: 90, by: 3).reduce(0) { $0 + Int64($1) })
        // The second hour, whole: read from the sums the migration made.
        let second = try await store.usageTotals(UsageQuery(since: base + hour, until: base + 2 * hour))
        #expect(second.reduce(0) { $0 + $1.requests } == 30)
        // Every record copied into the rebuilt table, in start order; a retried one is still skipped by its
        // key; a prune takes the oldest.
        let page = try await store.usagePage(UsageQuery(), after: nil, limit: 200)
        #expect(page.map(\.id) == (0..<90).map { "u\($0)" })
        try await store.insertUsage([page[3]])
        #expect(try await store.usageTotals(UsageQuery()).reduce(0) { $0 + $1.requests } == 90)
        #expect(try await store.deleteUsage(startedBefore: base + hour, limit: 7, lane: .normal) == 7)
        #expect(try await store.usagePage(UsageQuery(), after: nil, limit: 1).first?.id == "u7")
        await store.close()

        let s = try session()
        #expect(try s.query("SELECT COUNT(*) FROM usage_hourly", []).first?.int(0) == 12)  // 3 hours × 2 keys × 2 models
        #expect(try s.query("SELECT MAX(version) FROM schema_migrations", []).first?.int(0) == Int64(SQLSchema.latestVersion))
        switch b {
        case .sqlite:
            #expect(try s.query("SELECT name FROM sqlite_master WHERE name IN ('usage_vkey_time', 'usage_time', 'usage_records_v3')", []).isEmpty)
            let table = try s.query("SELECT sql FROM sqlite_master WHERE name = 'usage_records'", []).first?.string(0) ?? ""
            #expect(table.contains("PRIMARY KEY (started_at, id)") && table.hasSuffix("WITHOUT ROWID"), "\(table)")
        case .postgres:
            let indexes = try s.query("SELECT indexdef FROM pg_indexes WHERE tablename = 'usage_records'", []).map { try $0.string(0) }
            #expect(indexes.count == 1 && indexes.first?.contains("(started_at, id)") == true, "\(indexes)")
        }
    }
}
