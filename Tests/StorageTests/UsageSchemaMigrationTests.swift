import Foundation
import Testing
@testable import Storage

/// A database made before the hourly usage sums (schema version 1) moves to them, and to records keyed by
/// (started_at, id) (version 3), on `migrate`.
@Suite struct UsageSchemaMigrationTests {
    @Test func aVersionOneDatabaseGetsHourlySumsAndRecordsKeyedByTheirStartWithNoneLost() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("llmp-migrate-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("old.db").path
        let hour: Int64 = 3_600_000
        let base: Int64 = 1_700_000_000_000 / hour * hour
        do {
            // What a version-1 binary left: its schema, and records across three hours for two keys.
            let s = try SQLiteSession(path: path)
            try s.execute("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)", [])
            for stmt in SQLSchema.migrations(.sqlite)[0].statements { try s.execute(stmt, []) }
            try s.execute("INSERT INTO schema_migrations (version, applied_at) VALUES (1, 0)", [])
            for i in 0..<90 {
                let t = base + Int64(i) * (hour / 30)  // three hours, 30 records each
                try s.execute("INSERT INTO usage_records VALUES (?1, ?2, 'c', ?3, ?4, 1, 0, 200, 1, 0, ?5, ?5, 'n')",
                              [.text("u\(i)"), .text(i % 3 == 0 ? "vk_a" : "vk_b"), .text(i % 2 == 0 ? "m1" : "m2"), .int(Int64(i)), .int(t)])
            }
        }
        let store = try StoreFactory.open(url: "sqlite:\(path)")
        try await store.migrate()
        let a = try await store.usageTotals(UsageQuery(virtualKeyID: "vk_a"))
        #expect(a.reduce(0) { $0 + $1.requests } == 30)
        let prompt: Int64 = stride(from: 0, to: 90, by: 3).reduce(0) { $0 + Int64($1) }
        #expect(a.reduce(0) { $0 + $1.promptTokens } == prompt)
        // The second hour, whole: read from the sums the migration made.
        let second = try await store.usageTotals(UsageQuery(since: base + hour, until: base + 2 * hour))
        #expect(second.reduce(0) { $0 + $1.requests } == 30)
        // Every record copied into the rebuilt table, in start order; a prune takes the oldest.
        let page = try await store.usagePage(UsageQuery(), after: nil, limit: 200)
        #expect(page.map(\.id) == (0..<90).map { "u\($0)" })
        #expect(try await store.deleteUsage(startedBefore: base + hour, limit: 7, lane: .normal) == 7)
        #expect(try await store.usagePage(UsageQuery(), after: nil, limit: 1).first?.id == "u7")
        await store.close()
        let s = try SQLiteSession(path: path)
        #expect(try s.query("SELECT COUNT(*) FROM usage_hourly", []).first?.int(0) == 12)  // 3 hours × 2 keys × 2 models
        #expect(try s.query("SELECT name FROM sqlite_master WHERE name = 'usage_vkey_time'", []).isEmpty)
        #expect(try s.query("SELECT name FROM sqlite_master WHERE name IN ('usage_time', 'usage_records_v3')", []).isEmpty)
        let table = try s.query("SELECT sql FROM sqlite_master WHERE name = 'usage_records'", []).first?.string(0) ?? ""
        #expect(table.contains("PRIMARY KEY (started_at, id)") && table.hasSuffix("WITHOUT ROWID"))
        #expect(try s.query("SELECT MAX(version) FROM schema_migrations", []).first?.int(0) == Int64(SQLSchema.latestVersion))
    }
}
