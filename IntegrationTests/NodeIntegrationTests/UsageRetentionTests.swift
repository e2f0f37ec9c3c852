import Foundation
import Storage
import Testing
import TestSupport

/// Usage records do not pile up for ever: `usage prune` (on the store, or through a node's admin API) and
/// each node's `--usage-retention` delete the old ones, on every backend.
@Suite struct UsageRetentionTests {
    let binary = BuiltProducts.path("llm-proxy")
    static let day: Int64 = 86_400_000

    func withStore<T>(_ url: String, _ body: (any Store) async throws -> T) async throws -> T {
        let store = try StoreFactory.open(url: url, poolSize: 1)
        try await store.migrate()
        do {
            let result = try await body(store)
            await store.close()
            return result
        } catch {
            await store.close()
            throw error
        }
    }

    /// `count` records of key `vk_ret` that started `ago` milliseconds ago (one millisecond apart).
    func seed(_ url: String, count: Int, ago: Int64) async throws {
        let start = nowMillis() - ago
        let records = (0..<count).map { i in
            let t = start + Int64(i)
            return UsageRecord(id: Identifiers.makeTimeOrdered("u", millis: t), virtualKeyID: "vk_ret", connectionID: "conn_ret", model: "gpt-4o-mini",
                               promptTokens: 3, completionTokens: 4, statusCode: 200, latencyMillis: 5, stream: false,
                               startedAt: t, endedAt: t + 5, nodeID: "seed")
        }
        try await withStore(url) { try await $0.insertUsage(records) }
    }

    func requests(_ url: String) async throws -> Int64 {
        try await withStore(url) { try await $0.usageTotals(UsageQuery()).reduce(0) { $0 + $1.requests } }
    }

    func lastAudit(_ url: String) async throws -> AuditEvent? {
        try await withStore(url) { try await $0.auditEvents(limit: 1).first }
    }

