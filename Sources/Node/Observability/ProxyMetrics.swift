import Storage

/// The metrics every proxied request updates — its count, two or three durations and its tokens — kept
/// in a compact form and handed to `Metrics` when it is scraped (which renders them with the rest).
///
/// Through `Metrics` each request built five label arrays and hashed six metric names and five label
/// sets (5 of the ~54 allocations per request on the loop). Here a request is one lock acquisition,
/// integer-keyed durations, one hash of three integers for its count and one of its key and model for its
/// tokens.
final class ProxyMetrics: @unchecked Sendable {
    /// The labels of `llmp_requests_total`: route (index into `routes`), provider (index into
    /// `providerLabels`), status — integers, so counting a request hashes no string.
    struct RequestKey: Hashable {
        var route: Int
        var provider: Int
        var status: Int
    }

    /// Provider labels: each `Provider`, then `none` for answers given before a connection was known.
    private static let providers = Provider.allCases
    static let providerLabels = providers.map(\.rawValue) + ["none"]

    /// `p`'s index in `providerLabels` (a search of the stored cases: `allCases` may build its array per call).
    static func providerIndex(_ p: Provider?) -> Int {
        p.flatMap { providers.firstIndex(of: $0) } ?? providers.count
    }

    struct TokenKey: Hashable {
        var keyID: String
        var model: String
    }

    /// A histogram series: each bucket's own count (not cumulative), the last for above the largest bound.
    struct Series {
        var perBucket: [UInt64]
        var sum: Double = 0

        init(buckets: Int) { perBucket = Array(repeating: 0, count: buckets + 1) }

        mutating func observe(_ value: Double, bounds: [Double]) {
            var i = 0
            while i < bounds.count, value > bounds[i] { i += 1 }
            perBucket[i] += 1
            sum += value
        }
    }

    private struct State {
        var requests: [RequestKey: UInt64] = [:]
        var duration: [Series]  // by route index
        var upstream: [Series?] = Array(repeating: nil, count: ProxyMetrics.providerLabels.count)  // by provider index
        var overhead: Series
        var tokens: [TokenKey: (prompt: Int64, completion: Int64)] = [:]
    }

    /// Route labels; a request's route is an index into this, the last being `other`.
    let routes: [String]
    let bounds: [Double]
    private let maxTokenSeries: Int
    private let state: LockedBox<State>

    init(routes: [String], bounds: [Double] = Metrics.latencyBuckets, maxTokenSeries: Int = 1000) {
        self.routes = routes + ["other"]
        self.bounds = bounds
        self.maxTokenSeries = maxTokenSeries
        state = LockedBox(State(duration: Array(repeating: Series(buckets: bounds.count), count: routes.count + 1),
                                overhead: Series(buckets: bounds.count)))
    }

    /// The index of `path`'s route label (the last one, `other`, for paths outside `routes`).
    func route(_ path: Substring) -> Int {
        routes.firstIndex { path == $0 } ?? routes.count - 1
    }

    /// One request: its count and duration, the provider's share when it reached one, its tokens when
    /// they are known. Token series past `maxTokenSeries` distinct (key, model) pairs count as `other`.
    func record(route: Int, provider: Provider?, status: Int, seconds: Double, upstreamSeconds: Double?,
                tokens: (keyID: String, model: String, prompt: Int64, completion: Int64)?) {
        let provider = Self.providerIndex(provider)
        state.withLock { s in
            s.requests[RequestKey(route: route, provider: provider, status: status), default: 0] += 1
            s.duration[route].observe(seconds, bounds: bounds)
            if let upstreamSeconds {
                if s.upstream[provider] == nil { s.upstream[provider] = Series(buckets: bounds.count) }
                s.upstream[provider]!.observe(upstreamSeconds, bounds: bounds)
                s.overhead.observe(max(0, seconds - upstreamSeconds), bounds: bounds)
            }
            if let tokens {
                var key = TokenKey(keyID: tokens.keyID, model: tokens.model)
                if s.tokens.count >= maxTokenSeries, s.tokens[key] == nil { key = TokenKey(keyID: "other", model: "other") }
                func add(_ total: inout (prompt: Int64, completion: Int64)) {
                    total.prompt += tokens.prompt
                    total.completion += tokens.completion
                }
                add(&s.tokens[key, default: (0, 0)])
            }
        }
    }

    /// Writes the totals into `metrics` (call at scrape time).
    func publish(into metrics: Metrics) {
        let s = state.withLock { $0 }
        for (k, n) in s.requests {
            metrics.setTotal("llmp_requests_total", [routes[k.route], Self.providerLabels[k.provider], String(k.status)], Double(n))
        }
        for (i, series) in s.duration.enumerated() where series.perBucket.contains(where: { $0 > 0 }) {
            metrics.setHistogram("llmp_request_duration_seconds", [routes[i]], perBucket: series.perBucket, sum: series.sum)
        }
        for (i, series) in s.upstream.enumerated() {
            guard let series else { continue }
            metrics.setHistogram("llmp_upstream_duration_seconds", [Self.providerLabels[i]], perBucket: series.perBucket, sum: series.sum)
        }
        if s.overhead.perBucket.contains(where: { $0 > 0 }) {
            metrics.setHistogram("llmp_proxy_overhead_seconds", [], perBucket: s.overhead.perBucket, sum: s.overhead.sum)
        }
        for (k, t) in s.tokens {
            metrics.setTotal("llmp_tokens_total", [k.keyID, k.model, "prompt"], Double(t.prompt))
            metrics.setTotal("llmp_tokens_total", [k.keyID, k.model, "completion"], Double(t.completion))
        }
    }
}
