import CLinux
import Glibc
import Synchronization

/// HTTP/1.1 server settings.
public struct HTTPServerConfiguration: Sendable {
    public var listen: HostPort
    public var limits = HTTPParserLimits()
    /// From the first byte of a request until its head is complete.
    public var headerTimeoutNanos: UInt64 = 10_000_000_000
    /// Longest wait for the next piece of a request body.
    public var bodyTimeoutNanos: UInt64 = 30_000_000_000
    /// How long an idle keep-alive connection is kept.
    public var idleTimeoutNanos: UInt64 = 75_000_000_000
    public var maxConnections = 16_384

    public init(listen: HostPort) {
        self.listen = listen
    }
}

/// The HTTP server: one `SO_REUSEPORT` listener and its connections per event loop.
public final class HTTPServer: Sendable {
    public let configuration: HTTPServerConfiguration
    let group: EventLoopGroup
    private let loopServers: [HTTPServerLoop]
    private let shared = HTTPServerShared()
    private let boundPort = Atomic<UInt16>(0)

    public init(group: EventLoopGroup, configuration: HTTPServerConfiguration, handler: any HTTPHandler) {
        self.group = group
        self.configuration = configuration
        self.loopServers = group.loops.map { [shared] in HTTPServerLoop(loop: $0, config: configuration, handler: handler, shared: shared) }
    }

    /// A server dropped without a drain: its loops stop keeping connections alive.
    deinit { shared.draining.store(true, ordering: .relaxed) }

    /// The port actually bound (useful with port 0).
    public var port: UInt16 { boundPort.load(ordering: .relaxed) }
    public var isDraining: Bool { shared.draining.load(ordering: .relaxed) }
    public var openConnections: Int { shared.connectionCount.load(ordering: .relaxed) }

    /// Binds one listener per loop and starts accepting.
    public func start() throws {
        var listen = configuration.listen
        var fds: [Int32] = []
        do {
            for _ in loopServers {
                let fd = try SocketAddress.listen(listen)
                fds.append(fd)
                if listen.port == 0 {
                    // Every other listener must share the port the kernel chose for the first.
                    listen.port = try SocketAddress.localPort(of: fd)
                }
            }
        } catch {
            for fd in fds { Sys.close(fd) }
            throw error
        }
        boundPort.store(listen.port, ordering: .relaxed)
        let errors = Mutex<[any Error]>([])
        let done = Atomic<Int>(0)
        for (server, fd) in zip(loopServers, fds) {
            server.loop.execute {
                do { try server.startListening(fd: fd) } catch { errors.withLock { $0.append(error) } }
                done.add(1, ordering: .releasing)
            }
        }
        while done.load(ordering: .acquiring) < loopServers.count { sched_yield() }
        if let first = errors.withLock({ $0.first }) { throw first }
    }

    /// Announces the drain (`isDraining`: `/readyz` turns 503, keep-alive ends after each response) while
    /// still accepting, so a load balancer can notice before the listener goes away.
    public func beginDraining() {
        shared.draining.store(true, ordering: .relaxed)
    }

    /// Stops accepting, lets in-flight requests finish for up to `graceNanos`, then closes what is left.
    public func shutdown(graceNanos: UInt64) async {
        shared.draining.store(true, ordering: .relaxed)
        for s in loopServers { s.loop.execute { s.beginDrain() } }
        let deadline = monotonicNanos() &+ graceNanos
        while shared.connectionCount.load(ordering: .relaxed) > 0 && monotonicNanos() < deadline {
            try? await Task.sleep(for: .milliseconds(20))
        }
        for s in loopServers { s.loop.execute { s.closeAll() } }
        while shared.connectionCount.load(ordering: .relaxed) > 0 {
            try? await Task.sleep(for: .milliseconds(5))
        }
    }
}

