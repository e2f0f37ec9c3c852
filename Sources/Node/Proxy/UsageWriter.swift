import Storage

/// Queues usage records and writes them to the store in batches: every second, or sooner when a batch
/// is full. Batches go to the store's background lane (in the SQL stores a nice-19 thread that pacing
/// makes give way to the event loops, so writing does not delay requests). When the writer falls behind —
/// a batch's oldest record has waited longer than `catchUpAfterMillis`, or more than `catchUpDepth`
/// records are waiting, as when a saturated node starves the background lane — batches go to the normal
/// lane (nice-5 threads, which a saturated loop does not starve, paced as much but in slices inside the
/// store's driver); half way to `capacity`, and for the final flush, to the urgent lane (unpaced: losing
/// records would be worse than delaying requests). A failed batch stays at the head of the
/// queue and is retried with backoff, so accepted records survive a store outage; the queue holds at most
/// `capacity` records (beyond that new records are counted as dropped). `shutdown` flushes what is left.
///
/// The queue is kept as batches, each filled up to `batchSize` in an array reserved for it: a record is
/// copied once (into its batch), the flusher hands each batch to the store as it is, and a written batch is
/// freed on its own. (One growing array was copied whole at each doubling on the event loop, every record
/// was copied again into a batch, and a flush freed a second's worth of records at once: ~1.4 ms in one
/// go on the core the loop shares.)
///
/// `@unchecked Sendable`: the queue is behind a lock; the flusher is one task.
final class UsageWriter: @unchecked Sendable {
    struct State {
        /// Full batches, oldest first; then the batch being filled.
        var batches: [[UsageRecord]] = []
        var filling: [UsageRecord] = []
        /// Records in `batches` and `filling`.
        var queued = 0
        /// Taken by the flusher and not written yet (still counted against the capacity).
        var inFlight = 0
        var dropped = 0
        var written = 0
        var failures = 0
        var failedBatches = 0
        var lastError: String?
    }

    private let state = LockedBox(State())
    private let store: any Store
    private let log: Logger
    let capacity: Int
    let batchSize: Int
    /// Records one store transaction carries at most (whole batches: a backlog of several is written
    /// together).
    let transactionRecords: Int
    let catchUpAfterMillis: Int64
    let catchUpDepth: Int
    private let draining = LockedBox(false)
    private var flusher: Task<Void, Never>?
    var metrics: Metrics?

    /// `catchUpDepth` 5000: on one saturated core (~30k requests a second) the age limit alone let ~60k
    /// records wait — near the capacity, which a node with more loops would pass (bench/profile.sh).
    ///
    /// `transactionRecords` 4000: each SQLite commit writes whole to the WAL every page it changed (the
    /// records' last pages, the hour's sums); 4000 records a commit cost ~13% less a record than 500
    /// (`bash bench/usage-schema.sh`, schema 3, 100 keys in turn: 1.41 against 1.63 µs). With the per-key
    /// index of schema 1 it was 7.1 → 3.8 µs, and the difference between a saturated node dropping records
    /// and keeping up (bench/profile.sh KEYS=100).
    init(store: any Store, log: Logger, capacity: Int = 100_000, batchSize: Int = 500, transactionRecords: Int = 4000,
         catchUpAfterMillis: Int64 = 2000, catchUpDepth: Int = 5000) {
        self.transactionRecords = transactionRecords
        self.catchUpAfterMillis = catchUpAfterMillis
        self.catchUpDepth = catchUpDepth
        self.store = store
        self.log = log
        self.capacity = capacity
        self.batchSize = batchSize
    }

    func start() {
        flusher = Task.detached { [self] in
            var backoff: UInt64 = 1
            while !Task.isCancelled {
                let ok = await flushOnce()
                backoff = ok ? 1 : min(backoff * 2, 5)
                try? await Task.sleep(for: .seconds(Int(backoff)))
            }
        }
    }

