import Glibc

/// How a usage write shares a core with the event loops: a paced step (a batch's transaction) sleeps
/// `factor` times the CPU time it used since its last pause, at its end and at pace points: between
/// statements (`WritePacing.point()`) and, on the catch-up lane, inside the driver
/// (`WritePacing.driverPoint()`: SQLite's progress handler and `PacedVFS`) once `sliceNanos` have passed
/// since the last pause. So it takes at most 1/(1+factor) of a core, and holds it for one statement (the
/// background lane) or one slice (the catch-up lane) at a time.
///
/// Why not nice values alone: with nothing waking the event loop (a saturated loop never sleeps), the
/// kernel switches threads only at its tick (4 ms at HZ=250), so a writer that runs without sleeping
/// holds the core for a whole tick and every request in flight waits that long (p99 ~4 ms at 16
/// connections on one core); and a nice-19 writer gets so little of a saturated core that usage piles up.
/// A writer that sleeps wakes with the scheduler's credit for the time it slept and preempts at once,
/// runs one short slice and sleeps again: the loop is held off for one slice at a time.
struct WritePacing: Sendable {
    /// Sleep per unit of CPU used.
    let factor: Double
    /// Whether the step pauses in slices, at the driver's pace points too (`WritePacing.driverPoint()`),
    /// or after each statement only.
    let insideDriver: Bool

    /// How long a writer paced in slices runs before a pace point makes it sleep. 200 µs against 80 µs, four
    /// alternated pairs at 16 connections (`bench/ab.sh`): +10% req/s (fewer sleeps and wake-ups), p99 alike.
    static let sliceNanos: UInt64 = 200_000

    /// `.background` and `.normal` (records keeping up, on a nice-19 thread; a backlog, on nice-5 ones):
    /// at most a quarter of a core; `.urgent`: no pause (a backlog half way to its cap, the final flush).
    /// The quarter caps one paced writer at ~80k records/s at this machine's ~3 µs of CPU a record (SQLite;
    /// 130–148k unpaced, `bench/storage.sh 100000 0 1 500`) — ~1.8× what a saturated loop core produces;
    /// past that the backlog grows to the urgent lane's threshold and is written unpaced. `.normal` had two
    /// thirds of a core (0.5) until session 10: a backlog was then written in bursts that held a saturated
    /// loop's core ~60% of the time; at 3, four alternated pairs at 16 connections (`bench/ab.sh`): p99
    /// 1.12–1.16 -> 0.74–0.81 ms (1.5 in between: 0.85–0.98), req/s alike (−0.5%).
    init(_ lane: StoreLane) {
        switch lane {
        case .background: factor = 3
        case .normal: factor = 3
        case .urgent: factor = 0
        }
        // Slices only where a loop does not preempt the writer (nice-5 threads on a saturated core). The
        // background lane's nice-19 thread gives way to a waking loop at once; in slices it added ~10% to
        // the one-connection p99 (six alternated pairs, 0 of 6), after each statement it is as before.
        insideDriver = lane == .normal
    }

    /// Runs `step` with this thread's pace points active, then sleeps for the CPU time used since the
    /// last pause.
    func step<T>(_ step: () throws -> T) rethrows -> T {
        guard factor > 0 else { return try step() }
        let pace = PacePoint.current
        pace.start(factor: factor, insideDriver: insideDriver)
        defer { pace.finish() }
        return try step()
    }

    /// Called between a paced step's statements: sleeps (in slices: if the step has run a slice since its
    /// last pause, else a clock read). Nothing on a thread without a paced step.
    static func point() { PacePoint.current.point() }

    /// Called by the store's driver while it works (SQLite: its progress handler and `PacedVFS`): as
    /// `point()`, on the lanes that pause inside the driver.
    static func driverPoint() {
        let pace = PacePoint.current
        if pace.insideDriver { pace.point() }
    }
}

/// One thread's pacing state (`WritePacing`), in a thread-specific slot.
final class PacePoint {
    private var factor: Double = 0
    private(set) var insideDriver = false
    private var markCPU: UInt64 = 0
    private var markWall: UInt64 = 0
    /// Pauses this thread has taken at pace points (for tests).
    private(set) var pauses = 0

    private static let key: pthread_key_t = {
        var k = pthread_key_t()
        pthread_key_create(&k) { p in if let p { Unmanaged<PacePoint>.fromOpaque(p).release() } }
        return k
    }()

    static var current: PacePoint {
        if let p = pthread_getspecific(key) { return Unmanaged<PacePoint>.fromOpaque(p).takeUnretainedValue() }
        let p = PacePoint()
        pthread_setspecific(key, Unmanaged.passRetained(p).toOpaque())
        return p
    }

    func start(factor: Double, insideDriver: Bool) {
        self.factor = factor
        self.insideDriver = insideDriver
        mark()
    }

    func finish() {
        pause()
        factor = 0
        insideDriver = false
    }

    /// A pause if the step has run a slice since the last one; between statements on a lane that does
    /// not pause inside the driver, always (its unit is the statement).
    func point() {
        guard factor > 0 else { return }
        if insideDriver, Self.nanos(CLOCK_MONOTONIC) &- markWall < WritePacing.sliceNanos { return }
        pause()
        pauses += 1
        mark()
    }

    private func mark() {
        markCPU = Self.nanos(CLOCK_THREAD_CPUTIME_ID)
        markWall = Self.nanos(CLOCK_MONOTONIC)
    }

    private func pause() {
        let sleepMicros = Double(Self.nanos(CLOCK_THREAD_CPUTIME_ID) &- markCPU) * factor / 1000
        if sleepMicros >= 1 { usleep(UInt32(min(sleepMicros, 100_000))) }
    }

    private static func nanos(_ clock: clockid_t) -> UInt64 {
        var ts = timespec()
        clock_gettime(clock, &ts)
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }
}
