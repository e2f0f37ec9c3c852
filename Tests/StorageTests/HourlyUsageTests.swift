import Testing
@testable import Storage

/// The hourly sums a usage transaction adds: one row per hour, key and model, in key order, whatever order
/// the records come in (runs of one key, keys in turn, deletions taking records away).
@Suite struct HourlyUsageTests {
    @Test func recordsInRunsOrInTurnSumToOneRowPerHourKeyAndModel() {
        let hour = HourlyUsage.hourMillis
        var hourly = HourlyUsage()
        var expected: [String: (Int64, Int64, Int64)] = [:]
        for i in 0..<600 {
            // Runs of five records per key, three keys, two models, across three hours.
            let key = "vk_\((i / 5) % 3)", model = i % 7 == 0 ? "m-long-model-name-2024" : "m", at = Int64(i) * hour / 200
            let sign: Int64 = i % 11 == 0 ? -1 : 1
            hourly.add(virtualKeyID: key, model: model, startedAt: at, promptTokens: Int64(i), completionTokens: 2, sign: sign)
            let k = "\(HourlyUsage.hour(of: at))|\(key)|\(model)"
            let e = expected[k] ?? (0, 0, 0)
            expected[k] = (e.0 + sign, e.1 + sign * Int64(i), e.2 + sign * 2)
        }
        let rows = hourly.rows()
        #expect(rows.count == expected.count)
        var seen: [String: (Int64, Int64, Int64)] = [:]
        var previous: (Int64, String, String)?
        for r in rows {
            guard case .int(let h) = r[0], case .text(let key) = r[1], case .text(let model) = r[2],
                  case .int(let n) = r[3], case .int(let p) = r[4], case .int(let c) = r[5] else {
                Issue.record("unexpected row \(r)")
                continue
            }
            if let previous { #expect(previous < (h, key, model), "rows in key order") }
            previous = (h, key, model)
            seen["\(h)|\(key)|\(model)"] = (n, p, c)
        }
        #expect(seen.count == expected.count)
        for (k, e) in expected { #expect(seen[k].map { $0 == e } == true, "\(k)") }
    }
}
