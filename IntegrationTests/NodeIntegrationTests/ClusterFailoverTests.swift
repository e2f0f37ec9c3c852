import Foundation
import Glibc
import Testing
import TestSupport

/// The cluster topology on loopback: three nodes behind nginx (Debian's) as the load balancer, one
/// PostgreSQL, one Redis, the mock provider.
@Suite struct ClusterFailoverTests {
    final class Cluster {
        let mock: ChildProcess
        var nodes: [ChildProcess] = []
        var ports: [UInt16] = []
        let lb: ChildProcess
        let lbPort: UInt16
        let key: String
        let env: [String: String]
        let redis: RedisTestServer

        init() throws {
            redis = try RedisTestServer()
            mock = try ChildProcess(BuiltProducts.path("mock-provider"), ["--listen", "127.0.0.1:0"])
            let out = try mock.waitForOutput(containing: "listening on")
            let mockPort = String(out[out.range(of: "127.0.0.1:")!.upperBound...].prefix(while: \.isNumber))
            env = ["LLM_PROXY_DATABASE_URL": try PostgresTestServer.shared().makeDatabase(),
                   "LLM_PROXY_MASTER_KEY": "failover-master-key-12345", "LLM_PROXY_ADMIN_KEY": "failover-admin-key-12345"]
            let proxy = BuiltProducts.path("llm-proxy")
            let conn = try runCommand(proxy, ["connection", "add", "--name", "mock", "--provider", "openai", "--endpoint",
                                              "http://127.0.0.1:\(mockPort)/v1", "--api-key", "sk-up", "--output", "json"], environment: env)
            let connID = try #require(try JSONSerialization.jsonObject(with: Data(conn.output.utf8)) as? [String: Any])["id"] as! String
            let vk = try runCommand(proxy, ["vkey", "add", "--name", "k", "--conn-id", connID, "--output", "json"], environment: env)
            key = try #require(try JSONSerialization.jsonObject(with: Data(vk.output.utf8)) as? [String: Any])["key"] as! String
            TestSecrets.register(key)
            for i in 0..<3 {
                let n = try ChildProcess(proxy, ["serve", "--listen", "127.0.0.1:0", "--node-id", "node-\(i)", "--redis-url", redis.url,
                                                 "--shutdown-grace", "10s", "--drain-delay", "1s"], environment: env)
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

        func request(port: UInt16, stream: Bool = false) -> Int {
            let body = stream ? #"{"model":"gpt-4o-mini","stream":true,"messages":[]}"# : #"{"model":"gpt-4o-mini","messages":[]}"#
            guard let c = try? RawHTTPClient(port: port) else { return 0 }
            guard (try? c.send("POST /v1/chat/completions HTTP/1.1\r\nHost: p\r\nAuthorization: Bearer \(key)\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)")) != nil,
                  let r = try? c.readResponse() else { return 0 }
            return r.status
        }

        func usageRequests() throws -> Int {
            let r = try runCommand(BuiltProducts.path("llm-proxy"), ["usage", "--output", "json"], environment: env)
            let rows = (try? JSONSerialization.jsonObject(with: Data(r.output.utf8)) as? [[String: Any]]) ?? []
            return rows.reduce(0) { $0 + ($1["requests"] as? Int ?? 0) }
        }

        func stop() {
            lb.signal(SIGKILL)
            for n in nodes { n.stop() }
            mock.stop()
        }
    }

    @Test func balancerRoutesAroundAKilledNode() throws {
        let cluster = try Cluster()
        defer { cluster.stop() }
        var failures = 0, ok = 0
        let start = Date()
        var killed = false
        while Date().timeIntervalSince(start) < 3 {
            if !killed && Date().timeIntervalSince(start) > 1 {
                cluster.nodes[1].signal(SIGKILL)
                killed = true
            }
            if cluster.request(port: cluster.lbPort) == 200 { ok += 1 } else { failures += 1 }
        }
        // One client, one request at a time: at most the one in flight on the killed node is lost.
        #expect(failures <= 1, "\(failures) failed of \(ok + failures)")
        #expect(ok > 100)
    }

    @Test func sigtermedNodeFinishesItsStreamsAndFlushesUsage() throws {
        let cluster = try Cluster()
        defer { cluster.stop() }
        let port = cluster.ports[2]
        let before = try cluster.usageRequests()

        let stream = try RawHTTPClient(port: port, timeoutSeconds: 15)
        let body = #"{"model":"gpt-4o-mini","stream":true,"messages":[]}"#
        try stream.send("POST /v1/chat/completions HTTP/1.1\r\nHost: p\r\nAuthorization: Bearer \(cluster.key)\r\nx-mock-chunk-delay-ms: 300\r\nx-mock-chunks: 8\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)")
        usleep(400_000)  // the stream is under way
        cluster.nodes[2].signal(SIGTERM)
        usleep(100_000)
        // During --drain-delay the node still accepts, and tells balancers it is going.
        let watcher = try RawHTTPClient(port: port)
        try watcher.send("GET /readyz HTTP/1.1\r\nHost: p\r\n\r\n")
        let draining = try watcher.readResponse()
        #expect(draining.status == 503)
        #expect(draining.bodyText.contains("draining"))
        // The stream still ends properly.
        let r = try stream.readResponse()
        #expect(r.status == 200)
        #expect(r.bodyText.contains("data: [DONE]"))
        #expect(r.bodyText.contains("tok7"))
        #expect(cluster.nodes[2].waitForExit(timeout: 15) == 0)
        // Its usage reached the store before it exited.
        #expect(try cluster.usageRequests() == before + 1)
    }
}