/// What the server and its loops share, held strongly by each (a loop reads `draining` twice a request: a
/// `weak` back-reference to the server cost a weak load each time).
final class HTTPServerShared: Sendable {
    let connectionCount = Atomic<Int>(0)
    let draining = Atomic<Bool>(false)
}

/// The part of the server that lives on one loop. Loop thread only (hence `@unchecked Sendable`).
final class HTTPServerLoop: EventHandler, @unchecked Sendable {
    let loop: EventLoop
    let config: HTTPServerConfiguration
    let handler: any HTTPHandler
    private let shared: HTTPServerShared
    let dateCache = HTTPDateCache()
    private var listenFD: Int32 = -1
    private var connections: [ObjectIdentifier: HTTPConnection] = [:]
    private var sweepTimer: UInt64 = 0
    var requestsStarted = 0
    var requestsFinished = 0

    init(loop: EventLoop, config: HTTPServerConfiguration, handler: any HTTPHandler, shared: HTTPServerShared) {
        self.loop = loop
        self.config = config
        self.handler = handler
        self.shared = shared
    }

    var isDraining: Bool { shared.draining.load(ordering: .relaxed) }

    /// Sent, best effort, to a connection accepted over `maxConnections` before closing it.
    static let busyResponse: [UInt8] = {
        let body = #"{"error":{"message":"server busy: too many connections","type":"server_error","param":null,"code":null}}"#
        return Array("HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\ncontent-length: \(body.utf8.count)\r\nconnection: close\r\n\r\n\(body)".utf8)
    }()

    func startListening(fd: Int32) throws {
        listenFD = fd
        try loop.register(fd, interest: .read, handler: self)
        scheduleSweep()
    }

    /// Accepts pending connections (bounded per wake-up so one loop cannot hog a burst).
    func handleEvents(_ events: UInt32) {
        guard listenFD >= 0 else { return }
        for _ in 0..<64 {
            let accepted: IOResult<Int32>
            do {
                accepted = try Sys.accept(listenFD)
            } catch {
                // EMFILE/ENFILE/ECONNABORTED and friends: try again on the next wake-up.
                return
            }
            guard case .processed(let fd) = accepted else { return }
            if shared.connectionCount.load(ordering: .relaxed) >= config.maxConnections {
                Self.busyResponse.withUnsafeBytes { p in _ = send(fd, p.baseAddress, p.count, Int32(MSG_NOSIGNAL)) }
                Sys.close(fd)
                continue
            }
            try? Sys.setOption(fd, Int32(IPPROTO_TCP), TCP_NODELAY, 1)
            let conn = HTTPConnection(fd: fd, loop: loop, server: self)
            do {
                try loop.register(fd, interest: .read, handler: conn)
            } catch {
                Sys.close(fd)
                continue
            }
            shared.connectionCount.add(1, ordering: .relaxed)
            connections[ObjectIdentifier(conn)] = conn
        }
    }

    func connectionClosed(_ conn: HTTPConnection) {
        if connections.removeValue(forKey: ObjectIdentifier(conn)) != nil {
            shared.connectionCount.subtract(1, ordering: .relaxed)
        }
    }

    /// The sweep holds the server loop strongly, until it stops (no listener, no connections): a `weak`
    /// capture would give this object a side table, and every connection's `unowned` access to it — a few
    /// per request — would then take the runtime's slow path.
    private func scheduleSweep() {
        sweepTimer = loop.schedule(afterNanos: 250_000_000) { [self] in
            let now = monotonicNanos()
            for conn in Array(connections.values) { conn.checkTimeout(now: now) }
            if listenFD >= 0 || !connections.isEmpty { scheduleSweep() }
        }
    }

    func beginDrain() {
        if listenFD >= 0 {
            loop.unregister(listenFD)
            Sys.close(listenFD)
            listenFD = -1
        }
        for conn in Array(connections.values) { conn.drain() }
    }

    func closeAll() {
        for conn in Array(connections.values) { conn.close() }
    }
}
