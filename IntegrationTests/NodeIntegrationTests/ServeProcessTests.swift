import Foundation
import Glibc
import Testing
import TestSupport

/// The real `llm-proxy` binary, as a user runs it.
@Suite struct ServeProcessTests {
    let binary = BuiltProducts.path("llm-proxy")
    let env = ["LLM_PROXY_DATABASE_URL": TestServers.tempSQLiteURL()]

    @Test func serveAnswersHealthAndDrainsOnSIGTERM() throws {
        let node = try ChildProcess(binary, ["serve", "--listen", "127.0.0.1:0", "--shutdown-grace", "2s"], environment: env)
        let port = try node.waitForListeningPort()
        let c = try RawHTTPClient(port: port)
        try c.send("GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
        let r = try c.readResponse()
        #expect(r.status == 200)
        #expect(r.bodyText == #"{"status":"ok"}"#)
        try c.send("GET /readyz HTTP/1.1\r\nHost: t\r\n\r\n")
        let ready = try c.readResponse()
        #expect(ready.status == 200)
        #expect(ready.bodyText == #"{"status":"ready"}"#)  // no detail without the admin key
        #expect(try runCommand(binary, ["healthcheck", "--url", "http://127.0.0.1:\(port)/healthz"]).status == 0)
        let status = node.stop()
        #expect(status == 0)
        let down = try runCommand(binary, ["healthcheck", "--url", "http://127.0.0.1:\(port)/healthz"])
        #expect(down.status == 1)
        #expect(down.output.contains("unhealthy"))
        #expect(node.outputText.contains("\"msg\":\"draining\""))
        #expect(node.outputText.contains("\"msg\":\"stopped\""))
    }

    @Test func listenAddressComesFromTheEnvironment() throws {
        let node = try ChildProcess(binary, ["serve"], environment: env.merging(["LLM_PROXY_LISTEN": "127.0.0.1:0"]) { $1 })
        let port = try node.waitForListeningPort()
        #expect(node.outputText.contains("\"address\":\"127.0.0.1:0\""))
        #expect(port > 0)
        #expect(node.stop() == 0)
    }

    @Test func busyPortIsAClearErrorWithExitCode1() throws {
        let first = try ChildProcess(binary, ["serve", "--listen", "127.0.0.1:0"], environment: env)
        let port = try first.waitForListeningPort()
        // SO_REUSEPORT would let a second node of the same user share the port; a different address family
        // path is not needed: binding a port held by a plain socket fails.
        let holder = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(holder) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = 0
        inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr)
        _ = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(holder, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        listen(holder, 1)
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(holder, $0, &len) } }
        let heldPort = UInt16(bigEndian: addr.sin_port)
        let held = try runCommand(binary, ["serve", "--listen", "127.0.0.1:\(heldPort)"], environment: env, timeout: 10)
        #expect(held.status == 1)
        #expect(held.output.contains("cannot listen"))
        #expect(held.output.contains("Address already in use"))
        first.stop()
        _ = port
    }

    @Test func helpVersionAndUsageErrors() throws {
        let help = try runCommand(binary, ["--help"])
        #expect(help.status == 0)
        #expect(help.output.contains("serve"))
        let serveHelp = try runCommand(binary, ["serve", "--help"])
        #expect(serveHelp.status == 0)
        #expect(serveHelp.output.contains("--listen <host:port>"))
        #expect(serveHelp.output.contains("LLM_PROXY_LISTEN"))
        #expect(serveHelp.output.contains("0.0.0.0:8132"))
        let version = try runCommand(binary, ["--version"])
        #expect(version.status == 0)
        #expect(version.output.hasPrefix("llm-proxy "))
        let bad = try runCommand(binary, ["serve", "--bogus"], environment: env)
        #expect(bad.status == 2)
        #expect(bad.output.contains("unknown option --bogus"))
        let badListen = try runCommand(binary, ["serve", "--listen", "nonsense"], environment: env)
        #expect(badListen.status == 2)
        #expect(badListen.output.contains("--listen expects HOST:PORT"))
        let badCommand = try runCommand(binary, ["frobnicate"])
        #expect(badCommand.status == 2)
    }

    @Test func mongoDBDriverMessagesArriveAsJSONLogLines() throws {
        // Nothing listens on this port: libmongoc's server monitor retries and says so (debug level),
        // then the node gives up on the store.
        let url = "mongodb://127.0.0.1:\(TestServers.freePort())/llmp?serverSelectionTimeoutMS=1500"
        let key = Array(repeating: "k", count: 43).joined() + "="
        let r = try runCommand(binary, ["serve", "--listen", "127.0.0.1:0", "--log-level", "debug"],
                               environment: ["LLM_PROXY_DATABASE_URL": url, "LLM_PROXY_MASTER_KEY": key], timeout: 20)
        #expect(r.status == 1)
        let lines = r.output.split(separator: "\n")
        for line in lines {
            #expect((try? JSONSerialization.jsonObject(with: Data(line.utf8))) is [String: Any], "not a JSON log line: \(line)")
        }
        #expect(lines.contains { $0.contains("\"msg\":\"mongodb driver\"") && $0.contains("\"domain\":\"monitor\"") }, "\(r.output)")
        #expect(lines.contains { $0.contains("cannot open the store") })
    }

    @Test func aKilledProcessLeavesNoDriverCounterSegmentBehind() throws {
        // libmongoc maps its counters from /dev/shm/mongoc-PID and removes the name only on a clean exit;
        // every process that was killed used to leave one, and the next process given the same id printed
        // a plain-text warning before its first log line.
        let node = try ChildProcess(binary, ["serve", "--listen", "127.0.0.1:0"], environment: env)
        _ = try node.waitForListeningPort()
        let segment = "/dev/shm/mongoc-\(node.process.processIdentifier)"
        node.signal(SIGKILL)
        node.waitForExit()
        #expect(!FileManager.default.fileExists(atPath: segment))
    }
}
