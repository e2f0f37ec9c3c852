/// Prometheus metrics, kept in memory and rendered in the text exposition format (0.0.4).
///
/// Label values with unbounded variety (virtual key ids, models) are capped per metric: past
/// `maxSeries` distinct label sets, new ones are counted under `other`.
///
/// `@unchecked Sendable`: all state is behind `state`'s lock; updates are a dictionary write each.
public final class Metrics: @unchecked Sendable {
    /// Classes, not structs: an update looks its metric up and changes it in place, where a struct in a
    /// dictionary would go through the dictionary's modify accessor (a heap-allocated coroutine frame per
    /// update).
    final class Counter {
        let help: String
        var values: [[String]: Double] = [:]
        let labelNames: [String]

        init(help: String, labelNames: [String]) {
            self.help = help
            self.labelNames = labelNames
        }

        /// In place: the dictionary is never copied (a copy per update grows with the number of series).
        func add(_ labels: [String], _ value: Double, maxSeries: Int) {
            if let i = values.index(forKey: labels) {
                values.values[i] += value  // one hash of the labels for a series seen before
            } else if values.count >= maxSeries {
                values[labels.map { _ in "other" }, default: 0] += value
            } else {
                values[labels] = value
            }
        }
    }

    struct Series {
        var counts: [UInt64]
        var sum: Double = 0
        var count: UInt64 = 0
    }

    final class Histogram {
        let help: String
        let labelNames: [String]
        let buckets: [Double]
        /// Series in first-seen order, found through `index`; `last` remembers the previous update's
        /// series, so the common case (the same labels again) compares strings instead of hashing them.
        var keys: [[String]] = []
        var values: [Series] = []
        var index: [[String]: Int] = [:]
        var last = -1

        init(help: String, labelNames: [String], buckets: [Double]) {
            self.help = help
            self.labelNames = labelNames
            self.buckets = buckets
        }

        var series: [(labels: [String], series: Series)] { Array(zip(keys, values)) }

        func observe(_ labels: [String], _ value: Double, maxSeries: Int) {
            let n: Int
            if last >= 0, keys[last] == labels {
                n = last
            } else if let found = index[labels] {
                n = found
            } else {
                n = slot(keys.count < maxSeries ? labels : labels.map { _ in "other" })
            }
            record(n, value)
        }

        /// The series for `key`, added if new.
        private func slot(_ key: [String]) -> Int {
            if let found = index[key] { return found }
            keys.append(key)
            values.append(Series(counts: Array(repeating: 0, count: buckets.count)))
            index[key] = keys.count - 1
            return keys.count - 1
        }

        /// Replaces a series with totals kept elsewhere: `perBucket` holds each bucket's own count (not
        /// cumulative) and, last, the count above the largest bucket.
        func set(_ labels: [String], perBucket: [UInt64], sum: Double) {
            let n = slot(labels)
            var running: UInt64 = 0
            for i in 0..<buckets.count {
                running += i < perBucket.count ? perBucket[i] : 0
                values[n].counts[i] = running
            }
            values[n].count = perBucket.reduce(0, +)
            values[n].sum = sum
        }

        private func record(_ n: Int, _ value: Double) {
            last = n
            // Buckets are cumulative: every bucket from the first one holding `value` counts it.
            let first = buckets.firstIndex { value <= $0 } ?? buckets.count
            values[n].sum += value
            values[n].count += 1
            for i in first..<buckets.count { values[n].counts[i] += 1 }
        }
    }

    struct State {
        var counters: [String: Counter] = [:]
        var gauges: [String: Counter] = [:]
        var histograms: [String: Histogram] = [:]
    }

    private let state = LockedBox(State())
    let maxSeries: Int
    /// Gauges read at scrape time (open connections, queue depth…).
    private let collectors = LockedBox<[@Sendable (Metrics) -> Void]>([])

