import Storage

/// Keeps the usage table from growing without bound: every `interval` it deletes the usage records that
/// started more than `retentionMillis` ago (`--usage-retention`), in short batches on the store's
/// background lane, so pruning yields to request handling and to usage writes as the usage writer's own
/// background batches do. A failed round (store down) is logged and tried again at the next interval.
///
/// Every node of a cluster prunes: the deletes are idempotent, and nodes that overlap find little to do.
/// The first round comes a random part of a minute after start, so nodes started together spread out.
///
/// `@unchecked Sendable`: `task` is set once by `start`, before anything else can see it; the counters
/// are behind a lock.
final class UsageRetention: @unchecked Sendable {
    let retentionMillis: Int64
    let intervalMillis: Int64
    /// Records per transaction: ~1k rows keep a SQLite write under ~10 ms of CPU, paced on the background lane.
    let batch: Int
    private let store: any Store
    private let log: Logger
    private let counts = LockedBox((pruned: 0, failedRounds: 0, failing: false))
    private var task: Task<Void, Never>?

    /// `retentionMillis` must be positive (0, keeping everything, means no `UsageRetention` at all).
    init(store: any Store, log: Logger, retentionMillis: Int64, batch: Int = 1000) {
        precondition(retentionMillis > 0, "a retention of 0 keeps everything: do not start the job")
        self.store = store
        self.log = log
        self.retentionMillis = retentionMillis
        self.batch = batch
        intervalMillis = Self.interval(forRetention: retentionMillis)
    }

    /// A quarter of the retention, between one second and one hour: a record outlives its retention by
    /// about this at most (on a node that keeps up), and a round deletes at most this long's worth of rows.
    static func interval(forRetention retention: Int64) -> Int64 { min(max(retention / 4, 1000), 3_600_000) }

    /// Records deleted since start.
    var pruned: Int { counts.withLock { $0.pruned } }
    /// Rounds that failed since start.
    var failedRounds: Int { counts.withLock { $0.failedRounds } }

    func start() {
        let firstDelay = Int64.random(in: min(intervalMillis, 60_000) / 2...min(intervalMillis, 60_000))
        task = Task.detached { [self] in
            try? await Task.sleep(for: .milliseconds(firstDelay))
            while !Task.isCancelled {
                await pruneOnce()
                try? await Task.sleep(for: .milliseconds(intervalMillis))
            }
        }
    }

    /// One round: deletes what is older than the retention now, batch by batch (each counted as it
    /// commits). A round still running after `intervalMillis` is falling behind — a saturated core starves
    /// the background lane, while records keep expiring — so its remaining batches go to the normal lane
    /// (nice 5, lightly paced), as the usage writer's do when it falls behind. Returns how many records
    /// went, nil if the store failed.
    @discardableResult
    func pruneOnce() async -> Int? {
        let cutoff = nowMillis() - retentionMillis
        let started = monotonicNanos()
        var deleted = 0
        do {
            while !Task.isCancelled {
                let behind = monotonicNanos() - started > UInt64(intervalMillis) * 1_000_000
                let n = try await store.deleteUsage(startedBefore: cutoff, limit: batch, lane: behind ? .normal : .background)
                deleted += n
                counts.withLock { $0.pruned += n }
                if n < batch { break }
            }
            let hadFailed = counts.withLock { c -> Bool in
                defer { c.failing = false }
                return c.failing
            }
            if deleted > 0 || hadFailed {
                log.info("usage records pruned", [("deleted", .int(deleted)), ("started_before", .string(isoTimeMillis(cutoff)))])
            }
            return deleted
        } catch {
            let first = counts.withLock { c -> Bool in
                c.failedRounds += 1
                defer { c.failing = true }
                return !c.failing
            }
            if first {
                log.warning("usage records could not be pruned; will retry", [("deleted_before_failure", .int(deleted)), ("error", .string("\(error)"))])
            }
            return nil
        }
    }

    /// Stops the job, waiting for a batch in flight (the round stops between batches).
    func stop() async {
        task?.cancel()
        await task?.value
    }
}
