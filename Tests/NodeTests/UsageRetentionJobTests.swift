import Storage
import Testing
import TestSupport
@testable import Node

@Suite struct UsageRetentionJobTests {
    @Test func roundsComeEveryQuarterRetentionBetweenASecondAndAnHour() {
        #expect(UsageRetention.interval(forRetention: 2000) == 1000)
        #expect(UsageRetention.interval(forRetention: 20_000) == 5000)
        #expect(UsageRetention.interval(forRetention: 90 * 86_400_000) == 3_600_000)
    }

    @Test func aRoundDeletesWhatIsPastTheRetentionAndRetriesAfterAFailure() async throws {
        let store = FlakyUsageStore(try StoreFactory.open(url: TestServers.tempSQLiteURL()))
        try await store.migrate()
        let now = nowMillis()
        let records = (0..<25).map { i in
            let t = i < 15 ? now - 600_000 + Int64(i) : now - Int64(i)  // 15 ten minutes old, 10 fresh
            return UsageRecord(id: Identifiers.makeTimeOrdered("u", millis: t), virtualKeyID: "vk", connectionID: "c", model: "m", promptTokens: 1,
                               completionTokens: 1, statusCode: 200, latencyMillis: 1, stream: false, startedAt: t, endedAt: t, nodeID: "n")
        }
        try await store.insertUsage(records)
        let job = UsageRetention(store: store, log: Logger(level: .error), retentionMillis: 60_000, batch: 4)

        store.down.withLock { $0 = true }
        #expect(await job.pruneOnce() == nil)
        #expect(job.failedRounds == 1 && job.pruned == 0)
        store.down.withLock { $0 = false }
        #expect(await job.pruneOnce() == 15)  // in batches of 4
        #expect(await job.pruneOnce() == 0)
        #expect(job.pruned == 15 && job.failedRounds == 1)
        #expect(try await store.usageTotals(UsageQuery()).first?.requests == 10)
        await store.close()
    }
}
