/// Usage summed per hour, virtual key and model — the rows of `usage_hourly`, which the SQL stores keep in
/// the same transactions as the usage records they sum.
///
/// Why: an index on `(vkey_id, started_at)` puts each key's records on that key's own pages, so every
/// commit changed (and SQLite wrote whole, twice: WAL and checkpoint) one index page per key in it, and
/// pages split in the middle of the tree. With 100 keys in turn a record cost ~2× what it cost with one,
/// with 1000 keys ~5× (`bash bench/usage-schema.sh`: one connection, 4000-record transactions). The hourly rows are keyed hour first:
/// a transaction updates a few adjacent pages whatever the number of keys, and totals read hours, not
/// records.
struct HourlyUsage {
    static let hourMillis: Int64 = 3_600_000

    /// The start of the hour `millis` falls in. Records start at or after 1970 (`started_at >= 0`), where
    /// this is SQL's `started_at / 3600000 * 3600000` too.
    static func hour(of millis: Int64) -> Int64 { millis / hourMillis * hourMillis }

    struct Key: Hashable, Comparable {
        var hour: Int64
        var virtualKeyID: String
        var model: String

        static func < (a: Key, b: Key) -> Bool {
            (a.hour, a.virtualKeyID, a.model) < (b.hour, b.virtualKeyID, b.model)
        }
    }

    struct Sums {
        var requests: Int64 = 0
        var promptTokens: Int64 = 0
        var completionTokens: Int64 = 0
    }

    /// The rows, in the order their keys first came; `index` finds a key's row.
    private var entries: [(key: Key, sums: Sums)] = []
    private var index: [Key: Int] = [:]
    /// The row the last record went to: records come in runs of one key and model, and comparing with
    /// the last key (its strings usually the very same storage) is cheaper than hashing two strings.
    private var last = -1

    var isEmpty: Bool { entries.isEmpty }

    /// Adds a record (`sign` 1) or takes a deleted one away (`sign` -1).
    mutating func add(virtualKeyID: String, model: String, startedAt: Int64, promptTokens: Int64, completionTokens: Int64, sign: Int64 = 1) {
        func bump(_ s: inout Sums) {
            s.requests += sign
            s.promptTokens += sign * promptTokens
            s.completionTokens += sign * completionTokens
        }
        let key = Key(hour: Self.hour(of: startedAt), virtualKeyID: virtualKeyID, model: model)
        if last < 0 || entries[last].key != key {
            if let i = index[key] {
                last = i
            } else {
                last = entries.count
                index[key] = last
                entries.append((key, Sums()))
            }
        }
        bump(&entries[last].sums)
    }

    mutating func add(_ r: UsageRecord) {
        add(virtualKeyID: r.virtualKeyID, model: r.model, startedAt: r.startedAt, promptTokens: r.promptTokens, completionTokens: r.completionTokens)
    }

    /// Each row's parameters (six), in key order — the order PostgreSQL nodes lock the rows in, so two
    /// never wait on each other crosswise.
    func rows() -> [[SQLValue]] {
        entries.sorted { $0.key < $1.key }.map { k, s in
            [.int(k.hour), .text(k.virtualKeyID), .text(k.model), .int(s.requests), .int(s.promptTokens), .int(s.completionTokens)]
        }
    }

    /// `INSERT … ON CONFLICT DO UPDATE` of `rows` hourly rows that adds their sums to those stored (both
    /// SQL dialects spell it the same), `$n` placeholders.
    static func upsertSQL(rows: Int) -> String {
        var sql = "INSERT INTO usage_hourly (hour_start, vkey_id, model, requests, prompt_tokens, completion_tokens) VALUES "
        for n in 0..<rows {
            let base = n * 6
            sql += (n == 0 ? "" : ", ") + "(" + (1...6).map { "$\(base + $0)" }.joined(separator: ", ") + ")"
        }
        return sql + " ON CONFLICT (hour_start, vkey_id, model) DO UPDATE SET requests = usage_hourly.requests + excluded.requests, "
            + "prompt_tokens = usage_hourly.prompt_tokens + excluded.prompt_tokens, "
            + "completion_tokens = usage_hourly.completion_tokens + excluded.completion_tokens"
    }
}

/// A usage query's window `[since, until)` cut where hours begin: the whole hours inside it are summed
/// from `usage_hourly`, the parts of an hour at either end from the records.
struct UsageWindow: Equatable {
    /// `[from, to)`; `from` nil: from the start; `to` nil: to the end.
    struct Span: Equatable {
        var from: Int64?
        var to: Int64?
    }

    /// `[from, to)` of `started_at`; `from` nil: from the start. Always ends: a window open at its end
    /// ends in whole hours.
    struct RecordSpan: Equatable {
        var from: Int64?
        var to: Int64
    }

    /// Whole hours (`hour_start` in the span); nil when there are none.
    var hours: Span?
    /// Record ranges, at most two.
    var records: [RecordSpan]

    init(since: Int64?, until: Int64?) {
        // Records start at or after 1970: a bound before it selects what `since` 0 / nothing would.
        let since = since.map { max(0, $0) }
        if let until, until <= (since ?? 0) {
            hours = nil
            records = []
            return
        }
        let h = HourlyUsage.hourMillis
        let first = since.map { HourlyUsage.hour(of: $0) == $0 ? $0 : HourlyUsage.hour(of: $0) + h }
        let end = until.map { HourlyUsage.hour(of: $0) }
        if let first, let end, let until, first >= end {
            // Inside one hour, or across one boundary without a whole hour between.
            hours = nil
            records = [RecordSpan(from: since, to: until)]
            return
        }
        hours = Span(from: first, to: end)
        records = []
        if let since, let first, since < first { records.append(RecordSpan(from: since, to: first)) }
        if let until, let end, end < until { records.append(RecordSpan(from: end, to: until)) }
    }

    init(hours: Span?, records: [RecordSpan]) {
        self.hours = hours
        self.records = records
    }
}
