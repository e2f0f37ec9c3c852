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
        #expect(Set(store.deleteLanes.withLock { $0 }) == [.background])
        await store.close()
    }

    @Test func aRoundThatOutlastsItsIntervalMovesToTheNormalLane() async throws {
        let store = FlakyUsageStore(try StoreFactory.open(url: TestServers.tempSQLiteURL()))
        try await store.migrate()
        let old = nowMillis() - 600_000
        try await store.insertUsage((0..<8).map { i in
            UsageRecord(id: Identifiers.makeTimeOrdered("u", millis: old + Int64(i)), virtualKeyID: "vk", connectionID: "c", model: "m", promptTokens: 1,
                        completionTokens: 1, statusCode: 200, latencyMillis: 1, stream: false, startedAt: old + Int64(i), endedAt: old + Int64(i), nodeID: "n")
        })
        // Retention 2 s: rounds every second. Batches of one that take 300 ms each: the round outlasts it.
        let job = UsageRetention(store: store, log: Logger(level: .error), retentionMillis: 2000, batch: 1)
        store.deleteDelayMillis.withLock { $0 = 300 }
        #expect(await job.pruneOnce() == 8)
        let lanes = store.deleteLanes.withLock { $0 }
        #expect(lanes.count == 9)  // eight records, then one empty batch
        // Background first; after about a second (three or four batches; fewer on a loaded machine) the
        // normal lane, and it stays there.
        #expect(lanes.first == .background)
        #expect(lanes.suffix(4).allSatisfy { $0 == .normal })
        let firstNormal = try #require(lanes.firstIndex(of: .normal))
        #expect(lanes[firstNormal...].allSatisfy { $0 == .normal })
        await store.close()
    }
}
