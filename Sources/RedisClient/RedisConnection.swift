import CHiredis
import Glibc
import Synchronization

/// One Redis connection on one event loop: many commands in flight (pipelined, answered in order), a
/// deadline per command, AUTH/SELECT on connect, and reconnection with backoff when the server goes away
/// or stops answering. While not ready, commands fail at once with `.unavailable` — nothing ever waits on
/// a dead server beyond its deadline.
///
/// `@unchecked Sendable`: everything but `healthState` is touched only on the loop thread; public methods
/// hop there.
public final class RedisConnection: @unchecked Sendable {
    enum Pending {
        case user(CheckedContinuation<RESPValue, any Error>, timer: UInt64, sentAt: UInt64)
        case handshake
        case abandoned
    }

    public let configuration: RedisConfiguration
    let loop: any RedisEventLoop
    private let address: ResolvedAddress?
    private let resolveError: String?
    private var machine: RedisConnectionStateMachine
    private var fd: Int32 = -1
    private var handshakeRemaining = 0
    private var pending: [Pending] = []
    private var pendingHead = 0
    /// Sequence number of `pending[0]`: entries keep their number when the array is compacted.
    private var baseSeq: UInt64 = 0
    private var output: [UInt8] = []
    private var reader = RESPReader()
    private var lastReadAt: UInt64 = 0
    private var connectTimer: UInt64?
    private let healthState = Atomic<Int>(2)
    private var healthObservers: [(RedisHealth) -> Void] = []
    /// In subscriber mode, every reply goes here instead of to a command.
    var pushHandler: ((RESPValue) -> Void)?
    /// Commands to send (unanswered) right after each successful connect (resubscription).
    var onReady: (() -> Void)?

    public init(configuration: RedisConfiguration, loop: any RedisEventLoop) {
        self.configuration = configuration
        self.loop = loop
        machine = RedisConnectionStateMachine(backoff: Backoff(baseNanos: configuration.backoffBaseNanos, maxNanos: configuration.backoffMaxNanos))
        // Resolved once, here (start-up): name resolution blocks and must not run on a loop.
        do {
            address = try ResolvedAddress(host: configuration.host, port: configuration.port)
            resolveError = nil
        } catch {
            address = nil
            resolveError = "\(error)"
        }
    }

    // MARK: Public surface

    public var health: RedisHealth {
        switch healthState.load(ordering: .relaxed) {
        case 0: .ready
        case 1: .degraded
        default: .down
        }
    }

    /// Starts connecting (and keeps reconnecting until `stop`).
    public func start() {
        onLoop { [self] in perform(machine.start()) }
    }

    public func stop() {
        onLoop { [self] in perform(machine.stop(), RedisError(.unavailable, "the Redis client was stopped")) }
    }

    /// Calls `observer` on the loop whenever the health changes.
    public func observeHealth(_ observer: @escaping @Sendable (RedisHealth) -> Void) {
        onLoop { [self] in healthObservers.append(observer) }
    }

    /// Sends one command and waits for its reply (an error reply is a value). Fails with `.unavailable`
    /// at once when not connected, `.timeout` after the deadline, `.connectionLost` if the link drops.
    public func send(_ args: [String], timeoutNanos: UInt64? = nil) async throws -> RESPValue {
        try await send(bytes: args.map { Array($0.utf8) }, timeoutNanos: timeoutNanos)
    }

    public func send(bytes args: [[UInt8]], timeoutNanos: UInt64? = nil) async throws -> RESPValue {
        let deadline = timeoutNanos ?? configuration.commandTimeoutNanos
        return try await withCheckedThrowingContinuation { (c: CheckedContinuation<RESPValue, any Error>) in
            if loop.inRedisLoop {
                enqueue(args, c, deadline)
            } else {
                let box = UncheckedSendable((args, c))
                loop.redisExecute { [self] in enqueue(box.value.0, box.value.1, deadline) }
            }
        }
    }

    private func onLoop(_ work: @escaping @Sendable () -> Void) {
        if loop.inRedisLoop { work() } else { loop.redisExecute(work) }
    }

    // MARK: Commands

    private func enqueue(_ args: [[UInt8]], _ c: CheckedContinuation<RESPValue, any Error>, _ deadline: UInt64) {
        guard machine.acceptsCommands else {
            c.resume(throwing: RedisError(.unavailable, "Redis at \(configuration.host):\(configuration.port) is not connected"))
            return
        }
        RESPEncoder.encode(args, into: &output)
        let seq = baseSeq + UInt64(pending.count)
        let sentAt = monotonicNow()
        let timer = loop.redisSchedule(afterNanos: deadline) { [weak self] in self?.commandTimedOut(seq: seq, sentAt: sentAt) }
        pending.append(.user(c, timer: timer, sentAt: sentAt))
        if configuration.coalesceWrites { scheduleFlush() } else { flush(fd) }
    }