    public static let latencyBuckets: [Double] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120]

    public init(maxSeries: Int = 1000) {
        self.maxSeries = maxSeries
    }

    public func counter(_ name: String, help: String, labels: [String] = []) {
        state.withLock { $0.counters[name] = $0.counters[name] ?? Counter(help: help, labelNames: labels) }
    }

    public func gauge(_ name: String, help: String, labels: [String] = []) {
        state.withLock { $0.gauges[name] = $0.gauges[name] ?? Counter(help: help, labelNames: labels) }
    }

    public func histogram(_ name: String, help: String, labels: [String] = [], buckets: [Double] = Metrics.latencyBuckets) {
        state.withLock { $0.histograms[name] = $0.histograms[name] ?? Histogram(help: help, labelNames: labels, buckets: buckets) }
    }

    public func add(_ name: String, _ labels: [String] = [], _ value: Double = 1) {
        state.withLock { $0.counters[name]?.add(labels, value, maxSeries: maxSeries) }
    }

    /// Sets a counter to a total kept elsewhere (read at scrape time).
    public func setTotal(_ name: String, _ labels: [String] = [], _ value: Double) {
        state.withLock { $0.counters[name]?.values[labels] = value }
    }

    public func set(_ name: String, _ labels: [String] = [], _ value: Double) {
        state.withLock { $0.gauges[name]?.values[labels] = value }
    }

    /// Sets a histogram series to totals kept elsewhere (read at scrape time); see `Histogram.set`.
    func setHistogram(_ name: String, _ labels: [String], perBucket: [UInt64], sum: Double) {
        state.withLock { $0.histograms[name]?.set(labels, perBucket: perBucket, sum: sum) }
    }

    public func observe(_ name: String, _ labels: [String] = [], _ value: Double) {
        state.withLock { $0.histograms[name]?.observe(labels, value, maxSeries: maxSeries) }
    }

    public func onScrape(_ collect: @escaping @Sendable (Metrics) -> Void) {
        collectors.withLock { $0.append(collect) }
    }

    /// The exposition text.
    public func render() -> String {
        for c in collectors.withLock({ $0 }) { c(self) }
        return state.withLock { s in
            var out = ""
            func labelText(_ names: [String], _ values: [String], extra: (String, String)? = nil) -> String {
                var pairs = zip(names, values).map { "\($0.0)=\"\(escape($0.1))\"" }
                if let (k, v) = extra { pairs.append("\(k)=\"\(v)\"") }
                return pairs.isEmpty ? "" : "{" + pairs.joined(separator: ",") + "}"
            }
            for name in s.counters.keys.sorted() {
                let c = s.counters[name]!
                out += "# HELP \(name) \(c.help)\n# TYPE \(name) counter\n"
                for (labels, v) in c.values.sorted(by: { $0.key.lexicographicallyPrecedes($1.key) }) {
                    out += "\(name)\(labelText(c.labelNames, labels)) \(format(v))\n"
                }
            }
            for name in s.gauges.keys.sorted() {
                let g = s.gauges[name]!
                out += "# HELP \(name) \(g.help)\n# TYPE \(name) gauge\n"
                for (labels, v) in g.values.sorted(by: { $0.key.lexicographicallyPrecedes($1.key) }) {
                    out += "\(name)\(labelText(g.labelNames, labels)) \(format(v))\n"
                }
            }
            for name in s.histograms.keys.sorted() {
                let h = s.histograms[name]!
                out += "# HELP \(name) \(h.help)\n# TYPE \(name) histogram\n"
                for (labels, e) in h.series.sorted(by: { $0.labels.lexicographicallyPrecedes($1.labels) }) {
                    for (i, b) in h.buckets.enumerated() {
                        out += "\(name)_bucket\(labelText(h.labelNames, labels, extra: ("le", format(b)))) \(e.counts[i])\n"
                    }
                    out += "\(name)_bucket\(labelText(h.labelNames, labels, extra: ("le", "+Inf"))) \(e.count)\n"
                    out += "\(name)_sum\(labelText(h.labelNames, labels)) \(format(e.sum))\n"
                    out += "\(name)_count\(labelText(h.labelNames, labels)) \(e.count)\n"
                }
            }
            return out
        }
    }

    private func escape(_ s: String) -> String {
        var out = ""
        for ch in s {
            switch ch {
            case "\\": out += "\\\\"
            case "\"": out += "\\\""
            case "\n": out += "\\n"
            default: out.append(ch)
            }
        }
        return out
    }

    private func format(_ v: Double) -> String {
        if v == v.rounded(), abs(v) < 1e15 { return String(Int64(v)) }
        return String(v)
    }
}

/// The node's metric names, declared once.
enum NodeMetrics {
    static func register(_ m: Metrics) {
        m.counter("llmp_requests_total", help: "Requests answered, by route, provider and status.", labels: ["route", "provider", "status"])
        m.histogram("llmp_request_duration_seconds", help: "Time from request to the end of the response.", labels: ["route"])
        m.histogram("llmp_upstream_duration_seconds", help: "Time spent waiting on the provider.", labels: ["provider"])
        m.histogram("llmp_proxy_overhead_seconds", help: "Time not spent waiting on the provider (to its response head).", labels: [])
        m.counter("llmp_tokens_total", help: "Tokens by virtual key id, model and kind (prompt or completion).", labels: ["vkey", "model", "kind"])
        m.counter("llmp_rate_limited_total", help: "Requests refused by a limit, by kind.", labels: ["kind"])
        m.gauge("llmp_limiter_mode", help: "1 for the limiter's current mode (global or local).", labels: ["mode"])
        m.counter("llmp_limiter_fallbacks_total", help: "Admissions that fell back to local buckets because Redis did not answer.")
        m.counter("llmp_limiter_mode_switches_total", help: "Switches between global and local limiter mode, by the mode switched to.", labels: ["to"])
        m.gauge("llmp_redis_up", help: "1 while the node's Redis connections are ready.")
        m.histogram("llmp_redis_command_duration_seconds", help: "Limiter calls to Redis (admission), successful or not.", labels: [])
        m.counter("llmp_redis_errors_total", help: "Limiter calls to Redis that failed or missed their deadline.")
        m.histogram("llmp_store_duration_seconds", help: "Store operations on the request path and the usage writer.", labels: ["op"])
        m.counter("llmp_store_errors_total", help: "Store operations that failed (key lookups, usage writes, usage pruning rounds).", labels: ["op"])
        m.gauge("llmp_open_connections", help: "Open client connections.")
        m.gauge("llmp_open_streams", help: "Responses being streamed now.")
        m.gauge("llmp_usage_queue_depth", help: "Usage records waiting to be written.")
        m.counter("llmp_usage_dropped_total", help: "Usage records dropped because the queue was full (should stay 0).")
        m.counter("llmp_usage_written_total", help: "Usage records written to the store.")
        m.counter("llmp_usage_pruned_total", help: "Usage records this node deleted for being older than --usage-retention.")
        m.counter("llmp_upstream_connections_opened_total", help: "Connections the node's own HTTP/1.1 client opened to plain-HTTP providers.")
        m.counter("llmp_upstream_retries_total", help: "Calls started over on a new connection because a kept-alive one to the provider died under them.")
        m.gauge("llmp_upstream_idle_connections", help: "Kept-alive connections to plain-HTTP providers waiting for the next call.")
        m.counter("llmp_usage_batches_total", help: "Usage transactions written (one or more batches of records each), by lane: background (nice 19), catch-up (the writer fell behind) or urgent.", labels: ["lane"])
        m.gauge("llmp_key_cache_entries", help: "Virtual keys cached in memory.")
    }
}
