import Foundation

/// A mock provider, a store, one connection and virtual key, and an `llm-proxy serve` in front: the
/// product as a user meets it.
public final class ProxyStack: @unchecked Sendable {
    public let mock: ChildProcess
    public let mockPort: UInt16
    public let node: ChildProcess
    public let port: UInt16
    public let databaseURL: String
    public let connectionID: String
    public let keyID: String
    public let key: String
    public let providerKey = "sk-real-upstream-provider-key"
    let proxyBinary = BuiltProducts.path("llm-proxy")

    public init(provider: String = "openai", endpointPath: String = "/v1", connectionArgs: [String] = [], keyArgs: [String] = [],
                serveArgs: [String] = []) throws {
        mock = try ChildProcess(BuiltProducts.path("mock-provider"), ["--listen", "127.0.0.1:0"])
        let out = try mock.waitForOutput(containing: "listening on")
        guard let r = out.range(of: "listening on 127.0.0.1:"), let p = UInt16(out[r.upperBound...].prefix(while: \.isNumber)) else {
            throw ChildError(description: "mock-provider did not say its port: \(out)")
        }
        mockPort = p
        databaseURL = TestServers.tempSQLiteURL()
        let env = ["LLM_PROXY_DATABASE_URL": databaseURL]
        let conn = try runCommand(proxyBinary, ["connection", "add", "--name", "Mock", "--provider", provider,
                                                "--endpoint", "http://127.0.0.1:\(mockPort)\(endpointPath)", "--api-key", providerKey, "--output", "json"]
                                                + connectionArgs,
                                  environment: env)
        guard conn.status == 0, let c = (try? JSONSerialization.jsonObject(with: Data(conn.stdout.utf8))) as? [String: Any],
              let cid = c["id"] as? String else { throw ChildError(description: "connection add failed (exit \(conn.status)): \(conn.output.debugDescription)") }
        connectionID = cid
        let vk = try runCommand(proxyBinary, ["vkey", "add", "--name", "test-key", "--conn-id", cid, "--output", "json"] + keyArgs, environment: env)
        guard vk.status == 0, let k = (try? JSONSerialization.jsonObject(with: Data(vk.stdout.utf8))) as? [String: Any],
              let kid = k["id"] as? String, let secret = k["key"] as? String else {
            throw ChildError(description: "vkey add failed (exit \(vk.status)): \(vk.output.replacingOccurrences(of: #""key" : "sk-llmp-[^"]*""#, with: #""key" : "…""#, options: .regularExpression).debugDescription)")
        }
        keyID = kid
        key = secret
        TestSecrets.register(secret)
        TestSecrets.register(providerKey)
        node = try ChildProcess(proxyBinary, ["serve", "--listen", "127.0.0.1:0", "--shutdown-grace", "5s"] + serveArgs, environment: env)
        port = try node.waitForListeningPort()
    }

    public var baseURL: String { "http://127.0.0.1:\(port)" }

    /// Runs one case of `IntegrationTests/sdk/sdk_client.py` with the official SDKs; returns its JSON.
    public func sdk(_ testCase: String, key: String? = nil, environment: [String: String] = [:]) throws -> [String: Any] {
        let venv = ProcessInfo.processInfo.environment["LLM_PROXY_TEST_VENV"] ?? TestServers.packageRoot + "/.venv"
        var env = ["BASE_URL": baseURL, "KEY": key ?? self.key]
        for (k, v) in environment { env[k] = v }
        let r = try runCommand(venv + "/bin/python", [TestServers.packageRoot + "/IntegrationTests/sdk/sdk_client.py", testCase], environment: env, timeout: 60)
        guard let line = r.stdout.split(separator: "\n").last(where: { $0.hasPrefix("{") }),
              let json = (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any] else {
            throw ChildError(description: "sdk_client.py \(testCase) printed no JSON (exit \(r.status)):\n\(r.output)")
        }
        return json
    }

    /// The headers and body the mock provider saw last.
    public func lastUpstreamRequest() throws -> [String: String] {
        let c = try RawHTTPClient(port: mockPort)
        try c.send("GET /mock/last-request HTTP/1.1\r\nHost: m\r\n\r\n")
        return try Self.parse(c.readResponse().body, what: "the mock's last request")
    }

    /// Sends a streamed chat request straight to the node, with `headers` (`name: value`) added, and returns
    /// the client to read the answer's bytes from (what an SDK would hide: a cut stream, a field's case).
    public func sendStreamedChat(headers: [String]) throws -> RawHTTPClient {
        let c = try RawHTTPClient(port: port)
        let body = #"{"model":"gpt-4o-mini","stream":true,"messages":[]}"#
        let extra = headers.map { $0 + "\r\n" }.joined()
        try c.send("POST /v1/chat/completions HTTP/1.1\r\nHost: p\r\nAuthorization: Bearer \(key)\r\n\(extra)Content-Type: application/json\r\n"
                   + "Content-Length: \(body.utf8.count)\r\n\r\n\(body)")
        return c
    }

    public func mockStats() throws -> [String: Int] {
        let c = try RawHTTPClient(port: mockPort)
        try c.send("GET /mock/stats HTTP/1.1\r\nHost: m\r\n\r\n")
        return try Self.parse(c.readResponse().body, what: "the mock's stats")
    }

    /// `llm-proxy usage --output json` on this stack's store.
    public func usage() throws -> [[String: Any]] {
        let r = try runCommand(proxyBinary, ["usage", "--output", "json"], environment: ["LLM_PROXY_DATABASE_URL": databaseURL])
        guard r.status == 0 else { throw ChildError(description: "llm-proxy usage failed (exit \(r.status)): \(r.output)") }
        return try Self.parse(Array(r.stdout.utf8), what: "llm-proxy usage")
    }

    /// Parses JSON of the expected shape, or says what the text was.
    static func parse<T>(_ bytes: [UInt8], what: String) throws -> T {
        guard let value = (try? JSONSerialization.jsonObject(with: Data(bytes))) as? T else {
            throw ChildError(description: "\(what) is not JSON of type \(T.self): \(String(decoding: bytes, as: UTF8.self).debugDescription)")
        }
        return value
    }

    public func stop() {
        node.stop()
        mock.stop()
    }

    deinit { stop() }
}

/// The node's two clients for plain `http://` providers, for tests that must hold over both.
public enum PlainHTTPClients {
    public static let all = ["native", "curl"]
    public static func args(_ client: String) -> [String] { ["--plain-http-client", client] }
}