    private var flushScheduled = false

    /// With `coalesceWrites`, commands issued in one pass of the loop leave in one write (the loop runs
    /// this after its events).
    private func scheduleFlush() {
        guard !flushScheduled else { return }
        flushScheduled = true
        loop.redisExecute { [self] in
            flushScheduled = false
            if fd >= 0 && machine.acceptsCommands { flush(fd) }
        }
    }

    func sendInternal(_ args: [String]) {
        guard machine.acceptsCommands else { return }
        RESPEncoder.encode(args.map { Array($0.utf8) }, into: &output)
        if pushHandler == nil { pending.append(.abandoned) }
        flush(fd)
    }

    private func commandTimedOut(seq: UInt64, sentAt: UInt64) {
        guard seq >= baseSeq else { return }
        let index = Int(seq - baseSeq)
        guard index >= pendingHead, index < pending.count, case .user(let c, _, let s) = pending[index], s == sentAt else { return }
        pending[index] = .abandoned
        c.resume(throwing: RedisError(.timeout, "Redis did not answer within the deadline"))
        perform(machine.commandTimedOut(sentAt: sentAt, lastReadAt: lastReadAt, random: .random(in: 0..<1)),
                RedisError(.timeout, "Redis stopped answering"))
    }

    // MARK: Performing the state machine's actions

    private func perform(_ action: RedisConnectionStateMachine.Action, _ reason: RedisError? = nil) {
        switch action {
        case .none:
            break
        case .openSocket:
            connect()
        case .sendHandshake:
            beginHandshake()
        case .closeAndRetry(let delay):
            closeSocket(reason ?? RedisError(.connectionLost, "Redis connection lost"))
            _ = loop.redisSchedule(afterNanos: delay) { [weak self] in
                guard let self else { return }
                perform(machine.backoffElapsed())
            }
        case .close:
            closeSocket(reason ?? RedisError(.unavailable, "the Redis client was stopped"))
        }
        setHealth(machine.health)
    }

    private func fail(_ error: RedisError) {
        if connectErrorIsInteresting(error) { lastConnectError = error }
        perform(machine.failed(random: .random(in: 0..<1)), error)
    }

    private func connectErrorIsInteresting(_ e: RedisError) -> Bool { e.code == .authenticationFailed }

    // MARK: Connecting

    private func connect() {
        guard let address else {
            fail(RedisError(.unavailable, resolveError ?? "cannot resolve \(configuration.host)"))
            return
        }
        let fd = socket(address.family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { fail(RedisError(.unavailable, "socket: errno \(errno)")); return }
        var one: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        let rc = address.connect(fd)
        if rc != 0 && errno != EINPROGRESS {
            let message = String(cString: strerror(errno))
            close(fd)
            fail(RedisError(.unavailable, "cannot connect to Redis: \(message)"))
            return
        }
        self.fd = fd
        watching = (fd, true)
        connectTimer = loop.redisSchedule(afterNanos: configuration.connectTimeoutNanos) { [weak self] in
            guard let self else { return }
            connectTimer = nil
            if machine.state == .connecting || machine.state == .handshaking {
                fail(RedisError(.timeout, "connecting to Redis timed out"))
            }
        }
        do {
            try loop.redisWatch(fd: fd, read: false, write: true) { [weak self] r, w, e in self?.ready(fd: fd, r, w, e) }
        } catch {
            fail(RedisError(.unavailable, "cannot watch the Redis socket"))
        }
    }

    private func ready(fd: Int32, _ readable: Bool, _ writable: Bool, _ failed: Bool) {
        guard fd == self.fd else { return }
        switch machine.state {
        case .connecting:
            var err: Int32 = 0
            var len = socklen_t(MemoryLayout<Int32>.size)
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len)
            if err != 0 || failed {
                fail(RedisError(.unavailable, "cannot connect to Redis: \(String(cString: strerror(err == 0 ? ECONNREFUSED : err)))"))
                return
            }
            perform(machine.socketConnected())
        case .handshaking, .ready:
            if writable { flush(fd) }
            if readable || failed { readAvailable(fd) }
        default:
            break
        }
    }

    private func beginHandshake() {
        var commands: [[String]] = []
        if let p = configuration.password {
            commands.append(configuration.username.map { ["AUTH", $0, p] } ?? ["AUTH", p])
        }
        if configuration.database != 0 { commands.append(["SELECT", String(configuration.database)]) }
        commands.append(["PING"])
        handshakeRemaining = commands.count
        for c in commands {
            RESPEncoder.encode(c.map { Array($0.utf8) }, into: &output)
            pending.append(.handshake)
        }
        flush(fd)
    }

