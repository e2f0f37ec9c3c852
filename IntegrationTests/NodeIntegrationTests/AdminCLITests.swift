import Foundation
import Testing
import TestSupport

/// The admin CLI against the store, as the seed's README uses it.
@Suite struct AdminCLITests {
    let binary = BuiltProducts.path("llm-proxy")

    func cli(_ args: [String], _ env: [String: String]) throws -> CommandResult {
        try runCommand(binary, args, environment: env)
    }

    func json(_ text: String) throws -> Any {
        try JSONSerialization.jsonObject(with: Data(text.utf8))
    }

    enum Backend: String, CaseIterable, Sendable {
        case sqlite, postgres, mongodb
        func url() throws -> String {
            switch self {
            case .sqlite: TestServers.tempSQLiteURL()
            case .postgres: try PostgresTestServer.shared().makeDatabase()
            case .mongodb: try MongoTestServer.shared().makeDatabase()
            }
        }
    }

    @Test(arguments: Backend.allCases)
    func connectionAndKeyLifecycle(on backend: Backend) throws {
        let env = ["LLM_PROXY_DATABASE_URL": try backend.url(), "LLM_PROXY_MASTER_KEY": "cli-test-master-key-123456"]
        let add = try cli(["connection", "add", "--name", "OpenAI-Prod", "--provider", "openai", "--api-key", "sk-provider-secret-1", "--output", "json"], env)
        #expect(add.status == 0, "\(add.output)")
        #expect(!add.output.contains("sk-provider-secret-1"))
        let conn = try #require(try json(add.stdout) as? [String: Any])
        let connID = try #require(conn["id"] as? String)

        let dup = try cli(["connection", "add", "--name", "OpenAI-Prod", "--provider", "openai", "--api-key", "x"], env)
        #expect(dup.status == 1)
        #expect(dup.output.contains("already exists"))

        // Global flags before the subcommand work too.
        let key = try cli(["--output", "json", "vkey", "add", "--name", "Intern-Key", "--conn-id", connID, "--tps", "2", "--tokens", "1000"], env)
        #expect(key.status == 0, "\(key.output)")
        let created = try #require(try json(key.stdout) as? [String: Any])
        let keyID = try #require(created["id"] as? String)
        let secret = try #require(created["key"] as? String)
        #expect(secret.hasPrefix("sk-llmp-"))

        let list = try cli(["vkey", "list", "--output", "json"], env)
        #expect(!list.output.contains(secret))
        #expect(list.output.contains(keyID))

        let update = try cli(["vkey", "update", keyID, "--disable", "--tps", "0.5"], env)
        #expect(update.status == 0, "\(update.output)")
        let shown = try #require(try json(try cli(["vkey", "show", keyID, "--output", "json"], env).stdout) as? [String: Any])
        #expect(shown["disabled"] as? Bool == true)
        #expect(shown["tps"] as? Double == 0.5)

        let inUse = try cli(["connection", "rm", connID], env)
        #expect(inUse.status == 1)
        #expect(inUse.output.contains("--force"))
        #expect(try cli(["vkey", "rm", keyID], env).status == 0)
        #expect(try cli(["connection", "rm", connID], env).status == 0)
        #expect(try cli(["connection", "show", connID], env).status == 1)
    }

    @Test func badInputIsAUsageErrorWithExitCode2() throws {
        let env = ["LLM_PROXY_DATABASE_URL": TestServers.tempSQLiteURL()]
        #expect(try cli(["vkey", "add", "--name", "x", "--conn-id", "c", "--tps", "-1"], env).status == 2)
        #expect(try cli(["vkey", "add", "--name", "x", "--conn-id", "c", "--tps", "abc"], env).status == 2)
        #expect(try cli(["connection", "add", "--name", "x", "--provider", "openai"], env).status == 2)
        #expect(try cli(["connection", "frob"], env).status == 2)
        #expect(try cli(["connection", "list", "--output", "yaml"], env).status == 2)
        let badURL = try cli(["connection", "add", "--name", "x", "--provider", "openai", "--endpoint", "ftp://x", "--api-key", "k"], env)
        #expect(badURL.status == 1)
        #expect(badURL.output.contains("http:// or https://"))
    }
}
