import RedisClient

/// Request and token buckets shared by every node, in Redis: one Lua script per admission takes both
/// buckets (and a concurrency slot) atomically with Redis `TIME` as the clock, keyed by
/// `llmp:rl:{vk:<id>}` so each key's state sits in one cluster slot. One connection per event loop.
final class GlobalLimiter: @unchecked Sendable {
    static let admitScript = RedisScript("""
        local t = redis.call('TIME')
        local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
        local rcap, rrate, tcap, trate = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
        local tcost, cmax = tonumber(ARGV[5]), tonumber(ARGV[6])
        local v = redis.call('HMGET', KEYS[1], 'r', 'k', 'ts', 'c')
        local ts = tonumber(v[3]) or now
        local dt = math.max(0, now - ts)
        local r, k = 0, 0
        if rcap >= 0 then r = math.min(rcap, (tonumber(v[1]) or rcap) + dt * rrate) end
        if tcap >= 0 then k = math.min(tcap, (tonumber(v[2]) or tcap) + dt * trate) end
        local c = tonumber(v[4]) or 0
        local denial, retry = 0, 0
        if tcap >= 0 and tcost > tcap then
          denial = 4
        elseif rcap >= 0 and r < 1 then
          denial = 1
          retry = (1 - r) / rrate
          if tcap >= 0 and k < tcost then retry = math.max(retry, (tcost - k) / trate) end
        elseif tcap >= 0 and k < tcost then
          denial = 2
          retry = (tcost - k) / trate
        elseif cmax > 0 and c >= cmax then
          denial = 3
          retry = 1000
        end
        if denial == 0 then
          if rcap >= 0 then r = r - 1 end
          if tcap >= 0 then k = k - tcost end
          c = c + 1
        end
        redis.call('HSET', KEYS[1], 'r', tostring(r), 'k', tostring(k), 'ts', tostring(now), 'c', c)
        local ttl = 60000
        if rcap >= 0 and rrate > 0 then ttl = math.max(ttl, math.ceil(rcap / rrate) + 1000) end
        if tcap >= 0 and trate > 0 then ttl = math.max(ttl, math.ceil((tcap - math.min(k, 0)) / trate) + 1000) end
        redis.call('PEXPIRE', KEYS[1], ttl)
        return {denial, tostring(r), tostring(k), tostring(retry)}
        """)

    static let settleScript = RedisScript("""
        local k = tonumber(redis.call('HGET', KEYS[1], 'k'))
        if k and tonumber(ARGV[2]) >= 0 then
          redis.call('HSET', KEYS[1], 'k', tostring(math.min(tonumber(ARGV[2]), k + tonumber(ARGV[1]))))
        end
        if ARGV[3] == '1' then
          local c = redis.call('HINCRBY', KEYS[1], 'c', -1)
          if c < 0 then redis.call('HSET', KEYS[1], 'c', 0) end
        end
        return 1
        """)

    let connections: [RedisConnection]
    let deadlineNanos: UInt64

    init(connections: [RedisConnection], deadlineNanos: UInt64) {
        self.connections = connections
        self.deadlineNanos = deadlineNanos
    }

    static func key(_ vkeyID: String) -> String { "llmp:rl:{vk:\(vkeyID)}" }

    func connection(for loop: EventLoop) -> RedisConnection { connections[loop.index % connections.count] }

    /// One round trip. Throws `RedisError` when Redis is unavailable, slow past the deadline, or broken.
    func admit(on loop: EventLoop, key vkeyID: String, limits: KeyLimitsConfig, estimatedTokens: Int64) async throws -> AdmissionDecision {
        let c = connection(for: loop)
        let req = limits.requests, tok = limits.tokens
        let args = [
            req.map { fmt($0.capacity) } ?? "-1", req.map { fmt($0.perSecond / 1000) } ?? "0",
            tok.map { fmt($0.capacity) } ?? "-1", tok.map { fmt($0.perSecond / 1000) } ?? "0",
            String(max(0, estimatedTokens)), String(limits.maxConcurrent),
        ]
        let reply = try await Self.admitScript.run(on: c, keys: [Self.key(vkeyID)], args: args, timeoutNanos: deadlineNanos)
        if let e = reply.errorMessage { throw RedisError(.serverError, e) }
        guard let items = reply.array, items.count == 4, let denial = items[0].int,
              let r = items[1].string.flatMap(Double.init), let k = items[2].string.flatMap(Double.init),
              let retryMillis = items[3].string.flatMap(Double.init) else {
            throw RedisError(.protocolError, "unexpected limiter reply \(reply)")
        }
        var d = AdmissionDecision(denied: nil, retryAfter: retryMillis / 1000)
        switch denial {
        case 1: d.denied = .requests
        case 2: d.denied = .tokens
        case 3: d.denied = .concurrency
        case 4: d.denied = .tooLarge
        default: break
        }
        if let req {
            d.requestLimit = req.capacity
            d.requestsRemaining = max(0, r)
            d.requestsReset = req.perSecond > 0 ? max(0, req.capacity - r) / req.perSecond : 0
        }
        if let tok {
            d.tokenLimit = tok.capacity
            d.tokensRemaining = max(0, k)
            d.tokensReset = tok.perSecond > 0 ? max(0, tok.capacity - k) / tok.perSecond : 0
        }
        return d
    }

    /// Charges or refunds the token difference and frees the concurrency slot. Best effort: a failure
    /// here is counted by the caller, never shown to the client.
    func settle(on loop: EventLoop, key vkeyID: String, limits: KeyLimitsConfig, estimatedTokens: Int64, actualTokens: Int64) async throws {
        let c = connection(for: loop)
        _ = try await Self.settleScript.run(on: c, keys: [Self.key(vkeyID)],
                                            args: [String(estimatedTokens - actualTokens), limits.tokens.map { fmt($0.capacity) } ?? "-1",
                                                   limits.maxConcurrent > 0 ? "1" : "0"], timeoutNanos: deadlineNanos)
    }

    private func fmt(_ v: Double) -> String { String(v) }
}
