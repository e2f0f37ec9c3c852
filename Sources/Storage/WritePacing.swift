import Glibc

/// How a usage write shares a core with the event loops: after each step (a statement of rows) the
/// writer sleeps `factor` times the CPU time the step took, so it never holds a core for more than one
/// step (~0.1–0.2 ms) and takes at most 1/(1+factor) of it.
///
/// Why not nice values alone: with nothing waking the event loop (a saturated loop never sleeps), the
/// kernel switches threads only at its tick (4 ms at HZ=250), so a writer that runs without sleeping
/// holds the core for a whole tick and every request in flight waits that long (p99 ~4 ms at 16
/// connections on one core); and a nice-19 writer gets so little of a saturated core that usage piles up.
/// A writer that sleeps wakes with the scheduler's credit for the time it slept and preempts at once,
/// runs one short step and sleeps again: the loop is held off for one step at a time.
struct WritePacing: Sendable {
    /// Sleep per unit of CPU used.
    let factor: Double

    /// `.background`: at most a quarter of a core, for records that are keeping up; `.normal`: up to
    /// two thirds, to catch up a backlog; `.urgent`: no pause (a backlog near its cap, the final flush).
    /// The pauses cost a writer alone on its core: `bench/storage.sh 100000 0 1 500` on SQLite, 130–148k
    /// records/s unpaced, ~110k on the normal lane.
    init(_ lane: StoreLane) {
        switch lane {
        case .background: factor = 3
        case .normal: factor = 0.5
        case .urgent: factor = 0
        }
    }

    /// Runs `step`, then sleeps in proportion to the CPU time it took.
    func step<T>(_ step: () throws -> T) rethrows -> T {
        let start = Self.threadCPUNanos()
        let result = try step()
        let sleepMicros = Double(Self.threadCPUNanos() &- start) * factor / 1000
        if sleepMicros >= 1 { usleep(UInt32(min(sleepMicros, 100_000))) }
        return result
    }

    private static func threadCPUNanos() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts)
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }
}
