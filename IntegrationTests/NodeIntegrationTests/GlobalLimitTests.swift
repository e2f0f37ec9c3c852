import Foundation
import Glibc
import Testing
import TestSupport

/// Three `llm-proxy serve` nodes on one store and one Redis: limits hold across them, and a dead or hung
/// Redis never stalls a request.
@Suite struct GlobalLimitTests {
    final class Cluster {
        let mock: ChildProcess
        let nodes: [ChildProcess]
        let ports: [UInt16]
        let key: String
        let redis: RedisTestServer
        static let adminKey = "cluster-admin-key-0123456789"

        init(keyArgs: [String], redisTimeout: String = "50ms") throws {
            redis = try RedisTestServer()
            mock = try ChildProcess(BuiltProducts.path("mock-provider"), ["--listen", "127.0.0.1:0"])
            let out = try mock.waitForOutput(containing: "listening on")
            let mockPort = String(out[out.range(of: "127.0.0.1:")!.upperBound...].prefix(while: \.isNumber))
            let env = ["LLM_PROXY_DATABASE_URL": TestServers.tempSQLiteURL(), "LLM_PROXY_MASTER_KEY": "cluster-test-master-key-1",
                       "LLM_PROXY_ADMIN_KEY": Cluster.adminKey]
            let proxy = BuiltProducts.path("llm-proxy")
            let conn = try runCommand(proxy, ["connection", "add", "--name", "mock", "--provider", "openai", "--endpoint",
                                              "http://127.0.0.1:\(mockPort)/v1", "--api-key", "sk-up", "--output", "json"], environment: env)
            let connID = try #require(try JSONSerialization.jsonObject(with: Data(conn.stdout.utf8)) as? [String: Any])["id"] as! String
            let vk = try runCommand(proxy, ["vkey", "add", "--name", "shared", "--conn-id", connID, "--output", "json"] + keyArgs, environment: env)
            key = try #require(try JSONSerialization.jsonObject(with: Data(vk.stdout.utf8)) as? [String: Any])["key"] as! String
            TestSecrets.register(key)
            var nodes: [ChildProcess] = []
            var ports: [UInt16] = []
            for i in 0..<3 {
                let n = try ChildProcess(proxy, ["serve", "--listen", "127.0.0.1:0", "--event-loops", "1", "--node-id", "node-\(i)",
                                                 "--redis-url", redis.url, "--redis-timeout", redisTimeout], environment: env)
                ports.append(try n.waitForListeningPort())
                nodes.append(n)
            }
            self.nodes = nodes
            self.ports = ports
        }

        /// One request to node `i`: status and wall time in ms.
        func request(_ i: Int) throws -> (Int, Double) {
            let body = #"{"model":"gpt-4o-mini","messages":[]}"#
            let t0 = Date()
            let c = try RawHTTPClient(port: ports[i % ports.count])
            try c.send("POST /v1/chat/completions HTTP/1.1\r\nHost: p\r\nAuthorization: Bearer \(key)\r\nContent-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)")
            let r = try c.readResponse()
            return (r.status, Date().timeIntervalSince(t0) * 1000)
        }

        func limiterMode(_ i: Int) throws -> String {
            let c = try RawHTTPClient(port: ports[i])
            try c.send("GET /readyz HTTP/1.1\r\nHost: p\r\nAuthorization: Bearer \(Cluster.adminKey)\r\n\r\n")
            let text = try c.readResponse().bodyText
            return text.contains("\"limiter\":\"global\"") ? "global" : "local"
        }

        func stop() {
            redis.resume()
            for n in nodes { n.stop() }
            mock.stop()
        }
    }

    @Test func tenPerSecondHoldsAcrossThreeNodes() throws {
        let cluster = try Cluster(keyArgs: ["--tps", "10", "--burst", "10"])
        defer { cluster.stop() }
        let end = Date().addingTimeInterval(4)
        var admitted = 0, refused = 0, i = 0
        while Date() < end {
            let (status, _) = try cluster.request(i)
            if status == 200 { admitted += 1 } else if status == 429 { refused += 1 }
            i += 1
        }
        // Burst 10 plus 10/s for 4 s: at most 50, and the bucket is never idle long enough to lose many.
        #expect((40...50).contains(admitted), "admitted \(admitted), refused \(refused)")
        #expect(refused > 0)
    }

    @Test func hungOrDeadRedisNeverStallsARequestAndGlobalModeReturns() throws {
        let cluster = try Cluster(keyArgs: ["--tps", "1000"])
        defer { cluster.stop() }
        for n in 0..<3 { #expect(try cluster.limiterMode(n) == "global") }

        cluster.redis.pause()
        var worst = 0.0
        for i in 0..<60 {
            let (status, ms) = try cluster.request(i)
            #expect(status == 200)
            worst = max(worst, ms)
        }
        // 50 ms deadline: the first request per node waits it out, later ones fail over at once.
        #expect(worst < 400, "slowest request took \(worst) ms")
        #expect(try cluster.limiterMode(0) == "local")
        cluster.redis.resume()
        var back = false
        for _ in 0..<40 where !back {
            _ = try? cluster.request(0)
            back = (try? cluster.limiterMode(0)) == "global"
            if !back { usleep(50_000) }
        }
        #expect(back, "global mode did not return within 2 s of SIGCONT")

        cluster.redis.kill()
        worst = 0
        for i in 0..<30 {
            let (status, ms) = try cluster.request(i)
            #expect(status == 200)
            worst = max(worst, ms)
        }
        #expect(worst < 400, "slowest request took \(worst) ms with Redis dead")
        try cluster.redis.start()
        back = false
        for _ in 0..<60 where !back {
            _ = try? cluster.request(1)
            back = (try? cluster.limiterMode(1)) == "global"
            if !back { usleep(50_000) }
        }
        #expect(back, "global mode did not return after Redis restarted")
        let c = try RawHTTPClient(port: cluster.ports[1])
        try c.send("GET /metrics HTTP/1.1\r\nHost: p\r\n\r\n")
        let metrics = try c.readResponse().bodyText
        // At least the switch for the outage (the heartbeat may also have seen Redis back between the two faults).
        let switches = metrics.split(separator: "\n").first { $0.hasPrefix("llmp_limiter_mode_switches_total{to=\"local\"} ") }
        #expect((switches?.split(separator: " ").last.flatMap { Double($0) } ?? 0) >= 1, "\(metrics.split(separator: "\n").filter { $0.contains("limiter") })")
        #expect(metrics.contains("llmp_limiter_mode{mode=\"global\"} 1"))
    }

    @Test func localShareIsEnforcedWhileRedisIsAway() throws {
        let cluster = try Cluster(keyArgs: ["--tps", "3", "--burst", "30"])
        defer { cluster.stop() }
        // Let the nodes see each other through their heartbeats.
        usleep(2_500_000)
        cluster.redis.kill()
        // Each node now enforces a third of the burst (10): 30 requests to one node admit about 10.
        var admitted = 0
        for _ in 0..<30 where (try? cluster.request(0))?.0 == 200 { admitted += 1 }
        #expect((9...13).contains(admitted), "admitted \(admitted) on one node with Redis dead")
    }
}
