import CLinux
import Glibc
import Synchronization

/// Something registered on an event loop for readiness events on one descriptor.
public protocol EventHandler: AnyObject {
    /// Called on the loop thread with the epoll event mask.
    func handleEvents(_ events: UInt32)
}

/// Readiness interest, as epoll flags.
public struct Interest: OptionSet, Sendable {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    public static let read = Interest(rawValue: EPOLLIN.rawValue | EPOLLRDHUP.rawValue)
    public static let write = Interest(rawValue: EPOLLOUT.rawValue)
}

public enum EpollEvents {
    public static let readable = EPOLLIN.rawValue
    public static let writable = EPOLLOUT.rawValue
    public static let hangup = EPOLLHUP.rawValue | EPOLLRDHUP.rawValue
    public static let error = EPOLLERR.rawValue
}

/// One epoll-driven event loop running on its own thread: descriptor readiness, timers, and work submitted
/// from other threads (woken through an eventfd). It is also a `TaskExecutor`, so an `async` handler
/// started with `Task(executorPreference: loop)` runs its continuations on the loop thread.
///
/// `@unchecked Sendable`: the handler table, timers and local queue are touched only on the loop thread
/// (checked by `assertInLoop`); work from other threads goes through `inbox`, under a lock.
public final class EventLoop: @unchecked Sendable {
    enum Work {
        case closure(() -> Void)
        case job(UnownedJob)
        case deferred(any LoopDeferred)
    }

    struct Inbox {
        var work: [Work] = []
        var wakePending = false
    }

    public let index: Int
    private let epfd: Int32
    private let wakeFD: Int32
    private let inbox = LockedBox(Inbox())
    private var local: [Work] = []
    /// The storage of the last batch of local work, emptied, to take the next batch without reallocating.
    private var spareLocal: [Work] = []
    /// Output flushes, run after the local work at the end of each iteration (see `enqueueFlush`).
    private var flushes: [any LoopDeferred] = []
    private var spareFlushes: [any LoopDeferred] = []
    private var handlers: [(handler: EventHandler, generation: UInt32)?] = []
    private var generation: UInt32 = 0
    private var timers = TimerHeap()
    private let threadID = Atomic<UInt>(0)
    private var stopping = false
    /// A scratch buffer shared by everything on this loop for reads (one read at a time on a loop).
    public let readBuffer: UnsafeMutableRawBufferPointer

    public init(index: Int) throws(SystemError) {
        self.index = index
        epfd = try Sys.epollCreate()
        wakeFD = try Sys.eventfd()
        readBuffer = .allocate(byteCount: 64 * 1024, alignment: 16)
        try Sys.epollCtl(epfd, EPOLL_CTL_ADD, wakeFD, events: EPOLLIN.rawValue, data: UInt64.max)
    }

    deinit {
        Sys.close(wakeFD)
        Sys.close(epfd)
        readBuffer.deallocate()
    }

    // MARK: Thread identity

    public var inEventLoop: Bool { threadID.load(ordering: .relaxed) == UInt(pthread_self()) }

    @inline(__always)
    public func assertInLoop(_ file: StaticString = #fileID, _ line: UInt = #line) {
        assert(inEventLoop, "called off the event loop thread", file: file, line: line)
    }

    // MARK: Submitting work

    /// Runs `work` on the loop thread, soon. Safe from any thread.
    public func execute(_ work: @escaping @Sendable () -> Void) {
        submit(.closure(work))
    }

    /// Runs `work` now if already on the loop thread, otherwise submits it.
    public func executeOrRun(_ work: @escaping @Sendable () -> Void) {
        if inEventLoop { work() } else { submit(.closure(work)) }
    }

    /// Runs `work` later in this loop iteration. Loop thread only, so `work` need not be `Sendable`.
    public func enqueueLocal(_ work: @escaping () -> Void) {
        assertInLoop()
        local.append(.closure(work))
    }

