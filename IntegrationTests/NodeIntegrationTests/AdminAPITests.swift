import Foundation
import Testing
import TestSupport

/// The admin API on a node, and the CLI driving it with `--server`.
@Suite struct AdminAPITests {
    static let adminKey = "test-admin-key-0123456789"

    final class Node {
        let process: ChildProcess
        let port: UInt16
        init(_ env: [String: String], extra: [String] = []) throws {
            process = try ChildProcess(BuiltProducts.path("llm-proxy"), ["serve", "--listen", "127.0.0.1:0"] + extra, environment: env)
            port = try process.waitForListeningPort()
        }
        var url: String { "http://127.0.0.1:\(port)" }
    }

    func call(_ port: UInt16, _ method: String, _ path: String, body: String? = nil, key: String = AdminAPITests.adminKey) throws -> RawHTTPClient.Response {
        let c = try RawHTTPClient(port: port)
        let b = body ?? ""
        try c.send("\(method) \(path) HTTP/1.1\r\nHost: p\r\nAuthorization: Bearer \(key)\r\nContent-Type: application/json\r\nContent-Length: \(b.utf8.count)\r\n\r\n\(b)")
        return try c.readResponse()
    }

    func cli(_ args: [String], _ node: Node) throws -> CommandResult {
        try runCommand(BuiltProducts.path("llm-proxy"), ["--server", node.url, "--admin-key", Self.adminKey] + args, environment: ["LLM_PROXY_DATABASE_URL": "sqlite:/nonexistent/never-used.db"])
    }

    func proxied(_ port: UInt16, key: String) throws -> Int {
        let body = #"{"model":"gpt-4o-mini","messages":[]}"#
        let c = try RawHTTPClient(port: port)
        try c.send("POST /v1/chat/completions HTTP/1.1\r\nHost: p\r\nAuthorization: Bearer \(key)\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)")
        return try c.readResponse().status
    }

    func revocationIsSeenEverywhereWithinASecond(redis: RedisTestServer?) throws {
        let mock = try ChildProcess(BuiltProducts.path("mock-provider"), ["--listen", "127.0.0.1:0"])
        defer { mock.stop() }
        let out = try mock.waitForOutput(containing: "listening on")
        let mockPort = String(out[out.range(of: "127.0.0.1:")!.upperBound...].prefix(while: \.isNumber))
        let env = ["LLM_PROXY_DATABASE_URL": TestServers.tempSQLiteURL(), "LLM_PROXY_MASTER_KEY": "admin-test-master-key-1",
                   "LLM_PROXY_ADMIN_KEY": Self.adminKey]
        let extra = redis.map { ["--redis-url", $0.url] } ?? []
        let a = try Node(env, extra: extra)
        let b = try Node(env, extra: extra)
        defer { a.process.stop(); b.process.stop() }

        let conn = try cli(["connection", "add", "--name", "mock", "--provider", "openai", "--endpoint", "http://127.0.0.1:\(mockPort)/v1",
                            "--api-key", "sk-upstream-secret", "--output", "json"], a)
        #expect(conn.status == 0, "\(conn.output)")
        #expect(!conn.output.contains("sk-upstream-secret"))
        let connID = try #require(try JSONSerialization.jsonObject(with: Data(conn.stdout.utf8)) as? [String: Any])["id"] as! String
        let vk = try cli(["vkey", "add", "--name", "app", "--conn-id", connID, "--output", "json"], a)
        #expect(vk.status == 0, "\(vk.output)")
        let created = try #require(try JSONSerialization.jsonObject(with: Data(vk.stdout.utf8)) as? [String: Any])
        let keyID = created["id"] as! String, key = created["key"] as! String
        TestSecrets.register(key)
        TestSecrets.register("sk-upstream-secret")
        #expect(try proxied(a.port, key: key) == 200)
        #expect(try proxied(b.port, key: key) == 200)  // cached on b now

        let disable = try cli(["vkey", "update", keyID, "--disable"], a)
        #expect(disable.status == 0, "\(disable.output)")
        let t0 = Date()
        var seenA = false, seenB = false
        while Date().timeIntervalSince(t0) < 1.5 && !(seenA && seenB) {
            if !seenA { seenA = try proxied(a.port, key: key) == 401 }
            if !seenB { seenB = try proxied(b.port, key: key) == 401 }
            if !(seenA && seenB) { usleep(20_000) }
        }
        let elapsed = Date().timeIntervalSince(t0)
        #expect(seenA && seenB, "disabled key still accepted after \(elapsed) s (a: \(seenA), b: \(seenB))")
        #expect(elapsed < 1.2, "revocation took \(elapsed) s")
    }

