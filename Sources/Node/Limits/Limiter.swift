import RedisClient

/// What to do with a request when Redis cannot be asked.
enum RedisFailurePolicy: String, Sendable {
    /// Enforce this node's share of each limit locally (default).
    case local
    /// Let requests through unlimited.
    case failOpen = "fail-open"
    /// Refuse requests (503).
    case failClosed = "fail-closed"
}

/// Chooses where a request is admitted: the global Redis buckets when Redis answers, this node's share of
/// local buckets when it does not (or as the policy says), local buckets alone with no Redis configured.
/// Remembers which one admitted a request, so settlement goes to the same place.
final class Limiter: @unchecked Sendable {
    enum Place: Sendable {
        case local
        case global
        case unlimited
    }

    struct Admission: Sendable {
        var decision: AdmissionDecision
        var place: Place
    }

    let local: LocalLimiter
    let global: GlobalLimiter?
    let policy: RedisFailurePolicy
    let log: Logger
    private let mode = LockedBox("local")
    let fallbacks = LockedBox(0)
    var metrics: Metrics?

    init(local: LocalLimiter, global: GlobalLimiter?, policy: RedisFailurePolicy, log: Logger) {
        self.local = local
        self.global = global
        self.policy = policy
        self.log = log
        mode.withLock { $0 = global == nil ? "local" : "global" }
    }

    /// `global`, `local` (Redis away, this node's share) or `local` alone without Redis.
    var currentMode: String { mode.withLock { $0 } }

    /// The admission at once when it needs no round trip (no Redis configured); nil when `admit` must ask.
    func admitWithoutWaiting(key: String, limits: KeyLimitsConfig, estimatedTokens: Int64) -> Admission? {
        global == nil ? localAdmission(key: key, limits: limits, estimatedTokens: estimatedTokens) : nil
    }

    private func localAdmission(key: String, limits: KeyLimitsConfig, estimatedTokens: Int64) -> Admission {
        Admission(decision: local.admit(key: key, limits: limits, estimatedTokens: estimatedTokens), place: .local)
    }

    func admit(on loop: EventLoop, key: String, limits: KeyLimitsConfig, estimatedTokens: Int64) async -> Admission {
        guard let global else { return localAdmission(key: key, limits: limits, estimatedTokens: estimatedTokens) }
        let t0 = monotonicNanos()
        do {
            let d = try await global.admit(on: loop, key: key, limits: limits, estimatedTokens: estimatedTokens)
            metrics?.observe("llmp_redis_command_duration_seconds", [], Double(monotonicNanos() - t0) / 1e9)
            switchMode(to: "global", reason: nil)
            return Admission(decision: d, place: .global)
        } catch {
            metrics?.observe("llmp_redis_command_duration_seconds", [], Double(monotonicNanos() - t0) / 1e9)
            metrics?.add("llmp_redis_errors_total")
            fallbacks.withLock { $0 += 1 }
            switchMode(to: "local", reason: "\(error)")
            switch policy {
            case .local:
                return localAdmission(key: key, limits: limits, estimatedTokens: estimatedTokens)
            case .failOpen:
                return Admission(decision: AdmissionDecision(denied: nil, retryAfter: 0), place: .unlimited)
            case .failClosed:
                return Admission(decision: AdmissionDecision(denied: .limiterUnavailable, retryAfter: 1), place: .unlimited)
            }
        }
    }

    /// Settles at once what needs no round trip (local buckets; a global admission with nothing to give
    /// back); false when `settle` must still be called.
    func settleWithoutWaiting(_ admission: Admission, key: String, limits: KeyLimitsConfig, estimatedTokens: Int64, actualTokens: Int64) -> Bool {
        switch admission.place {
        case .local:
            local.settle(key: key, estimatedTokens: estimatedTokens, actualTokens: actualTokens)
            return true
        case .global:
            // Nothing to settle without a token bucket or a concurrency slot: no second round trip.
            return limits.tokens == nil && limits.maxConcurrent == 0
        case .unlimited:
            return true
        }
    }

    func settle(on loop: EventLoop, _ admission: Admission, key: String, limits: KeyLimitsConfig, estimatedTokens: Int64, actualTokens: Int64) async {
        // What is left after that is a global admission with something to give back.
        if settleWithoutWaiting(admission, key: key, limits: limits, estimatedTokens: estimatedTokens, actualTokens: actualTokens) { return }
        do {
            try await global?.settle(on: loop, key: key, limits: limits, estimatedTokens: estimatedTokens, actualTokens: actualTokens)
        } catch {
            // The bucket refills on its own; a lost settlement only shifts one request's charge.
        }
    }

    /// What another Redis user on this node (the heartbeat) just saw: keeps the reported mode true even
    /// while no limited key is being admitted.
    func noteRedis(answering: Bool, reason: String?) {
        guard global != nil else { return }
        switchMode(to: answering ? "global" : "local", reason: reason)
    }

    private func switchMode(to new: String, reason: String?) {
        let old = mode.withLock { m -> String in
            let o = m
            m = new
            return o
        }
        guard old != new else { return }
        metrics?.add("llmp_limiter_mode_switches_total", [new])
        if new == "global" {
            log.info("limiter mode: global (Redis answering)")
        } else {
            log.warning("limiter mode: local share (Redis unavailable)", [("policy", .string(policy.rawValue)), ("reason", .string(reason ?? ""))])
        }
    }
}

/// Node heartbeats in a Redis sorted set (`llmp:nodes`, scored by time): the count of nodes seen in the
/// last few seconds sets each node's share of the limits while Redis is away (the last count is kept).
/// Each round also tells the limiter whether Redis answered, so its mode follows Redis within a second.
final class NodeHeartbeat: @unchecked Sendable {
    let connection: RedisConnection
    let nodeID: String
    let limiter: Limiter
    let log: Logger
    private var task: Task<Void, Never>?
    let liveNodes = LockedBox(1)
    static let key = "llmp:nodes"
    static let windowSeconds = 5.0

    init(connection: RedisConnection, nodeID: String, limiter: Limiter, log: Logger) {
        self.connection = connection
        self.nodeID = nodeID
        self.limiter = limiter
        self.log = log
    }

    func start() {
        task = Task.detached { [self] in
            // Give the connection its first connect (a second at most) before a round can call Redis away.
            for _ in 0..<20 where connection.health != .ready && !Task.isCancelled {
                try? await Task.sleep(for: .milliseconds(50))
            }
            while !Task.isCancelled {
                do {
                    let now = wallClockSeconds()
                    try await connection.zadd(Self.key, score: now, member: nodeID)
                    try await connection.zremRangeByScore(Self.key, min: "-inf", max: String(now - Self.windowSeconds * 6))
                    let n = max(1, Int(try await connection.zcount(Self.key, min: now - Self.windowSeconds, max: .infinity)))
                    let previous = liveNodes.withLock { v -> Int in
                        let p = v
                        v = n
                        return p
                    }
                    limiter.local.share.withLock { $0 = 1 / Double(n) }
                    if previous != n { log.info("live nodes", [("count", .int(n))]) }
                    limiter.noteRedis(answering: true, reason: nil)
                } catch {
                    // Keep the last count: it is the best guess of how many nodes share the limits now.
                    limiter.noteRedis(answering: false, reason: "heartbeat: \(error)")
                }
                try? await Task.sleep(for: .seconds(1))
            }
        }
    }

    func stop() {
        task?.cancel()
        Task { [connection, nodeID] in _ = try? await connection.send(["ZREM", Self.key, nodeID]) }
    }
}
