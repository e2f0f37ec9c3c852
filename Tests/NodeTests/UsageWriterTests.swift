import Storage
import Testing
import TestSupport
@testable import Node

@Suite struct UsageWriterTests {
    func record(_ i: Int) -> UsageRecord {
        UsageRecord(id: "u\(i)", virtualKeyID: "vk", connectionID: "c", model: "m", promptTokens: 1, completionTokens: 2, statusCode: 200,
                    latencyMillis: 1, stream: false, startedAt: Int64(i), endedAt: Int64(i), nodeID: "n")
    }

    /// A store on a fresh SQLite file, migrated, that can fail on demand and records each batch's lane.
    func migratedStore() async throws -> FlakyUsageStore {
        let store = FlakyUsageStore(try StoreFactory.open(url: TestServers.tempSQLiteURL()))
        try await store.migrate()
        return store
    }

    func record(_ i: Int, endedAt: Int64) -> UsageRecord {
        var r = record(i)
        r.endedAt = endedAt
        return r
    }

    @Test func recordsAcceptedDuringAnOutageAreWrittenWhenTheStoreReturns() async throws {
        let store = try await migratedStore()
        let writer = UsageWriter(store: store, log: Logger(level: .error), capacity: 1000, batchSize: 100)
        store.down.withLock { $0 = true }
        for i in 0..<250 { writer.record(record(i)) }
        #expect(await writer.flushOnce() == false)
        #expect(writer.depth == 250)
        store.down.withLock { $0 = false }
        #expect(await writer.flushOnce())
        #expect(writer.depth == 0)
        #expect(try await store.usageTotals(UsageQuery()).first?.requests == 250)
        await store.close()
    }

    @Test func theQueueIsBoundedAndCountsWhatItDrops() async throws {
        let store = try await migratedStore()
        let writer = UsageWriter(store: store, log: Logger(level: .error), capacity: 10, batchSize: 5)
        store.down.withLock { $0 = true }
        for i in 0..<15 { writer.record(record(i)) }
        #expect(writer.depth == 10)
        #expect(writer.dropped == 5)
        store.down.withLock { $0 = false }
        await writer.shutdown(deadlineNanos: 5_000_000_000)
        #expect(try await store.usageTotals(UsageQuery()).first?.requests == 10)
        await store.close()
    }

    /// The store fails in the middle of a flush: what was written stays written, the rest goes back ahead
    /// of records that arrived meanwhile, and everything is written exactly once when the store returns.
    @Test func aFailureMidFlushKeepsOrderAndLosesNothing() async throws {
        let store = try await migratedStore()
        let writer = UsageWriter(store: store, log: Logger(level: .error), capacity: 1000, batchSize: 10, transactionRecords: 10)
        for i in 0..<35 { writer.record(record(i)) }
        store.failingInsert.withLock { $0 = 3 }  // batches 0-9 and 10-19 go in, 20-29 fails
        #expect(await writer.flushOnce() == false)
        #expect(writer.depth == 15)
        #expect(try await store.usageTotals(UsageQuery()).first?.requests == 20)
        for i in 35..<40 { writer.record(record(i)) }
        #expect(writer.depth == 20)
        // Back for one batch only: it must be the oldest unwritten records (20-29), not the newest.
        store.down.withLock { $0 = false }
        store.failingInsert.withLock { $0 = 2 }
        #expect(await writer.flushOnce() == false)
        let partial = Set(try await store.usageRecords(UsageQuery(), limit: 100).map(\.id))
        #expect(partial == Set((0..<30).map { "u\($0)" }))
        store.down.withLock { $0 = false }
        #expect(await writer.flushOnce())
        #expect(writer.depth == 0)
        let rows = try await store.usageRecords(UsageQuery(), limit: 100)
        #expect(rows.count == 40)
        #expect(Set(rows.map(\.id)) == Set((0..<40).map { "u\($0)" }))
        await store.close()
    }

    func ids(_ r: Range<Int>) -> [String] { r.map { "u\($0)" } }

    /// Queues `first` records, flushes with the store's second insert failing, queues `then` more and
    /// flushes again with the store back: the ids of every insert attempted, and the writer's totals.
    func flushThroughAFailure(batchSize: Int, transactionRecords: Int, first: Int, then: Int) async throws -> (inserts: [[String]], depth: Int, written: Int, stored: Int64?) {
        let store = try await migratedStore()
        let writer = UsageWriter(store: store, log: Logger(level: .error), capacity: 1000, batchSize: batchSize, transactionRecords: transactionRecords)
        for i in 0..<first { writer.record(record(i)) }
        store.failingInsert.withLock { $0 = 2 }
        #expect(await writer.flushOnce() == false)
        for i in first..<(first + then) { writer.record(record(i)) }
        store.down.withLock { $0 = false }
        #expect(await writer.flushOnce())
        let stored = try await store.usageTotals(UsageQuery()).first?.requests
        await store.close()
        return (store.batches.withLock { $0 }, writer.depth, writer.written, stored)
    }