    @Test func revocationReachesAnotherNodeWithoutRedis() throws {
        try revocationIsSeenEverywhereWithinASecond(redis: nil)
    }

    @Test func revocationReachesAnotherNodeThroughRedisAtOnce() throws {
        try revocationIsSeenEverywhereWithinASecond(redis: try RedisTestServer())
    }

    /// The same CLI commands through a node's admin API, on each store the node can use.
    @Test(arguments: AdminCLITests.Backend.allCases)
    func cliInServerModeOnEveryBackend(_ backend: AdminCLITests.Backend) throws {
        let env = ["LLM_PROXY_DATABASE_URL": try backend.url(), "LLM_PROXY_MASTER_KEY": "server-mode-master-key-1", "LLM_PROXY_ADMIN_KEY": Self.adminKey]
        let node = try Node(env)
        defer { node.process.stop() }
        let conn = try cli(["connection", "add", "--name", "c-\(backend.rawValue)", "--provider", "anthropic", "--api-key", "sk-ant-secret", "--output", "json"], node)
        #expect(conn.status == 0, "\(conn.output)")
        let connID = try #require(try JSONSerialization.jsonObject(with: Data(conn.stdout.utf8)) as? [String: Any])["id"] as! String
        let vk = try cli(["vkey", "add", "--name", "k", "--conn-id", connID, "--tps", "2", "--models", "claude-3-5-haiku-latest", "--output", "json"], node)
        #expect(vk.status == 0, "\(vk.output)")
        let keyID = try #require(try JSONSerialization.jsonObject(with: Data(vk.stdout.utf8)) as? [String: Any])["id"] as! String
        let shown = try cli(["vkey", "show", keyID, "--output", "json"], node)
        #expect(shown.output.contains("\"tps\" : 2"))
        #expect(try cli(["vkey", "update", keyID, "--tokens", "5000"], node).status == 0)
        #expect(try cli(["connection", "rm", connID], node).status == 1)  // in use
        #expect(try cli(["connection", "rm", connID, "--force"], node).status == 0)
        #expect(try cli(["vkey", "show", keyID], node).status == 1)
        #expect(try cli(["usage", "--since", "1h"], node).status == 0)
        let wrongKey = try runCommand(BuiltProducts.path("llm-proxy"), ["--server", node.url, "--admin-key", "nope", "connection", "list"])
        #expect(wrongKey.status == 1)
        #expect(wrongKey.output.contains("refused the admin key"))
    }