    /// Calls `object.runDeferred()` later in this loop iteration: `enqueueLocal` for work done per request
    /// (a response's flush), without allocating a closure for it. Loop thread only.
    public func enqueueLocal(_ object: any LoopDeferred) {
        assertInLoop()
        local.append(.deferred(object))
    }

    /// Calls `object.runDeferred()` at the very end of this loop iteration, after the local work: for
    /// writing out what the iteration's events produced. A batch of events then ends in a burst of writes
    /// (requests to upstreams, sent from local work, then responses to clients), so a peer — a provider
    /// connection pool, a load generator, a client library's loop — is woken once for several messages
    /// rather than once for each, and does its part for all of them at once. Loop thread only.
    public func enqueueFlush(_ object: any LoopDeferred) {
        assertInLoop()
        flushes.append(object)
    }

    private func submit(_ work: Work) {
        if inEventLoop {
            local.append(work)
            return
        }
        let wake = inbox.withLock { box -> Bool in
            box.work.append(work)
            if box.wakePending { return false }
            box.wakePending = true
            return true
        }
        if wake {
            var one: UInt64 = 1
            _ = withUnsafeBytes(of: &one) { Glibc.write(wakeFD, $0.baseAddress, 8) }
        }
    }

    // MARK: Descriptors

    public func register(_ fd: Int32, interest: Interest, handler: EventHandler) throws(SystemError) {
        assertInLoop()
        generation &+= 1
        let slot = Int(fd)
        if slot >= handlers.count {
            handlers.append(contentsOf: repeatElement(nil, count: max(slot + 1 - handlers.count, handlers.count)))
        }
        handlers[slot] = (handler, generation)
        try Sys.epollCtl(epfd, EPOLL_CTL_ADD, fd, events: interest.rawValue, data: Self.token(fd, generation))
    }

    /// Registers `fd`, or changes its interest and handler if it is registered already.
    public func watch(_ fd: Int32, interest: Interest, handler: EventHandler) throws(SystemError) {
        assertInLoop()
        if Int(fd) < handlers.count, let entry = handlers[Int(fd)] {
            handlers[Int(fd)] = (handler, entry.generation)
            try Sys.epollCtl(epfd, EPOLL_CTL_MOD, fd, events: interest.rawValue, data: Self.token(fd, entry.generation))
        } else {
            try register(fd, interest: interest, handler: handler)
        }
    }

    public func modify(_ fd: Int32, interest: Interest) throws(SystemError) {
        assertInLoop()
        guard let entry = handlers[Int(fd)] else { return }
        try Sys.epollCtl(epfd, EPOLL_CTL_MOD, fd, events: interest.rawValue, data: Self.token(fd, entry.generation))
    }

    /// Stops watching `fd`. The caller still owns and closes it.
    public func unregister(_ fd: Int32) {
        assertInLoop()
        guard Int(fd) < handlers.count, handlers[Int(fd)] != nil else { return }
        handlers[Int(fd)] = nil
        var ev = epoll_event()
        _ = epoll_ctl(epfd, EPOLL_CTL_DEL, fd, &ev)
    }

    /// Forgets `fd` without a system call, for a descriptor about to be closed (closing removes it from
    /// the epoll set, provided it was never duplicated). Events already fetched for it are dropped.
    public func forgetClosing(_ fd: Int32) {
        assertInLoop()
        guard Int(fd) < handlers.count else { return }
        handlers[Int(fd)] = nil
    }

    private static func token(_ fd: Int32, _ generation: UInt32) -> UInt64 {
        UInt64(UInt32(bitPattern: fd)) | (UInt64(generation) << 32)
    }

    // MARK: Timers

    /// Calls `action` on the loop thread once `deadline` (monotonic ns) has passed. Loop thread only.
    @discardableResult
    public func schedule(at deadline: UInt64, _ action: @escaping () -> Void) -> UInt64 {
        assertInLoop()
        return timers.schedule(at: deadline, action)
    }

