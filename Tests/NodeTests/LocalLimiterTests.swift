import Testing
@testable import Node

/// Bucket maths with an injected clock: no sleeping, no timing flakiness.
@Suite struct LocalLimiterTests {
    final class Clock: @unchecked Sendable {
        var now = 1000.0
    }

    func limiter(_ clock: Clock, share: Double = 1) -> LocalLimiter {
        LocalLimiter(shards: 4, share: share, clock: { clock.now })
    }

    @Test func burstThenRefillAtTheRequestRate() {
        let clock = Clock()
        let l = limiter(clock)
        let cfg = KeyLimitsConfig(tps: 2, burst: 0, tokensPerMinute: 0, maxConcurrent: 0)  // burst defaults to max(1, 2) = 2
        #expect(l.admit(key: "k", limits: cfg, estimatedTokens: 0).allowed)
        #expect(l.admit(key: "k", limits: cfg, estimatedTokens: 0).allowed)
        let denied = l.admit(key: "k", limits: cfg, estimatedTokens: 0)
        #expect(denied.denied == .requests)
        #expect(abs(denied.retryAfter - 0.5) < 1e-9)
        clock.now += 0.5
        #expect(l.admit(key: "k", limits: cfg, estimatedTokens: 0).allowed)
        #expect(!l.admit(key: "k", limits: cfg, estimatedTokens: 0).allowed)
    }

    @Test func fractionalRatesWork() {
        let clock = Clock()
        let l = limiter(clock)
        let cfg = KeyLimitsConfig(tps: 0.5, burst: 1, tokensPerMinute: 0, maxConcurrent: 0)
        #expect(l.admit(key: "k", limits: cfg, estimatedTokens: 0).allowed)
        let d = l.admit(key: "k", limits: cfg, estimatedTokens: 0)
        #expect(d.denied == .requests)
        #expect(abs(d.retryAfter - 2) < 1e-9)
    }

    @Test func tokenBucketTakesTheEstimateAndNothingOnDenial() {
        let clock = Clock()
        let l = limiter(clock)
        let cfg = KeyLimitsConfig(tps: 100, burst: 100, tokensPerMinute: 1000, maxConcurrent: 0)
        let a = l.admit(key: "k", limits: cfg, estimatedTokens: 600)
        #expect(a.allowed)
        #expect(a.tokensRemaining == 400)
        let b = l.admit(key: "k", limits: cfg, estimatedTokens: 600)
        #expect(b.denied == .tokens)
        #expect(abs(b.retryAfter - 12) < 1e-6)  // 200 tokens short at 1000/60 per second
        // The denial took nothing: the request bucket still has 99.
        #expect(b.requestsRemaining == 99)
        #expect(b.tokensRemaining == 400)
    }

    @Test func settlementRefundsAndChargesIntoDebt() {
        let clock = Clock()
        let l = limiter(clock)
        let cfg = KeyLimitsConfig(tps: 0, burst: 0, tokensPerMinute: 600, maxConcurrent: 0)  // 10 tokens/s
        #expect(l.admit(key: "k", limits: cfg, estimatedTokens: 100).allowed)
        l.settle(key: "k", estimatedTokens: 100, actualTokens: 1200)  // used far more than estimated
        let d = l.admit(key: "k", limits: cfg, estimatedTokens: 1)
        #expect(d.denied == .tokens)
        // 600 - 1200 = -600 in debt; 601 tokens at 10/s.
        #expect(abs(d.retryAfter - 60.1) < 1e-6)
        clock.now += 61
        #expect(l.admit(key: "k", limits: cfg, estimatedTokens: 1).allowed)
        l.settle(key: "k", estimatedTokens: 1, actualTokens: 0)
        #expect(l.admit(key: "k", limits: cfg, estimatedTokens: 0).tokensRemaining! >= 10)
    }