    @Test func badRequestsGetClearErrorsAndNoSecrets() throws {
        let env = ["LLM_PROXY_DATABASE_URL": TestServers.tempSQLiteURL(), "LLM_PROXY_ADMIN_KEY": Self.adminKey]
        let node = try Node(env)
        defer { node.process.stop() }
        #expect(try call(node.port, "GET", "/admin/connections", key: "wrong").status == 401)
        #expect(try call(node.port, "POST", "/admin/connections", body: "{not json").status == 400)
        #expect(try call(node.port, "POST", "/admin/connections", body: #"{"name":"x"}"#).status == 400)
        let badProvider = try call(node.port, "POST", "/admin/connections", body: #"{"name":"x","provider":"bogus","api_key":"k"}"#)
        #expect(badProvider.status == 400)
        #expect(badProvider.bodyText.contains("unknown provider"))
        let ok = try call(node.port, "POST", "/admin/connections", body: #"{"name":"x","provider":"openai","api_key":"sk-very-secret-123"}"#)
        #expect(ok.status == 201)
        #expect(!ok.bodyText.contains("sk-very-secret-123"))
        #expect(try call(node.port, "POST", "/admin/connections", body: #"{"name":"x","provider":"openai","api_key":"k"}"#).status == 409)
        #expect(try call(node.port, "GET", "/admin/connections/conn_nope").status == 404)
        #expect(try call(node.port, "PATCH", "/admin/vkeys/vk_nope", body: #"{"tps":-1}"#).status == 400)
        #expect(try call(node.port, "PATCH", "/admin/vkeys/vk_nope", body: #"{"tps":1}"#).status == 404)
        #expect(try call(node.port, "PUT", "/admin/vkeys").status == 405)
        let big = String(repeating: "a", count: 70_000)
        #expect(try call(node.port, "POST", "/admin/vkeys", body: "{\"name\":\"\(big)\"}").status == 413)
        #expect(try call(node.port, "GET", "/admin/usage?since=yesterday").status == 400)
        #expect(!node.process.outputText.contains("sk-very-secret-123"))
        #expect(!node.process.outputText.contains(Self.adminKey))
    }

    @Test func withoutAnAdminKeyThereIsNoAdminAPI() throws {
        let node = try Node(["LLM_PROXY_DATABASE_URL": TestServers.tempSQLiteURL(), "LLM_PROXY_ADMIN_KEY": ""])
        defer { node.process.stop() }
        #expect(try call(node.port, "GET", "/admin/connections").status == 404)
    }

    @Test func servedOpenAPIDocumentIsTheOneInDocs() throws {
        let node = try Node(["LLM_PROXY_DATABASE_URL": TestServers.tempSQLiteURL(), "LLM_PROXY_ADMIN_KEY": Self.adminKey])
        defer { node.process.stop() }
        let served = try call(node.port, "GET", "/admin/openapi.json")
        #expect(served.status == 200)
        let file = try String(contentsOfFile: TestServers.packageRoot + "/docs/admin-openapi.json", encoding: .utf8)
        #expect(served.bodyText.trimmingCharacters(in: .whitespacesAndNewlines) == file.trimmingCharacters(in: .whitespacesAndNewlines))
        let doc = try #require(try JSONSerialization.jsonObject(with: Data(served.body)) as? [String: Any])
        let paths = try #require(doc["paths"] as? [String: Any])
        #expect(Set(paths.keys) == ["/admin/connections", "/admin/connections/{id}", "/admin/vkeys", "/admin/vkeys/{id}", "/admin/usage", "/admin/usage/records"])
    }
}

/// schemathesis (PyPI) generates requests from the served OpenAPI document, with the admin key:
/// no response may be a 5xx, and every response must match the document.
@Suite struct AdminAPISchemaTests {
    @Test func schemathesisFindsNoServerErrorAndNoNonconformingResponse() throws {
        let key = "schema-admin-key-0123456789"
        let node = try ChildProcess(BuiltProducts.path("llm-proxy"), ["serve", "--listen", "127.0.0.1:0"],
                                    environment: ["LLM_PROXY_DATABASE_URL": TestServers.tempSQLiteURL(), "LLM_PROXY_ADMIN_KEY": key])
        defer { node.stop() }
        let port = try node.waitForListeningPort()
        let venv = ProcessInfo.processInfo.environment["LLM_PROXY_TEST_VENV"] ?? TestServers.packageRoot + "/.venv"
        let r = try runCommand(venv + "/bin/st", ["run", "http://127.0.0.1:\(port)/admin/openapi.json", "-H", "Authorization: Bearer \(key)",
                                                  "--checks", "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,response_headers_conformance",
                                                  "--max-examples", "40", "--seed", "1"], timeout: 240)
        #expect(r.status == 0, "schemathesis failed:\n\(r.output.suffix(4000))")
        #expect(node.process.isRunning, "the node died under schemathesis")
    }
}
