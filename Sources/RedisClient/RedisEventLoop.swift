/// What the Redis client needs from an event loop. The client owns no threads: the host application
/// (the node) adapts its own loops to this protocol, so Redis I/O rides the same epoll as everything else.
/// All callbacks run on the loop's thread.
public protocol RedisEventLoop: AnyObject, Sendable {
    var inRedisLoop: Bool { get }
    /// Runs `work` on the loop thread (from any thread).
    func redisExecute(_ work: @escaping @Sendable () -> Void)
    /// Watches `fd`; `onReady(readable, writable, failed)`. Calling again changes the interest.
    func redisWatch(fd: Int32, read: Bool, write: Bool, _ onReady: @escaping (Bool, Bool, Bool) -> Void) throws
    func redisUnwatch(fd: Int32)
    /// Calls `action` once after `afterNanos`; returns a handle for `redisCancel`.
    func redisSchedule(afterNanos: UInt64, _ action: @escaping () -> Void) -> UInt64
    func redisCancel(_ timer: UInt64)
}

/// How usable a connection is, for callers that must not wait on a dead Redis.
public enum RedisHealth: String, Sendable, Equatable {
    /// Connected and answering.
    case ready
    /// Connected, but commands have recently missed their deadline.
    case degraded
    /// Not connected (connecting, backing off, or stopped): commands fail at once.
    case down
}

/// Exponential backoff with full jitter: attempt n waits a random time up to min(max, base·2ⁿ).
public struct Backoff: Sendable, Equatable {
    public var baseNanos: UInt64
    public var maxNanos: UInt64

    public init(baseNanos: UInt64, maxNanos: UInt64) {
        self.baseNanos = baseNanos
        self.maxNanos = maxNanos
    }

    /// `random` in [0, 1) picks the point in the window (injected for tests).
    public func delay(attempt: Int, random: Double) -> UInt64 {
        let shift = min(attempt, 30)
        let ceiling = min(maxNanos, baseNanos << UInt64(shift))
        return max(baseNanos / 2, UInt64(Double(ceiling) * min(max(random, 0), 1)))
    }
}
