import Foundation
import Glibc
import Testing
import TestSupport

/// The cluster topology on loopback: three `llm-proxy serve` nodes behind nginx (Debian's) as the load
/// balancer, one shared store (PostgreSQL or the MongoDB-compatible server), optionally one Redis, the
/// mock provider.
final class LoopbackCluster: @unchecked Sendable {
    enum Database: String, CaseIterable, Sendable { case postgres, mongodb }

    static let adminKey = "failover-admin-key-12345"
    let mock: ChildProcess
    var nodes: [ChildProcess] = []
    var ports: [UInt16] = []
    let lb: ChildProcess
    let lbPort: UInt16
    let connID: String
    let key: String
    let env: [String: String]
    let redis: RedisTestServer?
    /// Stops and starts the cluster's database server (only with `ownDatabaseServer`).
    private(set) var stopDatabase: () throws -> Void = {}
    private(set) var startDatabase: () throws -> Void = {}

    /// `ownDatabaseServer` starts a server for this cluster alone, so a test may restart it.
    init(database: Database = .postgres, withRedis: Bool = true, ownDatabaseServer: Bool = false) throws {
        redis = withRedis ? try RedisTestServer() : nil
        mock = try ChildProcess(BuiltProducts.path("mock-provider"), ["--listen", "127.0.0.1:0"])
        let out = try mock.waitForOutput(containing: "listening on")
        let mockPort = String(out[out.range(of: "127.0.0.1:")!.upperBound...].prefix(while: \.isNumber))
        let url: String
        switch database {
        case .postgres:
            let pg = ownDatabaseServer ? try PostgresTestServer.dedicated() : try PostgresTestServer.shared()
            url = try pg.makeDatabase()
            if ownDatabaseServer { (stopDatabase, startDatabase) = (pg.stop, pg.start) }
        case .mongodb:
            let mongo = ownDatabaseServer ? try MongoTestServer.dedicated() : try MongoTestServer.shared()
            url = mongo.makeDatabase()
            if ownDatabaseServer { (stopDatabase, startDatabase) = ({ mongo.stop() }, mongo.start) }
        }
        env = ["LLM_PROXY_DATABASE_URL": url, "LLM_PROXY_MASTER_KEY": "failover-master-key-12345", "LLM_PROXY_ADMIN_KEY": Self.adminKey]
        let proxy = BuiltProducts.path("llm-proxy")
        let conn = try runCommand(proxy, ["connection", "add", "--name", "mock", "--provider", "openai", "--endpoint",
                                          "http://127.0.0.1:\(mockPort)/v1", "--api-key", "sk-up", "--output", "json"], environment: env)
        connID = try #require(try JSONSerialization.jsonObject(with: Data(conn.stdout.utf8)) as? [String: Any])["id"] as! String
        let vk = try runCommand(proxy, ["vkey", "add", "--name", "k", "--conn-id", connID, "--output", "json"], environment: env)
        key = try #require(try JSONSerialization.jsonObject(with: Data(vk.stdout.utf8)) as? [String: Any])["key"] as! String
        TestSecrets.register(key)
        for i in 0..<3 {
            let redisArgs = redis.map { ["--redis-url", $0.url] } ?? []
            let n = try ChildProcess(proxy, ["serve", "--listen", "127.0.0.1:0", "--node-id", "node-\(i)", "--shutdown-grace", "10s",
                                             "--drain-delay", "1s"] + redisArgs, environment: env)
            ports.append(try n.waitForListeningPort())
            nodes.append(n)
        }
        lbPort = TestServers.freePort()
        let dir = "/tmp/llmp-lb-\(getpid())-\(lbPort)"
        try TestServers.shell("mkdir -p \(dir)")
        TestServers.onExit("rm -rf \(dir)")
        let upstreams = ports.map { "    server 127.0.0.1:\($0) max_fails=1 fail_timeout=5s;" }.joined(separator: "\n")
        let conf = """
            worker_processes 1;
            daemon off;
            master_process off;
            pid \(dir)/nginx.pid;
            error_log \(dir)/error.log warn;
            events { worker_connections 1024; }
            http {
              access_log off;
              client_body_temp_path \(dir)/cbt; proxy_temp_path \(dir)/pt; fastcgi_temp_path \(dir)/ft; uwsgi_temp_path \(dir)/ut; scgi_temp_path \(dir)/st;
              upstream nodes {
            \(upstreams)
              }
              server {
                listen 127.0.0.1:\(lbPort);
                location / { proxy_pass http://nodes; proxy_http_version 1.1; proxy_set_header Connection ""; proxy_buffering off;
                             proxy_next_upstream error timeout http_502 http_503; }
              }
            }
            """
        try conf.write(toFile: dir + "/nginx.conf", atomically: true, encoding: .utf8)
        guard let nginx = TestServers.which("nginx", extra: ["/usr/sbin"]) else { throw ChildError(description: "nginx not found") }
        lb = try ChildProcess(nginx, ["-c", dir + "/nginx.conf", "-p", dir])
        guard TestServers.waitForPort(lbPort) else { throw ChildError(description: "nginx did not start: \(lb.outputText)") }
    }