    private func handshakeReply(_ value: RESPValue) {
        if let e = value.errorMessage {
            let auth = e.hasPrefix("WRONGPASS") || e.hasPrefix("NOAUTH") || e.contains("AUTH")
            fail(RedisError(.authenticationFailed, auth ? "Redis refused the credentials: \(e)" : "Redis refused the connection setup: \(e)"))
            return
        }
        handshakeRemaining -= 1
        guard handshakeRemaining == 0 else { return }
        if let t = connectTimer { loop.redisCancel(t); connectTimer = nil }
        lastConnectError = nil
        perform(machine.handshakeSucceeded())
        onReady?()
    }

    /// Why the last connection attempt failed, if it did (e.g. a refused password).
    public private(set) var lastConnectError: RedisError?

    // MARK: I/O

    private func flush(_ fd: Int32) {
        var written = 0
        while written < output.count {
            let n = output.withUnsafeBytes { p in Glibc.send(fd, p.baseAddress! + written, p.count - written, Int32(MSG_NOSIGNAL)) }
            if n > 0 { written += n; continue }
            if n < 0 && errno == EINTR { continue }
            if n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) { break }
            fail(RedisError(.connectionLost, "Redis connection lost while writing: \(String(cString: strerror(errno)))"))
            return
        }
        output.removeFirst(written)
        let wantWrite = !output.isEmpty
        if watching.map({ $0 != (fd, wantWrite) }) ?? true {
            watching = (fd, wantWrite)
            try? loop.redisWatch(fd: fd, read: true, write: wantWrite) { [weak self] r, w, e in self?.ready(fd: fd, r, w, e) }
        }
    }

    /// The interest last given to the loop, so an unchanged one costs no system call.
    private var watching: (Int32, Bool)?

    private func readAvailable(_ fd: Int32) {
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n > 0 {
                lastReadAt = monotonicNow()
                buffer.withUnsafeBytes { reader.feed(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
                if n < buffer.count { break }
                continue
            }
            if n < 0 && errno == EINTR { continue }
            if n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) { break }
            fail(RedisError(.connectionLost, n == 0 ? "Redis closed the connection" : "Redis connection lost: \(String(cString: strerror(errno)))"))
            return
        }
        do {
            while let value = try reader.next() { deliver(value, fd: fd) }
        } catch {
            fail(error)
        }
    }

    private func deliver(_ value: RESPValue, fd: Int32) {
        if pendingHead < pending.count {
            let p = pending[pendingHead]
            pendingHead += 1
            if pendingHead == pending.count {
                baseSeq += UInt64(pending.count)
                pending.removeAll(keepingCapacity: true)
                pendingHead = 0
            } else if pendingHead > 1024 {
                baseSeq += UInt64(pendingHead)
                pending.removeFirst(pendingHead)
                pendingHead = 0
            }
            switch p {
            case .user(let c, let timer, _):
                loop.redisCancel(timer)
                if machine.recentTimeouts > 0 {
                    machine.replyReceived()
                    setHealth(machine.health)
                }
                c.resume(returning: value)
            case .handshake:
                if machine.state == .handshaking { handshakeReply(value) }
            case .abandoned:
                break
            }
            return
        }
        pushHandler?(value)
    }

    /// Closes the socket and fails everything in flight.
    private func closeSocket(_ error: RedisError) {
        if let t = connectTimer { loop.redisCancel(t); connectTimer = nil }
        if fd >= 0 {
            loop.redisUnwatch(fd: fd)
            close(fd)
            fd = -1
        }
        watching = nil
        let inFlight = pending[pendingHead...]
        baseSeq += UInt64(pending.count)
        pending = []
        pendingHead = 0
        output = []
        reader = RESPReader()
        for p in inFlight {
            if case .user(let c, let timer, _) = p {
                loop.redisCancel(timer)
                c.resume(throwing: RedisError(error.code == .timeout ? .timeout : .connectionLost, error.message))
            }
        }
    }

    private func setHealth(_ h: RedisHealth) {
        let code = h == .ready ? 0 : (h == .degraded ? 1 : 2)
        guard healthState.exchange(code, ordering: .relaxed) != code else { return }
        for o in healthObservers { o(h) }
    }
}

/// A value handed across threads by a caller that keeps it alive and uses it once.
struct UncheckedSendable<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}

func monotonicNow() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec)
}

/// A socket address resolved once.
struct ResolvedAddress: Sendable {
    let family: Int32
    private let storage: [UInt8]

    init(host: String, port: Int) throws(RedisError) {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var result: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, String(port), &hints, &result) == 0, let first = result else {
            throw RedisError(.unavailable, "cannot resolve Redis host \(host)")
        }
        defer { freeaddrinfo(result) }
        family = first.pointee.ai_family
        storage = Array(UnsafeRawBufferPointer(start: first.pointee.ai_addr, count: Int(first.pointee.ai_addrlen)))
    }

    func connect(_ fd: Int32) -> Int32 {
        storage.withUnsafeBytes { p in
            Glibc.connect(fd, p.baseAddress!.assumingMemoryBound(to: sockaddr.self), socklen_t(p.count))
        }
    }
}