    @Test func anEstimateLargerThanTheBucketIsRefusedForGood() {
        let clock = Clock()
        let l = limiter(clock)
        let cfg = KeyLimitsConfig(tps: 0, burst: 0, tokensPerMinute: 1000, maxConcurrent: 0)
        let d = l.admit(key: "k", limits: cfg, estimatedTokens: 5000)
        #expect(d.denied == .tooLarge)
        let (_, error) = RateLimitResponse.refusal(d, limits: cfg, estimate: 5000)
        #expect(error.status == 400)
        #expect(error.message.contains("5000"))
    }

    @Test func concurrencyIsHeldUntilSettled() {
        let clock = Clock()
        let l = limiter(clock)
        let cfg = KeyLimitsConfig(tps: 0, burst: 0, tokensPerMinute: 0, maxConcurrent: 2)
        #expect(l.admit(key: "k", limits: cfg, estimatedTokens: 0).allowed)
        #expect(l.admit(key: "k", limits: cfg, estimatedTokens: 0).allowed)
        #expect(l.admit(key: "k", limits: cfg, estimatedTokens: 0).denied == .concurrency)
        l.settle(key: "k", estimatedTokens: 0, actualTokens: 0)
        #expect(l.admit(key: "k", limits: cfg, estimatedTokens: 0).allowed)
    }

    @Test func keysAreIndependent() {
        let clock = Clock()
        let l = limiter(clock)
        let cfg = KeyLimitsConfig(tps: 1, burst: 1, tokensPerMinute: 0, maxConcurrent: 0)
        #expect(l.admit(key: "a", limits: cfg, estimatedTokens: 0).allowed)
        #expect(l.admit(key: "b", limits: cfg, estimatedTokens: 0).allowed)
        #expect(!l.admit(key: "a", limits: cfg, estimatedTokens: 0).allowed)
    }

    @Test func aShareScalesEveryLimit() {
        let clock = Clock()
        let l = limiter(clock, share: 1.0 / 3)
        let cfg = KeyLimitsConfig(tps: 30, burst: 30, tokensPerMinute: 3000, maxConcurrent: 0)
        var admitted = 0
        for _ in 0..<30 where l.admit(key: "k", limits: cfg, estimatedTokens: 0).allowed { admitted += 1 }
        #expect(admitted == 10)
    }

    @Test func changedLimitsApplyAtOnce() {
        let clock = Clock()
        let l = limiter(clock)
        #expect(l.admit(key: "k", limits: KeyLimitsConfig(tps: 1, burst: 1, tokensPerMinute: 0, maxConcurrent: 0), estimatedTokens: 0).allowed)
        #expect(!l.admit(key: "k", limits: KeyLimitsConfig(tps: 1, burst: 1, tokensPerMinute: 0, maxConcurrent: 0), estimatedTokens: 0).allowed)
        // Unlimited now.
        #expect(l.admit(key: "k", limits: KeyLimitsConfig(tps: 0, burst: 0, tokensPerMinute: 0, maxConcurrent: 0), estimatedTokens: 0).allowed)
    }

    @Test func headersUseOpenAINamesAndDurations() {
        #expect(RateLimitResponse.formatDuration(0.25) == "250ms")
        #expect(RateLimitResponse.formatDuration(1) == "1s")
        #expect(RateLimitResponse.formatDuration(1.5) == "1.5s")
        #expect(RateLimitResponse.formatDuration(360) == "6m0s")
        #expect(RateLimitResponse.formatDuration(3723) == "1h2m3s")
        let clock = Clock()
        let d = limiter(clock).admit(key: "k", limits: KeyLimitsConfig(tps: 2, burst: 4, tokensPerMinute: 600, maxConcurrent: 0), estimatedTokens: 60)
        let h = Dictionary(uniqueKeysWithValues: RateLimitResponse.headers(d))
        #expect(h["x-ratelimit-limit-requests"] == "4")
        #expect(h["x-ratelimit-remaining-requests"] == "3")
        #expect(h["x-ratelimit-reset-requests"] == "500ms")
        #expect(h["x-ratelimit-limit-tokens"] == "600")
        #expect(h["x-ratelimit-remaining-tokens"] == "540")
        #expect(h["x-ratelimit-reset-tokens"] == "6s")
    }
}
