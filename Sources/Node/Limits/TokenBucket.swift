/// A token bucket: `capacity` at most, refilled at `ratePerSecond`, taken from in whole or fractional
/// amounts. It may go below zero (debt) when usage is settled after the fact; later takes wait it out.
/// Time is passed in (seconds, monotonic), so the maths is testable without a clock.
struct TokenBucket: Sendable, Equatable {
    var capacity: Double
    var ratePerSecond: Double
    private(set) var level: Double
    private(set) var updatedAt: Double

    init(capacity: Double, ratePerSecond: Double, now: Double) {
        self.capacity = capacity
        self.ratePerSecond = ratePerSecond
        level = capacity
        updatedAt = now
    }

    mutating func refill(now: Double) {
        if now > updatedAt {
            level = min(capacity, level + (now - updatedAt) * ratePerSecond)
            updatedAt = now
        }
    }

    /// Level after refilling to `now`, without changing the bucket.
    func level(at now: Double) -> Double {
        now > updatedAt ? min(capacity, level + (now - updatedAt) * ratePerSecond) : level
    }

    /// Seconds until `amount` is available (0 if it is now; infinity if it never fits).
    func wait(for amount: Double, now: Double) -> Double {
        let l = level(at: now)
        if l >= amount { return 0 }
        if amount > capacity || ratePerSecond <= 0 { return .infinity }
        return (amount - l) / ratePerSecond
    }

    /// Seconds until the bucket is full again.
    func timeToFull(now: Double) -> Double {
        let l = level(at: now)
        return ratePerSecond > 0 ? max(0, (capacity - l) / ratePerSecond) : 0
    }

    mutating func take(_ amount: Double, now: Double) {
        refill(now: now)
        level -= amount
    }

    /// Adds (refund) or removes (charge) after the fact; never above capacity, may go into debt.
    mutating func adjust(by delta: Double, now: Double) {
        refill(now: now)
        level = min(capacity, level + delta)
    }

    /// Adopts new limits, keeping the current fill as far as it fits.
    mutating func reconfigure(capacity: Double, ratePerSecond: Double, now: Double) {
        refill(now: now)
        self.capacity = capacity
        self.ratePerSecond = ratePerSecond
        level = min(level, capacity)
    }
}

/// A key's limits as the limiter sees them.
struct KeyLimitsConfig: Sendable, Equatable {
    /// Request bucket: capacity (burst) and refill per second; nil = unlimited.
    var requests: (capacity: Double, perSecond: Double)?
    /// Token bucket: capacity (tokens per minute) refilled over a minute; nil = unlimited.
    var tokens: (capacity: Double, perSecond: Double)?
    var maxConcurrent: Int

    init(tps: Double, burst: Double, tokensPerMinute: Int64, maxConcurrent: Int) {
        requests = tps > 0 ? (capacity: burst > 0 ? burst : max(1, tps), perSecond: tps) : nil
        tokens = tokensPerMinute > 0 ? (capacity: Double(tokensPerMinute), perSecond: Double(tokensPerMinute) / 60) : nil
        self.maxConcurrent = maxConcurrent
    }

    var isUnlimited: Bool { requests == nil && tokens == nil && maxConcurrent == 0 }

    static func == (a: KeyLimitsConfig, b: KeyLimitsConfig) -> Bool {
        a.requests?.capacity == b.requests?.capacity && a.requests?.perSecond == b.requests?.perSecond
            && a.tokens?.capacity == b.tokens?.capacity && a.tokens?.perSecond == b.tokens?.perSecond && a.maxConcurrent == b.maxConcurrent
    }
}

/// The limiter's answer for one request.
struct AdmissionDecision: Sendable, Equatable {
    enum Denial: Sendable, Equatable {
        case requests
        case tokens
        case concurrency
        /// The request's token estimate alone exceeds the bucket: it can never pass.
        case tooLarge
        /// Redis could not be asked and the policy is fail-closed.
        case limiterUnavailable
    }

    var denied: Denial?
    /// Seconds to wait before retrying (when denied).
    var retryAfter: Double
    var requestLimit: Double?
    var requestsRemaining: Double?
    var requestsReset: Double?
    var tokenLimit: Double?
    var tokensRemaining: Double?
    var tokensReset: Double?

    var allowed: Bool { denied == nil }
}
