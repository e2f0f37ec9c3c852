import Foundation
import Testing
import TestSupport

/// A node on a shared store (PostgreSQL, or the MongoDB-compatible server) while the database restarts:
/// cached keys keep serving, usage accepted during the outage is written afterwards, readiness stays up
/// while keys are cached.
@Suite struct StoreOutageTests {
    enum Database: String, CaseIterable, Sendable { case postgres, mongodb }

    @Test(arguments: Database.allCases)
    func cachedKeysServeThroughADatabaseRestartAndUsageCatchesUp(_ database: Database) throws {
        let url: String
        let stopDatabase: () throws -> Void
        let startDatabase: () throws -> Void
        switch database {
        case .postgres:
            let pg = try PostgresTestServer.dedicated()
            url = try pg.makeDatabase()
            stopDatabase = pg.stop
            startDatabase = pg.start
        case .mongodb:
            let mongo = try MongoTestServer.dedicated()
            url = mongo.makeDatabase()
            stopDatabase = { mongo.stop() }
            startDatabase = mongo.start
        }
        let mock = try ChildProcess(BuiltProducts.path("mock-provider"), ["--listen", "127.0.0.1:0"])
        let out = try mock.waitForOutput(containing: "listening on")
        let mockPort = String(out[out.range(of: "127.0.0.1:")!.upperBound...].prefix(while: \.isNumber))
        let env = ["LLM_PROXY_DATABASE_URL": url, "LLM_PROXY_MASTER_KEY": "outage-test-master-key-1", "LLM_PROXY_ADMIN_KEY": "outage-admin-key-12345"]
        let proxy = BuiltProducts.path("llm-proxy")
        let conn = try runCommand(proxy, ["connection", "add", "--name", "mock", "--provider", "openai", "--endpoint",
                                          "http://127.0.0.1:\(mockPort)/v1", "--api-key", "sk-up", "--output", "json"], environment: env)
        let connID = try #require(try JSONSerialization.jsonObject(with: Data(conn.stdout.utf8)) as? [String: Any])["id"] as! String
        let vk = try runCommand(proxy, ["vkey", "add", "--name", "k", "--conn-id", connID, "--output", "json"], environment: env)
        let key = try #require(try JSONSerialization.jsonObject(with: Data(vk.stdout.utf8)) as? [String: Any])["key"] as! String
        TestSecrets.register(key)
        let node = try ChildProcess(proxy, ["serve", "--listen", "127.0.0.1:0"], environment: env)
        defer { node.stop(); mock.stop() }
        let port = try node.waitForListeningPort()
        func request() throws -> Int {
            let body = #"{"model":"gpt-4o-mini","messages":[]}"#
            let c = try RawHTTPClient(port: port)
            try c.send("POST /v1/chat/completions HTTP/1.1\r\nHost: p\r\nAuthorization: Bearer \(key)\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)")
            return try c.readResponse().status
        }
        #expect(try request() == 200)  // caches the key

        try stopDatabase()
        for _ in 0..<10 { #expect(try request() == 200) }
        let c = try RawHTTPClient(port: port)
        try c.send("GET /readyz HTTP/1.1\r\nHost: p\r\nAuthorization: Bearer outage-admin-key-12345\r\n\r\n")
        let ready = try c.readResponse()
        #expect(ready.status == 200)
        #expect(ready.bodyText.contains("\"cached_keys\":1"))

        try startDatabase()
        var written = 0
        for _ in 0..<100 where written < 11 {
            usleep(200_000)
            let r = try runCommand(proxy, ["usage", "--output", "json"], environment: env)
            if let rows = try? JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [[String: Any]] {
                written = rows.reduce(0) { $0 + ($1["requests"] as? Int ?? 0) }
            }
        }
        #expect(written == 11, "usage rows after the outage: \(written)")
    }
}