    func deleted(_ r: CommandResult) throws -> Int? {
        (try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])?["deleted"] as? Int
    }

    @Test(arguments: AdminCLITests.Backend.allCases)
    func pruneDeletesOnlyOlderRecordsOnTheStoreAndThroughANode(_ backend: AdminCLITests.Backend) async throws {
        let url = try backend.url()
        let env = ["LLM_PROXY_DATABASE_URL": url, "LLM_PROXY_MASTER_KEY": "retention-master-key-1", "LLM_PROXY_ADMIN_KEY": AdminAPITests.adminKey]
        try await seed(url, count: 120, ago: 100 * Self.day)
        try await seed(url, count: 30, ago: Self.day)

        // On the store.
        let local = try runCommand(binary, ["usage", "prune", "--before", "30d", "--output", "json"], environment: env)
        #expect(local.status == 0, "\(local.output)")
        #expect(try deleted(local) == 120)
        #expect(try await requests(url) == 30)
        let audit = try #require(try await lastAudit(url))
        #expect(audit.action == "prune" && audit.objectType == "usage" && audit.detail.hasPrefix("120 record(s) that started before"))
        #expect(audit.actor.hasPrefix("cli:"))
        let again = try runCommand(binary, ["usage", "prune", "--before", "30d"], environment: env)
        #expect(again.status == 0 && again.stdout.contains("deleted 0 usage record(s)"), "\(again.output)")

        // Through a node's admin API (--server), which keeps its own records (retention 90d by default).
        try await seed(url, count: 7, ago: 40 * Self.day)
        let node = try AdminAPITests.Node(env)
        defer { node.process.stop() }
        let remote = try runCommand(binary, ["--server", node.url, "--admin-key", AdminAPITests.adminKey, "usage", "prune", "--before", "30d", "--output", "json"],
                                    environment: ["LLM_PROXY_DATABASE_URL": "sqlite:/nonexistent/never-used.db"])
        #expect(remote.status == 0, "\(remote.output)")
        #expect(try deleted(remote) == 7)
        #expect(try await requests(url) == 30)
        #expect(try await lastAudit(url)?.actor == "admin-api")
    }

    @Test func badPruneRequestsAreRefusedWithoutDeletingAnything() async throws {
        let url = TestServers.tempSQLiteURL()
        try await seed(url, count: 10, ago: 100 * Self.day)
        let env = ["LLM_PROXY_DATABASE_URL": url, "LLM_PROXY_ADMIN_KEY": AdminAPITests.adminKey]
        for args in [["usage", "prune"], ["usage", "prune", "--before", "soon"], ["usage", "prune", "--before", "30d", "--vkey", "vk_ret"],
                     ["usage", "prune", "--before", "30d", "--since", "1y"]] {
            let r = try runCommand(binary, args, environment: env)
            #expect(r.status == 2, "\(args): \(r.output)")
        }
        let future = try runCommand(binary, ["usage", "prune", "--before", "2999-01-01"], environment: env)
        #expect(future.status == 1 && future.output.contains("must not be in the future"), "\(future.output)")

        let node = try AdminAPITests.Node(env)
        defer { node.process.stop() }
        let api = AdminAPITests()
        let noCut = try api.call(node.port, "DELETE", "/admin/usage")
        #expect(noCut.status == 400 && noCut.bodyText.contains("before is required"), "\(noCut.bodyText)")
        #expect(try api.call(node.port, "DELETE", "/admin/usage?before=yesterday").status == 400)
        #expect(try api.call(node.port, "DELETE", "/admin/usage?before=2999-01-01T00:00:00Z").status == 400)
        let put = try api.call(node.port, "PUT", "/admin/usage")
        #expect(put.status == 405 && put.header("allow") == "GET, DELETE")
        #expect(try await requests(url) == 10)
        let ok = try api.call(node.port, "DELETE", "/admin/usage?before=2020-01-01")
        #expect(ok.status == 200 && ok.bodyText.contains(#""deleted":0"#), "\(ok.bodyText)")
        #expect(try await requests(url) == 10)
    }

    @Test func aNodeDeletesRecordsOlderThanItsRetentionOnItsOwn() async throws {
        let url = TestServers.tempSQLiteURL()
        try await seed(url, count: 2500, ago: 2 * Self.day)  // more than one batch of 1000
        try await seed(url, count: 40, ago: 2000)
        // Retention 20 s: rounds every 5 s, the first 2.5 to 5 s after start.
        let node = try AdminAPITests.Node(["LLM_PROXY_DATABASE_URL": url], extra: ["--usage-retention", "20s"])
        defer { node.process.stop() }
        let metrics = ObservabilityTests()
        var pruned: Double?
        let deadline = Date().addingTimeInterval(15)
        while Date() < deadline {
            pruned = metrics.value(try metrics.scrape(node.port), "llmp_usage_pruned_total")
            if pruned == 2500 { break }
            usleep(200_000)
        }
        #expect(pruned == 2500)
        #expect(try await requests(url) == 40)  // the recent ones stay
        #expect(node.process.outputText.contains("usage records pruned"))
        #expect(node.process.outputText.contains(#""retention_s":20"#))
    }

    @Test func retentionZeroKeepsEveryRecordAndNonsenseIsRefused() throws {
        let url = TestServers.tempSQLiteURL()
        let node = try AdminAPITests.Node(["LLM_PROXY_DATABASE_URL": url], extra: ["--usage-retention", "0"])
        defer { node.process.stop() }
        #expect(node.process.outputText.contains("kept forever"))
        #expect(ObservabilityTests().value(try ObservabilityTests().scrape(node.port), "llmp_usage_pruned_total") == nil)
        for bad in ["500ms", "-1d", "forever"] {
            let r = try runCommand(binary, ["serve", "--listen", "127.0.0.1:0", "--usage-retention", bad], environment: ["LLM_PROXY_DATABASE_URL": url])
            #expect(r.status == 2 && r.output.contains("--usage-retention"), "\(bad): \(r.output)")
        }
    }
}
