import Foundation
import Node
import RedisClient
import Testing
import TestSupport

/// Against a real redis-server started here: round trips, pipelining, scripts, and what happens when the
/// server dies, hangs or refuses.
@Suite struct RedisConnectionTests {
    func connected(_ server: RedisTestServer, group: EventLoopGroup, timeoutNanos: UInt64 = 50_000_000) async throws -> RedisConnection {
        var config = try RedisConfiguration(url: server.url)
        config.commandTimeoutNanos = timeoutNanos
        let c = RedisConnection(configuration: config, loop: group.loops[0])
        c.start()
        try await waitFor { c.health == .ready }
        return c
    }

    func waitFor(seconds: Double = 10, _ condition: () -> Bool) async throws {
        let deadline = Date().addingTimeInterval(seconds)
        while !condition() {
            if Date() > deadline { throw ChildError(description: "condition not met within \(seconds)s") }
            try await Task.sleep(for: .milliseconds(10))
        }
    }

    @Test func commandsRoundTrip() async throws {
        let server = try RedisTestServer()
        let group = try EventLoopGroup(loopCount: 1)
        defer { group.shutdown() }
        let c = try await connected(server, group: group)
        #expect(try await c.ping())
        try await c.set("k", "v", expireMillis: 60_000)
        #expect(try await c.get("k") == "v")
        #expect(try await c.get("missing") == nil)
        #expect(try await c.incrBy("n", 5) == 5)
        try await c.hset("h", [("a", "1"), ("b", "2")])
        #expect(try await c.hget("h", "b") == "2")
        try await c.zadd("z", score: 10, member: "node-a")
        try await c.zadd("z", score: 20, member: "node-b")
        #expect(try await c.zcount("z", min: 15, max: 100) == 1)
        #expect(try await c.pttl("k") > 0)
        #expect(try await c.info("server")["redis_version"] != nil)
        // Server errors are values until the caller decides.
        let wrongType = try await c.send(["LPUSH", "k", "x"])
        #expect(wrongType.errorMessage?.hasPrefix("WRONGTYPE") == true)
        await #expect(throws: RedisError.self) { try await c.hget("k", "x") }
        c.stop()
    }

    @Test func tenThousandPipelinedCommandsKeepOrder() async throws {
        let server = try RedisTestServer()
        let group = try EventLoopGroup(loopCount: 1)
        defer { group.shutdown() }
        let c = try await connected(server, group: group, timeoutNanos: 5_000_000_000)
        let results = try await withThrowingTaskGroup(of: (Int, Int64).self) { g in
            for i in 0..<10_000 {
                g.addTask { (i, try await c.send(["ECHO", String(i)]).int ?? -1) }
            }
            var out: [Int: Int64] = [:]
            for try await (i, v) in g { out[i] = v }
            return out
        }
        #expect(results.count == 10_000)
        #expect(results.allSatisfy { Int64($0.key) == $0.value })
        // Issued from the loop itself, in one go, replies come back in issue order.
        let ordered = try await Task(executorPreference: group.loops[0]) { () -> [Int64] in
            var values: [Int64] = []
            for i in 0..<1000 { values.append(try await c.incrBy("seq", 1) - Int64(i)) }
            return values
        }.value
        #expect(Set(ordered) == [1])
        c.stop()
    }

    @Test func scriptSurvivesScriptFlush() async throws {
        let server = try RedisTestServer()
        let group = try EventLoopGroup(loopCount: 1)
        defer { group.shutdown() }
        let c = try await connected(server, group: group)
        let script = RedisScript("return tonumber(ARGV[1]) + redis.call('INCR', KEYS[1])")
        #expect(try await script.run(on: c, keys: ["s"], args: ["10"]).int == 11)
        _ = try await c.send(["SCRIPT", "FLUSH"])
        #expect(try await script.run(on: c, keys: ["s"], args: ["10"]).int == 12)
        c.stop()
    }

