import CLinux
import RedisClient

/// Lets the Redis client ride this loop's epoll, timers and task queue.
extension EventLoop: RedisEventLoop {
    public var inRedisLoop: Bool { inEventLoop }

    public func redisExecute(_ work: @escaping @Sendable () -> Void) { execute(work) }

    public func redisWatch(fd: Int32, read: Bool, write: Bool, _ onReady: @escaping (Bool, Bool, Bool) -> Void) throws {
        var interest = Interest(rawValue: 0)
        if read { interest.formUnion(.read) }
        if write { interest.formUnion(.write) }
        try watch(fd, interest: interest, handler: RedisSocketHandler(onReady))
    }

    public func redisUnwatch(fd: Int32) { unregister(fd) }

    public func redisSchedule(afterNanos: UInt64, _ action: @escaping () -> Void) -> UInt64 {
        schedule(afterNanos: afterNanos, action)
    }

    public func redisCancel(_ timer: UInt64) { cancelTimer(timer) }
}

final class RedisSocketHandler: EventHandler {
    let onReady: (Bool, Bool, Bool) -> Void
    init(_ onReady: @escaping (Bool, Bool, Bool) -> Void) { self.onReady = onReady }

    func handleEvents(_ events: UInt32) {
        onReady(events & (EpollEvents.readable | EpollEvents.hangup) != 0, events & EpollEvents.writable != 0,
                events & (EpollEvents.error | EPOLLHUP.rawValue) != 0)
    }
}
