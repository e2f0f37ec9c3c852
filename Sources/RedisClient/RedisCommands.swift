import CCrypto

/// Typed commands over `send`: errors from the server become `RedisError(.serverError)`.
extension RedisConnection {
    func value(_ args: [String], timeoutNanos: UInt64? = nil) async throws -> RESPValue {
        let v = try await send(args, timeoutNanos: timeoutNanos)
        if let e = v.errorMessage { throw RedisError(.serverError, e) }
        return v
    }

    public func ping(timeoutNanos: UInt64? = nil) async throws -> Bool {
        try await value(["PING"], timeoutNanos: timeoutNanos).string == "PONG"
    }

    public func get(_ key: String) async throws -> String? {
        let v = try await value(["GET", key])
        return v == .null ? nil : v.string
    }

    public func set(_ key: String, _ value: String, expireMillis: Int? = nil) async throws {
        _ = try await self.value(["SET", key, value] + (expireMillis.map { ["PX", String($0)] } ?? []))
    }

    @discardableResult
    public func del(_ keys: [String]) async throws -> Int64 { try await value(["DEL"] + keys).int ?? 0 }

    @discardableResult
    public func incrBy(_ key: String, _ by: Int64) async throws -> Int64 { try await value(["INCRBY", key, String(by)]).int ?? 0 }

    public func pexpire(_ key: String, millis: Int) async throws { _ = try await value(["PEXPIRE", key, String(millis)]) }

    public func pttl(_ key: String) async throws -> Int64 { try await value(["PTTL", key]).int ?? -2 }

    public func hset(_ key: String, _ fields: [(String, String)]) async throws {
        _ = try await value(["HSET", key] + fields.flatMap { [$0.0, $0.1] })
    }

    public func hget(_ key: String, _ field: String) async throws -> String? {
        let v = try await value(["HGET", key, field])
        return v == .null ? nil : v.string
    }

    /// Sorted sets, e.g. node heartbeats scored by time.
    public func zadd(_ key: String, score: Double, member: String) async throws { _ = try await value(["ZADD", key, String(score), member]) }

    public func zcount(_ key: String, min: Double, max: Double) async throws -> Int64 {
        try await value(["ZCOUNT", key, String(min), String(max)]).int ?? 0
    }

    @discardableResult
    public func zremRangeByScore(_ key: String, min: String, max: String) async throws -> Int64 {
        try await value(["ZREMRANGEBYSCORE", key, min, max]).int ?? 0
    }

    @discardableResult
    public func publish(_ channel: String, _ message: String) async throws -> Int64 {
        try await value(["PUBLISH", channel, message]).int ?? 0
    }

    /// One section of INFO as key → value.
    public func info(_ section: String) async throws -> [String: String] {
        let text = try await value(["INFO", section]).string ?? ""
        var out: [String: String] = [:]
        for line in text.split(whereSeparator: \.isNewline) where !line.hasPrefix("#") {
            if let colon = line.firstIndex(of: ":") { out[String(line[..<colon])] = String(line[line.index(after: colon)...]) }
        }
        return out
    }
}

/// A Lua script known by its SHA1: run with EVALSHA; on NOSCRIPT (after `SCRIPT FLUSH` or a restart)
/// it is loaded and run again once, so callers never see the difference.
public struct RedisScript: Sendable {
    public let source: String
    public let sha1: String

    public init(_ source: String) {
        self.source = source
        var digest = [UInt8](repeating: 0, count: 20)
        var size: UInt32 = 0
        let bytes = Array(source.utf8)
        bytes.withUnsafeBytes { p in _ = EVP_Digest(p.baseAddress, p.count, &digest, &size, EVP_sha1(), nil) }
        sha1 = digest.map { String($0, radix: 16).count == 1 ? "0" + String($0, radix: 16) : String($0, radix: 16) }.joined()
    }

    /// The script's reply (an error reply is a value, as with `send`).
    public func run(on connection: RedisConnection, keys: [String], args: [String], timeoutNanos: UInt64? = nil) async throws -> RESPValue {
        let tail = [String(keys.count)] + keys + args
        let first = try await connection.send(["EVALSHA", sha1] + tail, timeoutNanos: timeoutNanos)
        guard let e = first.errorMessage, e.hasPrefix("NOSCRIPT") else { return first }
        let loaded = try await connection.send(["SCRIPT", "LOAD", source], timeoutNanos: timeoutNanos)
        if let le = loaded.errorMessage { throw RedisError(.serverError, "SCRIPT LOAD failed: \(le)") }
        return try await connection.send(["EVALSHA", sha1] + tail, timeoutNanos: timeoutNanos)
    }
}

/// Pub/sub on a connection of its own, resubscribing after every reconnect.
public final class RedisSubscriber: @unchecked Sendable {
    public let connection: RedisConnection
    private var channels: [String] = []
    private var handler: (String, [UInt8]) -> Void = { _, _ in }

    public init(configuration: RedisConfiguration, loop: any RedisEventLoop) {
        connection = RedisConnection(configuration: configuration, loop: loop)
    }

    /// Subscribes to `channels`; `onMessage(channel, payload)` runs on the loop. Call once, before `start`.
    public func subscribe(_ channels: [String], onMessage: @escaping @Sendable (String, [UInt8]) -> Void) {
        self.channels = channels
        handler = onMessage
        connection.pushHandler = { [weak self] value in
            guard let self, let items = value.array, items.count == 3, items[0].string == "message",
                  let channel = items[1].string, case .bulkString(let payload) = items[2] else { return }
            handler(channel, payload)
        }
        connection.onReady = { [weak self] in
            guard let self else { return }
            connection.sendInternal(["SUBSCRIBE"] + self.channels)
        }
    }

    public func start() { connection.start() }
    public func stop() { connection.stop() }
}