    func record(_ r: UsageRecord) {
        let batchSize = batchSize
        state.withLock { s in
            if s.queued + s.inFlight >= capacity {
                s.dropped += 1
                return
            }
            if s.filling.capacity == 0 { s.filling.reserveCapacity(batchSize) }
            s.filling.append(r)
            s.queued += 1
            if s.filling.count >= batchSize {
                s.batches.append(s.filling)
                s.filling = []
            }
        }
    }

    var depth: Int { state.withLock { $0.queued + $0.inFlight } }
    var dropped: Int { state.withLock { $0.dropped } }
    var written: Int { state.withLock { $0.written } }
    var failedBatches: Int { state.withLock { $0.failedBatches } }

    /// Writes everything queued, batch by batch; false if a batch failed (it and the rest go back to the
    /// head of the queue, ahead of newer records). The batches are taken in O(1), so the event loops that
    /// add records never wait on the lock while the flusher works.
    @discardableResult
    func flushOnce() async -> Bool {
        while true {
            var taken: [[UsageRecord]] = []
            state.withLock { s in
                swap(&taken, &s.batches)
                if !s.filling.isEmpty {
                    taken.append(s.filling)
                    s.filling = []
                }
                s.inFlight = s.queued
                s.queued = 0
            }
            if taken.isEmpty { return true }
            var i = 0
            while i < taken.count {
                // Whole batches, up to `transactionRecords` records, in one transaction.
                var end = i + 1
                var count = taken[i].count
                while end < taken.count && count + taken[end].count <= transactionRecords {
                    count += taken[end].count
                    end += 1
                }
                let t0 = monotonicNanos()
                defer { metrics?.observe("llmp_store_duration_seconds", ["usage_write"], Double(monotonicNanos() - t0) / 1e9) }
                let lane = self.lane(for: taken[i])
                do {
                    try await store.insertUsage(Array(taken[i..<end]), lane: lane)
                    metrics?.add("llmp_usage_batches_total", [Self.laneLabel(lane)])
                    state.withLock { s in
                        s.inFlight -= count
                        s.written += count
                        s.failures = 0
                    }
                    // Freed now. A record owns no heap memory of its own (its id is two numbers until read,
                    // its strings are the key's, the connection's and the node's), so this is one buffer a
                    // batch. (With a 30-character id string each, a batch of 500 took ~60 µs to free and
                    // was paced with sleeps: two thread wake-ups a batch on the loops' core.)
                    for k in i..<end { taken[k] = [] }
                    i = end
                } catch {
                    let first = state.withLock { s -> Bool in
                        s.batches.insert(contentsOf: taken[i...], at: 0)
                        s.queued += s.inFlight
                        s.inFlight = 0
                        s.failures += 1
                        s.failedBatches += 1
                        s.lastError = "\(error)"
                        return s.failures == 1
                    }
                    if first {
                        log.warning("usage records not written yet; will retry", [("queued", .int(depth)), ("error", .string("\(error)"))])
                    }
                    return false
                }
            }
        }
    }

    /// The background lane while the writer keeps up; the normal one to catch up; the urgent (unpaced)
    /// one to drain on shutdown or when the queue is half way to its capacity.
    func lane(for batch: [UsageRecord]) -> StoreLane {
        if draining.withLock({ $0 }) { return .urgent }
        let waiting = depth
        if waiting >= capacity / 2 { return .urgent }
        guard let oldest = batch.first else { return .background }
        if nowMillis() - oldest.endedAt > catchUpAfterMillis { return .normal }
        return waiting > catchUpDepth ? .normal : .background
    }

    static func laneLabel(_ lane: StoreLane) -> String {
        switch lane {
        case .background: "background"
        case .normal: "catch-up"
        case .urgent: "urgent"
        }
    }

    /// Stops the timer and writes what is queued, trying until `deadlineNanos`.
    func shutdown(deadlineNanos: UInt64) async {
        draining.withLock { $0 = true }
        flusher?.cancel()
        let deadline = monotonicNanos() &+ deadlineNanos
        while depth > 0 && monotonicNanos() < deadline {
            if await flushOnce() { break }
            try? await Task.sleep(for: .milliseconds(200))
        }
        if depth > 0 {
            log.error("usage records could not be written before exit", [("lost", .int(depth))])
        }
    }
}
