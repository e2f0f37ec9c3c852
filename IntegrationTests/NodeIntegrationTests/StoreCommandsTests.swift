import Foundation
import Testing
import TestSupport

/// `serve`, `migrate` and `rotate-master-key` with the store, as an operator runs them.
@Suite struct StoreCommandsTests {
    let binary = BuiltProducts.path("llm-proxy")

    @Test func embeddedDefaultGeneratesAPrivateMasterKeyFileOnce() throws {
        let url = TestServers.tempSQLiteURL()
        let first = try runCommand(binary, ["migrate", "--database-url", url])
        #expect(first.status == 0, "\(first.output)")
        #expect(first.output.contains("new key file"))
        let keyFile = String(url.dropFirst("sqlite:".count)) + ".master-key"
        let attributes = try FileManager.default.attributesOfItem(atPath: keyFile)
        #expect((attributes[.posixPermissions] as? NSNumber)?.intValue == 0o600)
        let second = try runCommand(binary, ["migrate"], environment: ["LLM_PROXY_DATABASE_URL": url])
        #expect(second.status == 0)
        #expect(second.output.contains("key file \(keyFile)"))
        #expect(!second.output.contains("new key file"))
    }

    @Test func wrongMasterKeyIsAClearErrorNotGarbage() throws {
        let url = TestServers.tempSQLiteURL()
        let env = ["LLM_PROXY_DATABASE_URL": url]
        #expect(try runCommand(binary, ["migrate"], environment: env.merging(["LLM_PROXY_MASTER_KEY": "the-right-master-key-123"]) { $1 }).status == 0)
        let wrong = try runCommand(binary, ["migrate"], environment: env.merging(["LLM_PROXY_MASTER_KEY": "a-wrong-master-key-456"]) { $1 })
        #expect(wrong.status == 1)
        #expect(wrong.output.contains("master key does not match"))
        let node = try ChildProcess(binary, ["serve", "--listen", "127.0.0.1:0"], environment: env.merging(["LLM_PROXY_MASTER_KEY": "a-wrong-master-key-456"]) { $1 })
        #expect(node.waitForExit(timeout: 10) == 1)
        #expect(node.outputText.contains("cannot open the store"))
        #expect(!node.outputText.contains("a-wrong-master-key-456"))
    }

    @Test func sharedStoreRequiresTheMasterKeyFromTheEnvironment() throws {
        let r = try runCommand(binary, ["migrate", "--database-url", "postgres://u:secretpw@127.0.0.1:1/x"], environment: ["LLM_PROXY_MASTER_KEY": ""])
        #expect(r.status == 1)
        #expect(r.output.contains("LLM_PROXY_MASTER_KEY must be set"))
        #expect(!r.output.contains("secretpw"))
    }

    @Test func rotateMasterKeyReplacesTheKeyFile() throws {
        let url = TestServers.tempSQLiteURL()
        #expect(try runCommand(binary, ["migrate", "--database-url", url]).status == 0)
        let keyFile = String(url.dropFirst("sqlite:".count)) + ".master-key"
        let before = try String(contentsOfFile: keyFile, encoding: .utf8)
        let rotated = try runCommand(binary, ["rotate-master-key", "--database-url", url], environment: ["LLM_PROXY_NEW_MASTER_KEY": "a-brand-new-master-key-789"])
        #expect(rotated.status == 0, "\(rotated.output)")
        #expect(try String(contentsOfFile: keyFile, encoding: .utf8) == "a-brand-new-master-key-789\n")
        #expect(before != "a-brand-new-master-key-789\n")
        // The store now opens with the new key only.
        #expect(try runCommand(binary, ["migrate", "--database-url", url]).status == 0)
        let old = try runCommand(binary, ["migrate", "--database-url", url], environment: ["LLM_PROXY_MASTER_KEY": before.trimmingCharacters(in: .whitespacesAndNewlines)])
        #expect(old.status == 1)
    }
}
