import Foundation
import Storage
import Testing
import TestSupport

/// Usage records as an operator handles them: exported (`usage export`, `GET /admin/usage/records`) and
/// kept from piling up for ever (`usage prune`, `DELETE /admin/usage`, each node's `--usage-retention`),
/// on the store or through a node, on every backend.
@Suite struct UsageRecordsTests {
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

    /// `count` records of key `vkey` that started `ago` milliseconds ago (one millisecond apart).
    @discardableResult
    func seed(_ url: String, count: Int, ago: Int64, vkey: String = "vk_ret", model: String = "gpt-4o-mini") async throws -> [UsageRecord] {
        let start = nowMillis() - ago
        let records = (0..<count).map { i in
            let t = start + Int64(i)
            return UsageRecord(id: Identifiers.makeTimeOrdered("u", millis: t), virtualKeyID: vkey, connectionID: "conn_ret", model: model,
                               promptTokens: 3, completionTokens: 4, statusCode: 200, latencyMillis: 5, stream: false,
                               startedAt: t, endedAt: t + 5, nodeID: "seed")
        }
        try await withStore(url) { try await $0.insertUsage(records, lane: .urgent) }
        return records
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
    func exportWritesEveryRecordOnceOldestFirstOnTheStoreAndThroughANode(_ backend: AdminCLITests.Backend) async throws {
        let url = try backend.url()
        let env = ["LLM_PROXY_DATABASE_URL": url, "LLM_PROXY_MASTER_KEY": "export-master-key-12345", "LLM_PROXY_ADMIN_KEY": AdminAPITests.adminKey]
        // More than two pages of 5000; one record whose model needs CSV quoting.
        var seeded = try await seed(url, count: 11_000, ago: 3 * Self.day, vkey: "vk_a")
        seeded += try await seed(url, count: 1, ago: Self.day, vkey: "vk_b", model: #"odd,"model""#)
        seeded += try await seed(url, count: 20, ago: 3_600_000, vkey: "vk_b")

        let jsonl = try runCommand(binary, ["usage", "export"], environment: env, timeout: 120)
        #expect(jsonl.status == 0, "\(jsonl.output.suffix(2000))")
        let rows = jsonl.stdout.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        #expect(rows.count == seeded.count)
        #expect(rows.compactMap { $0["id"] as? String } == seeded.map(\.id))  // oldest first, each once
        let first = try #require(rows.first)
        #expect(first["vkey_id"] as? String == "vk_a" && first["total_tokens"] as? Int == 7 && first["status"] as? Int == 200)
        #expect((first["started_at"] as? String).map { $0.hasSuffix("Z") && $0.contains(".") } == true)

        let filtered = try runCommand(binary, ["usage", "export", "--vkey", "vk_b", "--since", "2d"], environment: env, timeout: 120)
        #expect(filtered.stdout.split(separator: "\n").count == 21, "\(filtered.output.suffix(500))")

        let node = try AdminAPITests.Node(env)
        defer { node.process.stop() }
        let csv = try runCommand(binary, ["--server", node.url, "--admin-key", AdminAPITests.adminKey, "usage", "export", "--format", "csv"],
                                 environment: ["LLM_PROXY_DATABASE_URL": "sqlite:/nonexistent/never-used.db"], timeout: 120)
        #expect(csv.status == 0, "\(csv.output.suffix(2000))")
        let lines = csv.stdout.components(separatedBy: "\r\n").filter { !$0.isEmpty }
        #expect(lines.first == "id,vkey_id,connection_id,model,prompt_tokens,completion_tokens,total_tokens,estimated,status,latency_ms,stream,started_at,ended_at,node_id")
        #expect(lines.count == seeded.count + 1)
        #expect(lines.dropFirst().map { String($0.prefix { $0 != "," }) } == seeded.map(\.id))
        #expect(lines.contains { $0.contains(#","odd,""model""","#) })

        // The API's pages: `next` until the last one. (A cursor is digits, a dot and an id: nothing to escape.)
        let api = AdminAPITests()
        let page = try api.call(node.port, "GET", "/admin/usage/records?vkey=vk_b&limit=15")
        #expect(page.status == 200)
        let body = try #require(try JSONSerialization.jsonObject(with: Data(page.body)) as? [String: Any])
        #expect((body["records"] as? [Any])?.count == 15)
        let next = try #require(body["next"] as? String)
        let rest = try api.call(node.port, "GET", "/admin/usage/records?vkey=vk_b&limit=15&after=\(next)")
        let restBody = try #require(try JSONSerialization.jsonObject(with: Data(rest.body)) as? [String: Any])
        #expect((restBody["records"] as? [Any])?.count == 6 && restBody["next"] == nil)
        #expect(try api.call(node.port, "GET", "/admin/usage/records?limit=0").status == 400)
        #expect(try api.call(node.port, "GET", "/admin/usage/records?after=nonsense").status == 400)
        #expect(try runCommand(binary, ["usage", "export", "--format", "xml"], environment: env).status == 2)
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
        // The round's log line follows its last batch (and the log is written by its own thread).
        while Date() < deadline, !node.process.outputText.contains("usage records pruned") { usleep(100_000) }
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
