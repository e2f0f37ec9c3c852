/// Told when a client goes away before its response is done.
public protocol ClientDisconnectObserver: AnyObject {
    func clientDisconnected()
}

private final class ClosureDisconnectObserver: ClientDisconnectObserver {
    let callback: () -> Void
    init(_ callback: @escaping () -> Void) { self.callback = callback }
    func clientDisconnected() { callback() }
}

/// Writes one response on behalf of a handler: either all at once (`respond`) or streamed
/// (`writeHead`, `write`…, `end`). A streamed response without a `content-length` goes out chunked
/// (close-delimited for HTTP/1.0 clients). `write` suspends while the client is slow to read.
///
/// `@unchecked Sendable`: handler tasks run on the connection's loop (their executor preference), and
/// every method checks it is on that loop before touching the connection.
public final class HTTPResponseWriter: @unchecked Sendable {
    enum State {
        case initial
        case streaming(chunked: Bool)
        case done
    }

    private let connection: HTTPConnection
    private let isHead: Bool
    private let version: HTTPVersion
    private var keepAlive: Bool
    private var state: State = .initial
    public private(set) var status: Int = 0
    public private(set) var bytesWritten = 0

    init(connection: HTTPConnection, request: HTTPRequest, keepAlive: Bool) {
        self.connection = connection
        self.isHead = request.method == .HEAD
        self.version = request.version
        self.keepAlive = keepAlive
    }

    /// The loop this response lives on.
    public var loop: EventLoop { connection.loop }

    /// True once the client has gone away.
    public var isClosed: Bool { connection.state == .closed }

    public var isStarted: Bool {
        if case .initial = state { return false }
        return true
    }

    /// Tells `observer` (on the loop) if the client disconnects before the response is done; one observer
    /// per response, held until then.
    public func onClientDisconnect(_ observer: any ClientDisconnectObserver) {
        connection.loop.assertInLoop()
        if isClosed { observer.clientDisconnected(); return }
        connection.disconnectObserver = observer
    }

    /// `onClientDisconnect` with a closure.
    public func onClientDisconnect(_ callback: @escaping () -> Void) {
        onClientDisconnect(ClosureDisconnectObserver(callback))
    }

    /// Sends a complete response.
    public func respond(status: Int, headers: HTTPHeaders = HTTPHeaders(), body: [UInt8] = []) {
        connection.loop.assertInLoop()
        guard case .initial = state else { return }
        self.status = status
        var bytes: [UInt8] = []
        bytes.reserveCapacity(160 + headers.lineBytes + (isHead ? 0 : body.count))
        headBytes(into: &bytes, status: status, framing: Self.bodyAllowed(status) ? .length(body.count) : .none) { Self.appendFields(headers, to: &$0) }
        if !isHead && Self.bodyAllowed(status) { bytes.append(contentsOf: body) }
        bytesWritten = body.count
        state = .done
        connection.enqueue(bytes, immediately: true)
        connection.responseComplete(keepAlive: keepAlive)
    }

    /// Starts a streamed response. A `content-length` in `headers` is honoured; otherwise the body is chunked.
    public func writeHead(status: Int, headers: HTTPHeaders = HTTPHeaders()) {
        writeHead(status: status, contentLength: headers["content-length"].flatMap { Int($0) }) { out in
            Self.appendFields(headers, to: &out)
        }
    }

    /// Starts a streamed response whose fields `writeFields` appends straight to the output (`name: value`
    /// lines, each ending in CRLF; no framing or connection fields — those come from `contentLength` and
    /// the connection). For a relay, which would otherwise build a field list only to serialise it.
    public func writeHead(status: Int, contentLength: Int?, writeFields: (inout [UInt8]) -> Void) {
        connection.loop.assertInLoop()
        guard case .initial = state else { return }
        self.status = status
        let framing: Framing
        if !Self.bodyAllowed(status) {
            framing = .none
        } else if let n = contentLength {
            framing = .length(n)
        } else if version == .http11 {
            framing = .chunked
        } else {
            keepAlive = false
            framing = .closeDelimited
        }
        if case .chunked = framing { state = .streaming(chunked: true) } else { state = .streaming(chunked: false) }
        connection.enqueue { headBytes(into: &$0, status: status, framing: framing, writeFields: writeFields) }
    }

    /// Writes a piece of a streamed body; suspends while the client is behind.
    public func write(_ bytes: [UInt8]) async throws(HTTPWriteError) {
        connection.loop.assertInLoop()
        guard case .streaming = state else { throw .invalidState("write without writeHead, or after end") }
        if isClosed { throw .connectionClosed }
        writeNow(bytes)
        try await connection.waitForWritable()
    }

    /// True while more than the high-water mark of output waits for a slow client: stop producing.
    public var isBackedUp: Bool { connection.pendingOutput > HTTPConnection.highWater }

    /// Queues a piece of a streamed body without waiting; pair with `isBackedUp` and `whenDrained`.
    public func writeNow(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { writeNow($0) }
    }