    @discardableResult
    public func schedule(afterNanos delay: UInt64, _ action: @escaping () -> Void) -> UInt64 {
        schedule(at: monotonicNanos() &+ delay, action)
    }

    public func cancelTimer(_ id: UInt64) {
        assertInLoop()
        timers.cancel(id)
    }

    // MARK: Running

    /// Asks the loop to return from `run()` after the current iteration.
    public func stop() {
        execute { [self] in stopping = true }
    }

    /// The monotonic time when this iteration's events came in (`monotonicNanos`), for deadlines and
    /// idle times: read once per iteration rather than by every request several times over (nginx keeps its
    /// time the same way). Behind the true time by at most one iteration's work. Loop thread only.
    @exclusivity(unchecked) public private(set) var now: UInt64 = monotonicNanos()

    /// Runs the loop on the calling thread until `stop()`.
    public func run() {
        threadID.store(UInt(pthread_self()), ordering: .relaxed)
        let capacity = 256
        let events = UnsafeMutablePointer<epoll_event>.allocate(capacity: capacity)
        defer { events.deallocate() }
        while !stopping {
            var timeout: Int32 = -1
            if !local.isEmpty || !flushes.isEmpty {
                timeout = 0
            } else if let next = timers.nextDeadline() {
                let now = monotonicNanos()
                timeout = next <= now ? 0 : Int32(min((next - now + 999_999) / 1_000_000, 60_000))
            }
            let n = epoll_wait(epfd, events, Int32(capacity), timeout)
            if n < 0 {
                let e = Glibc.errno
                if e == EINTR { continue }
                fatalError("epoll_wait failed: \(SystemError("epoll_wait", errno: e))")
            }
            now = monotonicNanos()
            for i in 0..<Int(n) {
                let token = llmp_epoll_event_u64(events + i)
                if token == UInt64.max {
                    var value: UInt64 = 0
                    _ = withUnsafeMutableBytes(of: &value) { Glibc.read(wakeFD, $0.baseAddress, 8) }
                    continue
                }
                let fd = Int(UInt32(truncatingIfNeeded: token))
                let gen = UInt32(truncatingIfNeeded: token >> 32)
                guard fd < handlers.count, let entry = handlers[fd], entry.generation == gen else { continue }
                entry.handler.handleEvents(events[i].events)
            }
            if !timers.isEmpty {
                for action in timers.popExpired(now: now) { action() }
            }
            runPending()
        }
        runPending()
    }

    private func runPending() {
        let remote = inbox.withLock { box -> [Work] in
            box.wakePending = false
            if box.work.isEmpty { return [] }
            let w = box.work
            box.work = []
            return w
        }
        for w in remote { run(w) }
        // Work submitted while running local work lands in `local` again and runs in this same pass,
        // bounded so that a busy task cannot starve I/O.
        var rounds = 0
        while !local.isEmpty && rounds < 16 {
            var batch = spareLocal
            swap(&batch, &local)
            for w in batch { run(w) }
            batch.removeAll(keepingCapacity: true)
            spareLocal = batch
            rounds += 1
        }
        // Flushes queued by these run on the next turn (which does not wait: see `run`).
        if !flushes.isEmpty {
            var batch = spareFlushes
            swap(&batch, &flushes)
            for o in batch { o.runDeferred() }
            batch.removeAll(keepingCapacity: true)
            spareFlushes = batch
        }
    }

    @inline(__always)
    private func run(_ work: Work) {
        switch work {
        case .closure(let c): c()
        case .job(let j): j.runSynchronously(on: asUnownedTaskExecutor())
        case .deferred(let object): object.runDeferred()
        }
    }
}

/// Something that does its part later in the current loop iteration (see `EventLoop.enqueueLocal(_:)`).
public protocol LoopDeferred: AnyObject {
    func runDeferred()
}

extension EventLoop: TaskExecutor {
    public func enqueue(_ job: consuming ExecutorJob) {
        submit(.job(UnownedJob(job)))
    }
}
