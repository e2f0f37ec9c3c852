import CLinux
import Glibc

/// An operating-system call that failed, with the call's name and `errno`.
public struct SystemError: Error, CustomStringConvertible, Equatable {
    public let call: String
    public let errno: Int32

    public init(_ call: String, errno: Int32) {
        self.call = call
        self.errno = errno
    }

    public var description: String {
        "\(call) failed: \(String(cString: strerror(errno))) (errno \(errno))"
    }
}

/// The outcome of a call on a non-blocking descriptor.
public enum IOResult<T> {
    case processed(T)
    case wouldBlock
}

/// The one chokepoint for system calls: retries `EINTR`, reports `EAGAIN` as `.wouldBlock`, treats `EBADF`
/// and `EFAULT` as programmer errors and throws everything else as a `SystemError` naming the call.
enum Sys {
    @inline(__always)
    static func call<T: FixedWidthInteger>(_ name: StaticString, _ body: () -> T) throws(SystemError) -> T {
        while true {
            let r = body()
            if r != -1 { return r }
            let e = Glibc.errno
            if e == EINTR { continue }
            checkProgrammerError(name, e)
            throw SystemError(String(describing: name), errno: e)
        }
    }

    @inline(__always)
    static func nonBlocking<T: FixedWidthInteger>(_ name: StaticString, _ body: () -> T) throws(SystemError) -> IOResult<T> {
        while true {
            let r = body()
            if r != -1 { return .processed(r) }
            let e = Glibc.errno
            if e == EINTR { continue }
            if e == EAGAIN || e == EWOULDBLOCK { return .wouldBlock }
            checkProgrammerError(name, e)
            throw SystemError(String(describing: name), errno: e)
        }
    }

    @inline(__always)
    private static func checkProgrammerError(_ name: StaticString, _ e: Int32) {
        if e == EBADF || e == EFAULT {
            fatalError("\(name) failed with \(String(cString: strerror(e))): a descriptor or buffer was misused")
        }
    }

    /// Closes a descriptor. `EINTR` from close must not be retried on Linux (the descriptor is gone).
    static func close(_ fd: Int32) {
        let r = Glibc.close(fd)
        if r == -1 && Glibc.errno == EBADF {
            fatalError("close(\(fd)) failed with EBADF: descriptor closed twice")
        }
    }

    // MARK: Linux-only calls (epoll, eventfd, signalfd, accept4)

    static func epollCreate() throws(SystemError) -> Int32 {
        try call("epoll_create1") { epoll_create1(Int32(EPOLL_CLOEXEC)) }
    }

    static func epollCtl(_ epfd: Int32, _ op: Int32, _ fd: Int32, events: UInt32, data: UInt64) throws(SystemError) {
        var ev = epoll_event()
        ev.events = events
        ev.data.u64 = data
        _ = try call("epoll_ctl") { epoll_ctl(epfd, op, fd, &ev) }
    }

    static func eventfd() throws(SystemError) -> Int32 {
        try call("eventfd") { CLinux.eventfd(0, Int32(EFD_NONBLOCK | EFD_CLOEXEC)) }
    }

    static func accept(_ fd: Int32) throws(SystemError) -> IOResult<Int32> {
        try nonBlocking("accept4") {
            accept4(fd, nil, nil, Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue))
        }
    }

    static func read(_ fd: Int32, _ buffer: UnsafeMutableRawBufferPointer) throws(SystemError) -> IOResult<Int> {
        try nonBlocking("read") { Glibc.read(fd, buffer.baseAddress, buffer.count) }
    }

    static func write(_ fd: Int32, _ buffer: UnsafeRawBufferPointer) throws(SystemError) -> IOResult<Int> {
        try nonBlocking("send") { Glibc.send(fd, buffer.baseAddress, buffer.count, Int32(MSG_NOSIGNAL)) }
    }

    static func setOption(_ fd: Int32, _ level: Int32, _ name: Int32, _ value: Int32) throws(SystemError) {
        var v = value
        _ = try call("setsockopt") { setsockopt(fd, level, name, &v, socklen_t(MemoryLayout<Int32>.size)) }
    }
}

/// Monotonic time in nanoseconds, for deadlines and latency.
@inline(__always)
public func monotonicNanos() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec)
}

/// Wall-clock time in seconds since 1970 with sub-second precision.
public func wallClockSeconds() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_REALTIME, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}
