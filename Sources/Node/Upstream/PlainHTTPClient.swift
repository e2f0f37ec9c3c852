import CLinux
import Glibc
import Synchronization

/// Counts of the own client's connections across every loop, read at scrape time.
final class PlainHTTPStats: Sendable {
    /// New TCP connections to providers.
    let opened = Atomic<Int>(0)
    /// Calls started over on a new connection because a kept-alive one died under them.
    let retried = Atomic<Int>(0)
    /// Kept-alive connections waiting for the next call.
    let idle = Atomic<Int>(0)
}

/// Calls to plain `http://` providers (vLLM, Ollama, a TLS sidecar, …) over HTTP/1.1 connections of our
/// own, for one event loop: no curl handle, no copies of the request beyond its head, one `sendmsg` and
/// one `read` for a typical call. HTTPS goes through curl (`CurlMulti`).
///
/// Kept-alive connections wait here between calls, newest first, still registered with epoll: one that
/// wakes while idle (the provider closed it, or sent bytes nobody asked for) is closed at once, and any
/// idle longer than `idleLifetimeNanos` is closed by a sweep. Loop thread only.
final class PlainHTTPClient {
    let loop: EventLoop
    let timeouts: UpstreamTimeouts
    let resolver: HostResolver
    let idleLifetimeNanos: UInt64
    /// A kept-alive connection that fails this soon after a request went out on it was closed by the
    /// provider as it idled (the race every keep-alive client meets): the call is retried on a new one.
    /// Later, the provider may have acted on the request, and the call fails instead.
    let staleConnectionWindowNanos: UInt64
    let stats: PlainHTTPStats
    static let maxIdlePerAuthority = 256
    private var idle: [String: IdleList] = [:]
    private(set) var idleCount = 0
    private var sweepTimer: UInt64?
    /// Calls waiting on a first-byte or idle deadline, checked every `deadlineCheckNanos` — as the server
    /// checks its connections' deadlines — rather than a timer each: a timer per call cost a closure, a
    /// weak-reference side table and two heap operations per request. A timeout fires up to that late.
    private var timed: [PlainTransfer] = []
    private var deadlineTimer: UInt64?
    static let deadlineCheckNanos: UInt64 = 50_000_000

    private final class IdleList {
        var connections: [PlainHTTPConnection] = []
    }

    init(loop: EventLoop, timeouts: UpstreamTimeouts, resolver: HostResolver = .shared, idleLifetimeNanos: UInt64 = 60_000_000_000,
         staleConnectionWindowNanos: UInt64 = 250_000_000, stats: PlainHTTPStats = PlainHTTPStats()) {
        self.staleConnectionWindowNanos = staleConnectionWindowNanos
        self.stats = stats
        self.loop = loop
        self.timeouts = timeouts
        self.resolver = resolver
        self.idleLifetimeNanos = idleLifetimeNanos
    }

    /// Only when the loop is gone too (tests): its descriptors are closed without touching the loop.
    deinit {
        for list in idle.values {
            for c in list.connections { c.closeDescriptor() }
        }
    }

    /// A call to `target`, not started yet.
    /// A call to `target`, with `suffix` (path and query) after its request target.
    func call(method: HTTPMethod, target: PlainHTTPTarget, suffix: Substring = "", headers: HTTPHeaders, body: [UInt8]) -> PlainTransfer {
        PlainTransfer(client: self, method: method, target: target, suffix: suffix, headers: headers, body: body)
    }

    /// Puts `t` in the deadline sweep (once; its `deadline` may move while it is there).
    func watchDeadline(_ t: PlainTransfer) {
        guard t.deadlineSlot < 0 else { return }
        t.deadlineSlot = timed.count
        timed.append(t)
        if deadlineTimer == nil { scheduleDeadlineCheck() }
    }

    func unwatchDeadline(_ t: PlainTransfer) {
        let slot = t.deadlineSlot
        guard slot >= 0 else { return }
        t.deadlineSlot = -1
        let last = timed.removeLast()
        if slot < timed.count {
            timed[slot] = last
            last.deadlineSlot = slot
        }
    }

    /// The deadline check and the idle sweep hold the client strongly, and stop when they have nothing to
    /// watch: a `weak` capture would give the client a side table, and every connection's `unowned` access
    /// to it would take the runtime's slow path.
    private func scheduleDeadlineCheck() {
        deadlineTimer = loop.schedule(afterNanos: Self.deadlineCheckNanos) { [self] in
            deadlineTimer = nil
            let now = monotonicNanos()
            let due = timed.filter { $0.deadline <= now }  // (each may leave the list or move its deadline)
            for t in due { t.deadlineReached() }
            if !timed.isEmpty { scheduleDeadlineCheck() }
        }
    }

