import Testing
@testable import RedisClient

@Suite struct RedisClientUnitTests {
    @Test func urlsParseWithCredentialsAndDatabase() throws {
        let a = try RedisConfiguration(url: "redis://user:pa:ss@redis.internal:6380/2")
        #expect(a.host == "redis.internal" && a.port == 6380 && a.username == "user" && a.password == "pa:ss" && a.database == 2)
        let b = try RedisConfiguration(url: "redis://:secret@127.0.0.1")
        #expect(b.username == nil && b.password == "secret" && b.port == 6379 && b.database == 0)
        let c = try RedisConfiguration(url: "redis://[::1]:7000")
        #expect(c.host == "::1" && c.port == 7000)
        #expect(!a.redacted.contains("pa:ss"))
        #expect(throws: RedisError.self) { try RedisConfiguration(url: "http://x") }
        #expect(throws: RedisError.self) { try RedisConfiguration(url: "redis://host:99999") }
        #expect(throws: RedisError.self) { try RedisConfiguration(url: "redis://host/x") }
    }

    @Test func backoffGrowsWithJitterAndIsCapped() {
        let b = Backoff(baseNanos: 50_000_000, maxNanos: 2_000_000_000)
        #expect(b.delay(attempt: 0, random: 1) == 50_000_000)
        #expect(b.delay(attempt: 3, random: 1) == 400_000_000)
        #expect(b.delay(attempt: 20, random: 1) == 2_000_000_000)
        #expect(b.delay(attempt: 20, random: 0.5) == 1_000_000_000)
        #expect(b.delay(attempt: 5, random: 0) == 25_000_000)  // never zero: at least half the base
    }

    @Test func readerAssemblesRepliesFromPieces() throws {
        let wire = Array("+OK\r\n:42\r\n$5\r\nhello\r\n*2\r\n$1\r\na\r\n$-1\r\n-ERR bad\r\n".utf8)
        let reader = RESPReader()
        var values: [RESPValue] = []
        for b in wire {
            [b].withUnsafeBytes { reader.feed($0) }
            while let v = try reader.next() { values.append(v) }
        }
        #expect(values == [.simpleString("OK"), .integer(42), .bulkString(Array("hello".utf8)), .array([.bulkString([97]), .null]), .error("ERR bad")])
    }

    @Test func malformedRepliesAreAProtocolError() {
        let reader = RESPReader()
        Array("?what\r\n".utf8).withUnsafeBytes { reader.feed($0) }
        #expect(throws: RedisError.self) { _ = try reader.next() }
    }

    @Test func commandsEncodeAsRESPArrays() {
        var out: [UInt8] = []
        RESPEncoder.encode([Array("SET".utf8), Array("k".utf8), Array("".utf8)], into: &out)
        #expect(String(decoding: out, as: UTF8.self) == "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$0\r\n\r\n")
    }

    @Test func scriptsKnowTheirSHA1() {
        #expect(RedisScript("return 1").sha1 == "e0e1f9fabfc9d4800c877a703b823ac0578ff8db")
    }
}