    /// Another virtual key on the cluster's connection, made through the balancer's admin API.
    func addKey(_ args: [String]) throws -> (id: String, key: String) {
        let r = try admin(["vkey", "add", "--name", "k\(UInt32.random(in: 0...UInt32.max))", "--conn-id", connID, "--output", "json"] + args)
        let created = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any], "\(r.output)")
        let key = created["key"] as! String
        TestSecrets.register(key)
        return (created["id"] as! String, key)
    }

    /// The admin CLI against the load balancer (`--server`), as an operator of the cluster runs it.
    @discardableResult
    func admin(_ args: [String]) throws -> CommandResult {
        let r = try runCommand(BuiltProducts.path("llm-proxy"), ["--server", "http://127.0.0.1:\(lbPort)", "--admin-key", Self.adminKey] + args,
                               environment: ["LLM_PROXY_DATABASE_URL": "sqlite:/nonexistent/never-used.db"])
        if r.status != 0 { throw ChildError(description: "llm-proxy \(args.joined(separator: " ")) failed: \(r.output)") }
        return r
    }

    /// One chat completion to `port`: its status (0 when the connection failed) and wall time in ms.
    func request(port: UInt16, key: String? = nil, stream: Bool = false) -> (status: Int, ms: Double, failure: String?) {
        let body = stream ? #"{"model":"gpt-4o-mini","stream":true,"messages":[]}"# : #"{"model":"gpt-4o-mini","messages":[]}"#
        let t0 = Date()
        do {
            let c = try RawHTTPClient(port: port)
            try c.send("POST /v1/chat/completions HTTP/1.1\r\nHost: p\r\nAuthorization: Bearer \(key ?? self.key)\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)")
            let r = try c.readResponse()
            return (r.status, Date().timeIntervalSince(t0) * 1000, r.status == 200 ? nil : String(r.bodyText.prefix(300)))
        } catch {
            return (0, Date().timeIntervalSince(t0) * 1000, "\(error)")
        }
    }

    /// "global" or "local", from node `i`'s admin-detailed `/readyz`.
    func limiterMode(_ i: Int) -> String? {
        guard let c = try? RawHTTPClient(port: ports[i]),
              (try? c.send("GET /readyz HTTP/1.1\r\nHost: p\r\nAuthorization: Bearer \(Self.adminKey)\r\n\r\n")) != nil,
              let text = try? c.readResponse().bodyText else { return nil }
        return text.contains("\"limiter\":\"global\"") ? "global" : "local"
    }

    /// How many keys node `i` has cached, from its admin-detailed `/readyz`.
    func cachedKeys(_ i: Int) -> Int? {
        guard let c = try? RawHTTPClient(port: ports[i]),
              (try? c.send("GET /readyz HTTP/1.1\r\nHost: p\r\nAuthorization: Bearer \(Self.adminKey)\r\n\r\n")) != nil,
              let text = try? c.readResponse().bodyText,
              let r = text.range(of: "\"cached_keys\":") else { return nil }
        return Int(text[r.upperBound...].prefix(while: \.isNumber))
    }

    /// Waits until every node has at least one key cached; false after `timeout` seconds.
    func waitForCachedKeysOnEveryNode(timeout: TimeInterval = 15) -> Bool {
        let t0 = Date()
        while Date().timeIntervalSince(t0) < timeout {
            if ports.indices.allSatisfy({ (cachedKeys($0) ?? 0) > 0 }) { return true }
            usleep(50_000)
        }
        return false
    }

    func usageRequests() throws -> Int {
        let r = try runCommand(BuiltProducts.path("llm-proxy"), ["usage", "--output", "json"], environment: env)
        let rows = (try? JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [[String: Any]]) ?? []
        return rows.reduce(0) { $0 + ($1["requests"] as? Int ?? 0) }
    }

    func stop() {
        redis?.resume()
        lb.signal(SIGKILL)
        for n in nodes { n.stop() }
        mock.stop()
    }
}

/// Client threads sending requests back to back until stopped; every status and latency is kept.
final class SteadyLoad: @unchecked Sendable {
    struct Sample { let status: Int; let ms: Double; let at: Date; let failure: String? }
    private let lock = NSLock()
    private var samples: [Sample] = []
    private var running = true
    private let group = DispatchGroup()

    init(clients: Int, _ send: @escaping @Sendable () -> (status: Int, ms: Double, failure: String?)) {
        for _ in 0..<clients {
            DispatchQueue.global().async(group: group) { [self] in
                while lock.withLock({ running }) {
                    let r = send()
                    lock.withLock { samples.append(Sample(status: r.status, ms: r.ms, at: Date(), failure: r.failure)) }
                }
            }
        }
    }

    /// Samples taken so far (the load goes on).
    var snapshot: [Sample] { lock.withLock { samples } }

    func stop() -> [Sample] {
        lock.withLock { running = false }
        group.wait()
        return snapshot
    }
}