    /// Queues a copy of `bytes` (the only copy: straight into the connection's output).
    public func writeNow(_ bytes: UnsafeRawBufferPointer) {
        connection.loop.assertInLoop()
        guard case .streaming(let chunked) = state, !isClosed, !bytes.isEmpty, !isHead else { return }
        bytesWritten += bytes.count
        if chunked {
            var size = Array(String(bytes.count, radix: 16).utf8)
            size.append(contentsOf: [0x0D, 0x0A])
            connection.enqueue(size)
            connection.enqueue(bytes)
            Self.crlf.withUnsafeBytes { connection.enqueue($0) }
        } else {
            connection.enqueue(bytes)
        }
    }

    private static let crlf: [UInt8] = [0x0D, 0x0A]

    /// Calls `callback` once the queued output has been written (at once if nothing is queued).
    public func whenDrained(_ callback: @escaping () -> Void) {
        connection.loop.assertInLoop()
        if isClosed { return }
        if connection.pendingOutput == 0 { callback(); return }
        connection.onDrained.append(callback)
    }

    /// Ends a streamed response.
    public func end() {
        connection.loop.assertInLoop()
        guard case .streaming(let chunked) = state else { return }
        state = .done
        if chunked && !isHead { connection.enqueue(Array("0\r\n\r\n".utf8)) }
        connection.responseComplete(keepAlive: keepAlive)
    }

    /// Ends the stream abruptly (e.g. the upstream failed mid-body): what was written still goes out, then
    /// the connection closes without the body's proper end, so the client sees a truncated response.
    public func abort() {
        connection.loop.assertInLoop()
        state = .done
        keepAlive = false
        connection.responseComplete(keepAlive: false)
    }

    /// Runs `body` as a task that starts right here and whose continuations run on this response's loop
    /// (its executor preference); when `body` returns, a response it left unfinished is finished for it —
    /// a 500 if nothing was sent, the end of the body if it was streaming.
    public func runTask(_ body: @escaping @Sendable () async -> Void) {
        Task.immediateDetached(executorPreference: connection.loop) { [self] in
            await body()
            finishAbandoned()
        }
    }

    private func finishAbandoned() {
        switch state {
        case .initial:
            respond(status: 500, headers: ["content-type": "application/json"],
                    body: Array("{\"error\":{\"message\":\"internal error: no response\",\"type\":\"server_error\",\"param\":null,\"code\":null}}".utf8))
        case .streaming:
            end()
        case .done:
            break
        }
    }

    // MARK: Head serialisation

    enum Framing {
        case none
        case length(Int)
        case chunked
        case closeDelimited
    }

    private static let status200 = Array("HTTP/1.1 200 OK\r\n".utf8)
    private static let contentLengthPrefix = Array("content-length: ".utf8)

    static func bodyAllowed(_ status: Int) -> Bool {
        !(status < 200 || status == 204 || status == 304)
    }

    /// Appends `headers` as `name: value` lines, leaving out the framing and connection fields the writer
    /// sets itself.
    static func appendFields(_ headers: HTTPHeaders, to out: inout [UInt8]) {
        headers.appendLines(to: &out) { name in
            HTTPHeaders.isName(name, "content-length") || HTTPHeaders.isName(name, "transfer-encoding")
                || HTTPHeaders.isName(name, "connection") || HTTPHeaders.isName(name, "keep-alive")
        }
    }

    /// Appends the response head to `out`: status line, the fields `writeFields` appends, framing, date.
    private func headBytes(into out: inout [UInt8], status: Int, framing: Framing, writeFields: (inout [UInt8]) -> Void) {
        if connection.draining || connection.server.isDraining { keepAlive = false }
        if status == 200 {
            out.append(contentsOf: Self.status200)
        } else {
            out.append(contentsOf: "HTTP/1.1 \(status) \(HTTPStatus.reason(status))\r\n".utf8)
        }
        writeFields(&out)
        switch framing {
        case .none, .closeDelimited: break
        case .length(let n):
            out.append(contentsOf: Self.contentLengthPrefix)
            appendDecimal(&out, n)
            out.append(contentsOf: [0x0D, 0x0A])
        case .chunked: out.append(contentsOf: "transfer-encoding: chunked\r\n".utf8)
        }
        if !keepAlive {
            out.append(contentsOf: "connection: close\r\n".utf8)
        } else if version == .http10 {
            out.append(contentsOf: "connection: keep-alive\r\n".utf8)
        }
        out.append(contentsOf: "date: ".utf8)
        out.append(contentsOf: connection.server.dateCache.current(loopNow: connection.loop.now))
        out.append(contentsOf: "\r\n\r\n".utf8)
    }
}

/// Appends the decimal digits of a non-negative `n`.
@inline(__always)
func appendDecimal(_ out: inout [UInt8], _ n: Int) {
    if n < 10 {
        out.append(UInt8(truncatingIfNeeded: n) &+ 0x30)
        return
    }
    var digits: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8,
                 UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) =
        (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
    var count = 0
    var v = n
    withUnsafeMutableBytes(of: &digits) { d in
        while v > 0 {
            d[count] = UInt8(truncatingIfNeeded: v % 10) &+ 0x30
            v /= 10
            count += 1
        }
        for i in stride(from: count - 1, through: 0, by: -1) { out.append(d[i]) }
    }
}
