/// In-process request and token buckets per virtual key. Keys are spread over shards, each with its own
/// lock, so loops rarely contend and no lock is global. One admission takes 1 request and the token
/// estimate from both buckets atomically, or nothing.
///
/// `@unchecked Sendable`: each shard's state is behind its lock.
final class LocalLimiter: @unchecked Sendable {
    struct KeyState {
        var config: KeyLimitsConfig
        var requests: TokenBucket?
        var tokens: TokenBucket?
        var inFlight = 0
    }

    private let shards: [LockedBox<[String: KeyState]>]
    /// The fraction of each limit this node enforces (1 alone; 1/N with N live nodes in local fallback).
    let share: LockedBox<Double>
    private let clock: @Sendable () -> Double

    init(shards: Int = 16, share: Double = 1, clock: @escaping @Sendable () -> Double = { Double(monotonicNanos()) / 1e9 }) {
        self.shards = (0..<max(1, shards)).map { _ in LockedBox([:]) }
        self.share = LockedBox(share)
        self.clock = clock
    }

    private func shard(_ key: String) -> LockedBox<[String: KeyState]> {
        var h: UInt32 = 2_166_136_261
        for b in key.utf8 { h = (h ^ UInt32(b)) &* 16_777_619 }
        return shards[Int(h % UInt32(shards.count))]
    }

    private func scaled(_ config: KeyLimitsConfig) -> KeyLimitsConfig {
        let s = share.withLock { $0 }
        guard s < 1 else { return config }
        var c = config
        if let r = c.requests { c.requests = (capacity: max(1, r.capacity * s), perSecond: r.perSecond * s) }
        if let t = c.tokens { c.tokens = (capacity: t.capacity * s, perSecond: t.perSecond * s) }
        if c.maxConcurrent > 0 { c.maxConcurrent = max(1, Int((Double(c.maxConcurrent) * s).rounded(.up))) }
        return c
    }

    /// Takes one request and `estimatedTokens` for `key`, or nothing.
    func admit(key: String, limits rawConfig: KeyLimitsConfig, estimatedTokens: Int64) -> AdmissionDecision {
        let config = scaled(rawConfig)
        let now = clock()
        let cost = Double(max(0, estimatedTokens))
        return shard(key).withLock { states in
            var st = states[key] ?? KeyState(config: config)
            if st.config != config {
                st.config = config
            }
            // Buckets follow the key's current limits.
            if let r = config.requests {
                if st.requests == nil { st.requests = TokenBucket(capacity: r.capacity, ratePerSecond: r.perSecond, now: now) }
                st.requests!.reconfigure(capacity: r.capacity, ratePerSecond: r.perSecond, now: now)
            } else {
                st.requests = nil
            }
            if let t = config.tokens {
                if st.tokens == nil { st.tokens = TokenBucket(capacity: t.capacity, ratePerSecond: t.perSecond, now: now) }
                st.tokens!.reconfigure(capacity: t.capacity, ratePerSecond: t.perSecond, now: now)
            } else {
                st.tokens = nil
            }
            var d = AdmissionDecision(denied: nil, retryAfter: 0)
            let requestWait = st.requests?.wait(for: 1, now: now) ?? 0
            let tokenWait = st.tokens?.wait(for: cost, now: now) ?? 0
            if let t = st.tokens, cost > t.capacity {
                d.denied = .tooLarge
            } else if requestWait > 0 {
                d.denied = .requests
                d.retryAfter = max(requestWait, tokenWait)
            } else if tokenWait > 0 {
                d.denied = .tokens
                d.retryAfter = tokenWait
            } else if config.maxConcurrent > 0 && st.inFlight >= config.maxConcurrent {
                d.denied = .concurrency
                d.retryAfter = 1
            }
            if d.allowed {
                st.requests?.take(1, now: now)
                st.tokens?.take(cost, now: now)
                st.inFlight += 1
            }
            if let r = st.requests {
                d.requestLimit = r.capacity
                d.requestsRemaining = max(0, r.level(at: now))
                d.requestsReset = r.timeToFull(now: now)
            }
            if let t = st.tokens {
                d.tokenLimit = t.capacity
                d.tokensRemaining = max(0, t.level(at: now))
                d.tokensReset = t.timeToFull(now: now)
            }
            states[key] = st
            return d
        }
    }

    /// After the response: charge (or refund) the difference between actual and estimated tokens, and
    /// release the request's concurrency slot.
    func settle(key: String, estimatedTokens: Int64, actualTokens: Int64) {
        let now = clock()
        shard(key).withLock { states in
            guard var st = states[key] else { return }
            st.tokens?.adjust(by: Double(estimatedTokens - actualTokens), now: now)
            st.inFlight = max(0, st.inFlight - 1)
            states[key] = st
        }
    }
}
