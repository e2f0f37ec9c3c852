@testable import Storage
import Testing
import TestSupport

/// A PostgreSQL database a version-1 binary left (records keyed by id alone, indexed by key and by start)
/// moves to hourly sums and records keyed by (started_at, id) on `migrate`, losing nothing.
@Suite struct PostgresUsageMigrationTests {
    @Test func aVersionOneDatabaseKeepsEveryRecordAndEndsWithOneIndexOnThem() async throws {
        let url = try PostgresTestServer.shared().makeDatabase()
        let hour: Int64 = 3_600_000
        let base: Int64 = 1_700_000_000_000 / hour * hour
        do {
            let s = try PostgresSession(url: url)
            try s.execute("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL)", [])
            for stmt in SQLSchema.migrations(.postgres)[0].statements { try s.execute(stmt, []) }
            try s.execute("INSERT INTO schema_migrations (version, applied_at) VALUES (1, 0)", [])
            for i in 0..<60 {
                let t = base + Int64(i) * (hour / 20)  // three hours, 20 records each
                try s.execute("INSERT INTO usage_records VALUES ($1, $2, 'c', 'm', $3, 1, 0, 200, 1, 0, $4, $4, 'n')",
                              [.text("u\(i)"), .text(i % 2 == 0 ? "vk_a" : "vk_b"), .int(Int64(i)), .int(t)])
            }
        }
        let store = try StoreFactory.open(url: url)
        try await store.migrate()
        let a = try await store.usageTotals(UsageQuery(virtualKeyID: "vk_a"))
        #expect(a.reduce(0) { $0 + $1.requests } == 30)
        #expect(a.reduce(0) { $0 + $1.promptTokens } == stride(from: 0, to: 60, by: 2).reduce(0) { $0 + Int64($1) })
        let page = try await store.usagePage(UsageQuery(), after: nil, limit: 100)
        #expect(page.map(\.id) == (0..<60).map { "u\($0)" })
        // A retried record is still skipped by its key.
        try await store.insertUsage([page[3]])
        #expect(try await store.usageTotals(UsageQuery()).reduce(0) { $0 + $1.requests } == 60)
        #expect(try await store.deleteUsage(startedBefore: base + hour, limit: 5, lane: .normal) == 5)
        #expect(try await store.usagePage(UsageQuery(), after: nil, limit: 1).first?.id == "u5")
        await store.close()
        let s = try PostgresSession(url: url)
        let indexes = try s.query("SELECT indexdef FROM pg_indexes WHERE tablename = 'usage_records'", []).map { try $0.string(0) }
        #expect(indexes.count == 1 && indexes.first?.contains("(started_at, id)") == true, "\(indexes)")
        #expect(try s.query("SELECT MAX(version) FROM schema_migrations", []).first?.int(0) == Int64(SQLSchema.latestVersion))
    }
}