    @Test func refusedAtStartFailsAtOnceAndConnectsWhenTheServerComes() async throws {
        let group = try EventLoopGroup(loopCount: 1)
        defer { group.shutdown() }
        let port = TestServers.freePort()
        var config = RedisConfiguration(host: "127.0.0.1", port: Int(port))
        config.backoffMaxNanos = 200_000_000
        let c = RedisConnection(configuration: config, loop: group.loops[0])
        c.start()
        let t0 = monotonicNanos()
        do {
            _ = try await c.send(["PING"])
            Issue.record("expected unavailable")
        } catch let e as RedisError {
            #expect(e.code == .unavailable)
        }
        #expect(monotonicNanos() - t0 < 20_000_000)
        #expect(c.health == .down)
        c.stop()
    }

    @Test func wrongPasswordSaysSo() async throws {
        let server = try RedisTestServer(password: "right-password")
        let group = try EventLoopGroup(loopCount: 1)
        defer { group.shutdown() }
        var config = try RedisConfiguration(url: "redis://:wrong-password@127.0.0.1:\(server.port)")
        config.backoffMaxNanos = 100_000_000
        let c = RedisConnection(configuration: config, loop: group.loops[0])
        c.start()
        try await waitFor { c.lastConnectError != nil }
        #expect(c.lastConnectError?.code == .authenticationFailed)
        #expect(c.lastConnectError?.message.contains("refused the credentials") == true)
        #expect(c.health == .down)
        c.stop()
        let good = try await connected(server, group: group)
        #expect(try await good.ping())
        good.stop()
    }

    @Test func killedAndRestartedServerIsRecoveredAndSubscriptionsComeBack() async throws {
        let server = try RedisTestServer()
        let group = try EventLoopGroup(loopCount: 1)
        defer { group.shutdown() }
        let c = try await connected(server, group: group)
        let received = LockedBox<[String]>([])
        var subConfig = try RedisConfiguration(url: server.url)
        subConfig.backoffMaxNanos = 200_000_000
        let sub = RedisSubscriber(configuration: subConfig, loop: group.loops[0])
        sub.subscribe(["llmp:test"]) { _, payload in received.withLock { $0.append(String(decoding: payload, as: UTF8.self)) } }
        sub.start()
        try await waitFor { sub.connection.health == .ready }
        try await publishUntilReceived(c, "one", received)

        server.kill()
        try await waitFor { c.health == .down }
        await #expect(throws: RedisError.self) { try await c.ping() }
        try server.start()
        try await waitFor { c.health == .ready && sub.connection.health == .ready }
        #expect(try await c.ping())
        try await publishUntilReceived(c, "two", received)
        sub.stop()
        c.stop()
    }

    /// Publishes until the subscriber has seen the message (it may still be subscribing).
    func publishUntilReceived(_ c: RedisConnection, _ message: String, _ received: LockedBox<[String]>) async throws {
        for _ in 0..<200 {
            _ = try? await c.publish("llmp:test", message)
            if received.withLock({ $0.contains(message) }) { return }
            try await Task.sleep(for: .milliseconds(25))
        }
        throw ChildError(description: "subscriber never received \(message)")
    }

    @Test func hungServerFailsCommandsWithinTheirDeadlineThenRecovers() async throws {
        let server = try RedisTestServer()
        let group = try EventLoopGroup(loopCount: 1)
        defer { group.shutdown() }
        let c = try await connected(server, group: group, timeoutNanos: 50_000_000)
        server.pause()
        defer { server.resume() }
        var waits: [UInt64] = []
        for _ in 0..<100 {
            let t0 = monotonicNanos()
            do {
                _ = try await c.send(["PING"])
            } catch let e as RedisError {
                #expect(e.code == .timeout || e.code == .unavailable || e.code == .connectionLost)
            }
            waits.append(monotonicNanos() - t0)
        }
        waits.sort()
        let p99 = waits[98]
        print("hung-redis failure time: p50 \(waits[50] / 1000) µs, p99 \(p99 / 1000) µs, max \(waits.last! / 1000) µs")
        #expect(p99 <= 80_000_000, "p99 \(p99) ns")
        #expect(c.health != .ready)
        server.resume()
        try await waitFor(seconds: 5) { c.health == .ready }
        #expect(try await c.ping())
        c.stop()
    }
}