    /// Records are batched as they arrive: a flush hands the store each full batch and then the one being
    /// filled, oldest first; a batch that failed is retried whole, ahead of batches begun since.
    @Test func batchesAreCutAsRecordsArriveAndRetriedWhole() async throws {
        let r = try await flushThroughAFailure(batchSize: 4, transactionRecords: 4, first: 10, then: 3)
        #expect(r.inserts == [ids(0..<4), ids(4..<8), ids(4..<8), ids(8..<10), ids(10..<13)])
        #expect(r.depth == 0 && r.written == 13 && r.stored == 13)
    }

    /// A backlog goes to the store in transactions of whole batches, up to `transactionRecords` records
    /// each, oldest first; a transaction that failed is retried whole, ahead of records that came since.
    @Test func aBacklogIsWrittenInTransactionsOfWholeBatches() async throws {
        let r = try await flushThroughAFailure(batchSize: 4, transactionRecords: 10, first: 19, then: 3)
        // Batches of 4: two (8 records) fit in 10, a third would not. The failed transaction's batches go
        // back whole; the short batch the first flush took (16-18) and the one filled since (19-21) share
        // the last transaction.
        #expect(r.inserts == [ids(0..<8), ids(8..<16), ids(8..<16), ids(16..<22)])
        #expect(r.depth == 0 && r.written == 22 && r.stored == 22)
    }

    /// Fresh records go to the background lane; a batch whose oldest record waited past the catch-up
    /// limit goes to the normal lane; the final flush to the urgent one.
    @Test func batchesUseTheBackgroundLaneUntilTheWriterFallsBehind() async throws {
        let store = try await migratedStore()
        let writer = UsageWriter(store: store, log: Logger(level: .error), capacity: 1000, batchSize: 10, transactionRecords: 10, catchUpAfterMillis: 2000)
        let now = nowMillis()
        for i in 0..<10 { writer.record(record(i, endedAt: now)) }
        for i in 10..<20 { writer.record(record(i, endedAt: now - 5000)) }
        #expect(await writer.flushOnce())
        for i in 20..<30 { writer.record(record(i, endedAt: now)) }
        await writer.shutdown(deadlineNanos: 5_000_000_000)
        #expect(store.lanes.withLock { $0 } == [.background, .normal, .urgent])
        #expect(try await store.usageTotals(UsageQuery()).first?.requests == 30)
        await store.close()
    }

    /// A long queue is falling behind even while its records are fresh: catch up on the normal lane.
    @Test func aLongQueueOfFreshRecordsGoesToTheNormalLane() async throws {
        let store = try await migratedStore()
        let writer = UsageWriter(store: store, log: Logger(level: .error), capacity: 1000, batchSize: 10, transactionRecords: 10, catchUpDepth: 15)
        for i in 0..<10 { writer.record(record(i, endedAt: nowMillis())) }
        #expect(await writer.flushOnce())
        for i in 10..<30 { writer.record(record(i, endedAt: nowMillis())) }
        #expect(await writer.flushOnce())
        // Ten waiting: background. Twenty: the first batch to the normal lane; with ten left, background again.
        #expect(store.lanes.withLock { $0 } == [.background, .normal, .background])
        #expect(try await store.usageTotals(UsageQuery()).first?.requests == 30)
        await store.close()
    }

    /// Half way to the capacity the writer stops pacing itself: losing records is worse than a slower request.
    @Test func aQueueHalfWayToItsCapacityGoesToTheUrgentLane() async throws {
        let store = try await migratedStore()
        let writer = UsageWriter(store: store, log: Logger(level: .error), capacity: 40, batchSize: 10, transactionRecords: 10, catchUpDepth: 5)
        for i in 0..<20 { writer.record(record(i, endedAt: nowMillis())) }
        #expect(await writer.flushOnce())
        // 20 waiting (half of 40): urgent; then 10 (over 5): normal.
        #expect(store.lanes.withLock { $0 } == [.urgent, .normal])
        #expect(try await store.usageTotals(UsageQuery()).first?.requests == 20)
        await store.close()
    }
}