    /// The idle list of the authority used last: calls to one provider take and park a connection to
    /// the same authority every time — one string comparison (the same storage, usually) instead of
    /// hashing it twice a request.
    private var lastAuthority = ""
    private var lastList: IdleList?

    private func idleList(_ authority: String, creating: Bool) -> IdleList? {
        if let l = lastList, authority == lastAuthority { return l }
        var list = idle[authority]
        if list == nil, creating {
            list = IdleList()
            idle[authority] = list
        }
        if let list {
            lastAuthority = authority
            lastList = list
        }
        return list
    }

    /// The most recently parked connection to `authority`, taken out of the idle set.
    func takeIdle(_ authority: String) -> PlainHTTPConnection? {
        guard let list = idleList(authority, creating: false), let c = list.connections.popLast() else { return nil }
        changeIdleCount(by: -1)
        return c
    }

    /// Keeps a connection whose last response ended cleanly for the next call to its authority.
    func park(_ c: PlainHTTPConnection) {
        let list = idleList(c.authority, creating: true)!
        guard list.connections.count < Self.maxIdlePerAuthority else {
            c.close()
            return
        }
        c.parkedAt = loop.now
        list.connections.append(c)
        changeIdleCount(by: 1)
        if sweepTimer == nil { scheduleSweep() }
    }

    /// An idle connection became readable or hung up: it cannot carry another call.
    func parkedConnectionWoke(_ c: PlainHTTPConnection) {
        if let list = idle[c.authority], let i = list.connections.firstIndex(where: { $0 === c }) {
            list.connections.remove(at: i)
            changeIdleCount(by: -1)
        }
        c.close()
    }

    private func changeIdleCount(by n: Int) {
        idleCount += n
        stats.idle.add(n, ordering: .relaxed)
    }

    private func scheduleSweep() {
        sweepTimer = loop.schedule(afterNanos: min(idleLifetimeNanos, 5_000_000_000)) { [self] in
            sweepTimer = nil
            sweep(now: monotonicNanos())
            if idleCount > 0 { scheduleSweep() }
        }
    }

    /// Closes connections parked for longer than the idle lifetime (the oldest sit at the front).
    func sweep(now: UInt64) {
        for list in idle.values {
            let expired = list.connections.prefix { now &- $0.parkedAt >= idleLifetimeNanos }.count
            guard expired > 0 else { continue }
            for c in list.connections[..<expired] { c.close() }
            list.connections.removeFirst(expired)
            changeIdleCount(by: -expired)
        }
    }
}

/// One TCP connection to a provider; events go to the call using it, or back to the client while idle.
final class PlainHTTPConnection: EventHandler {
    let fd: Int32
    let authority: String
    let loop: EventLoop
    unowned let client: PlainHTTPClient
    var transfer: PlainTransfer?
    var parkedAt: UInt64 = 0
    private(set) var registered = false
    private(set) var interest = Interest(rawValue: 0)
    private(set) var closed = false

    init(fd: Int32, authority: String, client: PlainHTTPClient) {
        self.fd = fd
        self.authority = authority
        self.client = client
        loop = client.loop
    }

    deinit {
        if !closed { Sys.close(fd) }
    }

    func handleEvents(_ events: UInt32) {
        if let t = transfer {
            t.connectionEvents(events)
        } else {
            client.parkedConnectionWoke(self)
        }
    }

    /// Watches `interest` (registering if needed); no system call when it is already that.
    func watch(_ wanted: Interest) throws(SystemError) {
        if !registered {
            try loop.register(fd, interest: wanted, handler: self)
            registered = true
        } else if wanted != interest {
            try loop.modify(fd, interest: wanted)
        }
        interest = wanted
    }

    /// Stops all events (a paused call reads nothing until it resumes).
    func unwatch() {
        guard registered else { return }
        loop.unregister(fd)
        registered = false
    }

    func close() {
        guard !closed else { return }
        closed = true
        transfer = nil
        if registered { loop.forgetClosing(fd) }  // closing takes it out of the epoll set
        registered = false
        Sys.close(fd)
    }

    func closeDescriptor() {
        guard !closed else { return }
        closed = true
        Sys.close(fd)
    }
}
