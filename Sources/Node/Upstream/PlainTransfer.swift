import CLinux
import Glibc

/// One call on a plain-HTTP connection: take a kept-alive connection or connect (every resolved address
/// in turn), send head and body with one `sendmsg`, decode the response as it is read, and hand the
/// connection back for reuse when the response ended cleanly.
///
/// A kept-alive connection can be closed by the provider just as a request goes out on it; when that
/// happens before a single response byte arrived, the call is retried once on a new connection (what
/// curl does too). Timeouts: connect; first byte (until the head); then idle (silence mid-body, not
/// counting time paused for a slow client). Loop thread only.
final class PlainTransfer: UpstreamCall, LoopDeferred {
    var delegate: (any UpstreamCallDelegate)?
    private(set) var headWasDelivered = false

    private let client: PlainHTTPClient
    private let target: PlainHTTPTarget
    private let head: [UInt8]
    private let body: [UInt8]
    private let headError: String?
    private let isHEAD: Bool
    private var loop: EventLoop { client.loop }
    private var timeouts: UpstreamTimeouts { client.timeouts }

    private var connection: PlainHTTPConnection?
    private var reused = false
    private var retried = false
    private var connecting = false
    private var addresses: HostResolver.Addresses = []
    private var addressIndex = 0
    private var written = 0
    private var writing = false
    private var decoder: HTTP1ResponseDecoder
    private var received = 0
    /// When the whole request had gone out (0 before).
    private var sentAt: UInt64 = 0
    /// Bytes read but not yet consumed; while paused it starts with `pendingBody` bytes of decoded body.
    private var carry: [UInt8] = []
    private var pendingBody = 0
    private var paused = false
    private var finished = false
    /// When the first-byte or idle timeout is next due; checked by the client's deadline sweep.
    private(set) var deadline: UInt64 = 0
    /// This call's place in the client's list of calls with a deadline (-1: not in it).
    var deadlineSlot = -1
    private var connectTimer: UInt64?
    private var lastActivity: UInt64 = 0
    private var retainedSelf: PlainTransfer?

    /// A call to `target` with `suffix` (path and query) after its request target.
    init(client: PlainHTTPClient, method: HTTPMethod, target: PlainHTTPTarget, suffix: Substring = "", headers: HTTPHeaders, body: [UInt8]) {
        self.client = client
        self.target = target
        self.body = body
        isHEAD = method == .HEAD
        decoder = HTTP1ResponseDecoder(requestWasHEAD: isHEAD)
        do {
            head = try PlainHTTPRequest.head(method: method, target: target, suffix: suffix, headers: headers, bodyCount: body.count)
            headError = nil
        } catch {
            head = []
            headError = "request header \"\(error.name)\" has a character that cannot be sent"
        }
    }

    // MARK: UpstreamCall

    func start() {
        // Cancelled before it started (the client left while its key or its admission was awaited): the
        // end has been delivered, and the provider must not get the request.
        guard !finished else { return }
        retainedSelf = self
        if let headError {
            finish(.failure(.internalError(headError)))
            return
        }
        lastActivity = loop.now
        arm(at: lastActivity &+ UInt64(timeouts.firstByte) * 1_000_000)
        begin(allowReuse: true)
    }

    func cancel() {
        guard !finished else { return }
        finish(.failure(.cancelled))
    }

    func resume() {
        guard paused, !finished else { return }
        // Not from inside the caller's drain callback: the bytes go out on the next turn of the loop.
        loop.enqueueLocal { [self] in continueAfterPause() }
    }

    /// The send `begin` left for the end of the loop iteration. Meanwhile the kept-alive connection may have
    /// been found closed (a later event of the same batch) and the call moved to a new connection, which
    /// sends once it is connected.
    func runDeferred() {
        guard !finished, !connecting else { return }
        send()
    }

    // MARK: Connecting

    private func begin(allowReuse: Bool) {
        if allowReuse, let c = client.takeIdle(target.authority) {
            attach(c, reused: true)
            // Sent with the other requests this loop iteration starts (`runDeferred`), ahead of its responses.
            loop.enqueueLocal(self)
            return
        }
        client.resolver.resolve(target.host, port: target.port, on: loop) { [self] result in
            guard !finished else { return }
            switch result {
            case .failure(let f): finish(.failure(.unreachable(f.description)))
            case .success(let list):
                addresses = list
                addressIndex = 0
                connectNext(lastError: nil)
            }
        }
    }

    private func attach(_ c: PlainHTTPConnection, reused: Bool) {
        connection = c
        c.transfer = self
        self.reused = reused
    }

    /// Tries the next resolved address, or fails with the last error.
    private func connectNext(lastError: String?) {
        guard addressIndex < addresses.count else {
            finish(.failure(.unreachable("could not connect to \(target.authority): \(lastError ?? "no address")")))
            return
        }
        var a = addresses[addressIndex]
        addressIndex += 1
        let fd = socket(a.family, llmp_sock_stream | llmp_sock_nonblock_cloexec, 0)
        guard fd >= 0 else { return connectNext(lastError: String(cString: strerror(errno))) }
        var one: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        let rc = withUnsafePointer(to: &a.storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, a.length) }
        }
        if rc != 0 && errno != EINPROGRESS {
            let e = String(cString: strerror(errno))
            Sys.close(fd)
            return connectNext(lastError: e)
        }
        let c = PlainHTTPConnection(fd: fd, authority: target.authority, client: client)
        client.stats.opened.add(1, ordering: .relaxed)
        attach(c, reused: false)
        connecting = true
        do { try c.watch(.write) } catch {
            connecting = false
            dropConnection()
            return connectNext(lastError: error.description)
        }
        connectTimer = loop.schedule(afterNanos: UInt64(timeouts.connect) * 1_000_000) { [weak self] in
            guard let self, !finished, connecting else { return }
            connectTimer = nil
            finish(.failure(.timeout("could not connect to \(target.authority) within \(formatSeconds(timeouts.connect))")))
        }
    }

    private func connectFinished() {
        connecting = false
        if let t = connectTimer {
            loop.cancelTimer(t)
            connectTimer = nil
        }
        var err: Int32 = 0
        var len = socklen_t(MemoryLayout<Int32>.size)
        getsockopt(connection!.fd, SOL_SOCKET, SO_ERROR, &err, &len)
        if err != 0 {
            dropConnection()
            return connectNext(lastError: String(cString: strerror(err)))
        }
        send()
    }

    // MARK: Events

    func connectionEvents(_ events: UInt32) {
        if connecting {
            if events & (EpollEvents.writable | EpollEvents.error | EpollEvents.hangup) != 0 { connectFinished() }
            return
        }
        if writing, events & (EpollEvents.writable | EpollEvents.error) != 0 {
            send()
            if finished { return }
        }
        if events & (EpollEvents.readable | EpollEvents.hangup | EpollEvents.error) != 0 { read() }
    }

    // MARK: Sending

    private func send() {
        guard let c = connection else { return }
        let total = head.count + body.count
        while written < total {
            let n = head.withUnsafeBytes { h in
                body.withUnsafeBytes { b in
                    var iov = (iovec(), iovec())
                    var count: Int32 = 0
                    if written < h.count {
                        iov.0 = iovec(iov_base: UnsafeMutableRawPointer(mutating: h.baseAddress! + written), iov_len: h.count - written)
                        count = 1
                        if b.count > 0 {
                            iov.1 = iovec(iov_base: UnsafeMutableRawPointer(mutating: b.baseAddress!), iov_len: b.count)
                            count = 2
                        }
                    } else {
                        let offset = written - h.count
                        iov.0 = iovec(iov_base: UnsafeMutableRawPointer(mutating: b.baseAddress! + offset), iov_len: b.count - offset)
                        count = 1
                    }
                    return withUnsafeMutablePointer(to: &iov) { p in
                        p.withMemoryRebound(to: iovec.self, capacity: 2) { iovs in
                            var msg = msghdr()
                            msg.msg_iov = iovs
                            msg.msg_iovlen = Int(count)
                            return sendmsg(c.fd, &msg, Int32(MSG_NOSIGNAL))
                        }
                    }
                }
            }
            if n >= 0 {
                written += n
                continue
            }
            let e = errno
            if e == EINTR { continue }
            if e == EAGAIN || e == EWOULDBLOCK {
                writing = true
                do { try c.watch(Interest.read.union(.write)) } catch { connectionFailed(error.description) }
                return
            }
            // The provider may answer early (413…) and close its reading side: keep reading its answer.
            if decoder.sawHead {
                writing = false
                return
            }
            return connectionFailed("sending the request failed: \(String(cString: strerror(e)))")
        }
        writing = false
        sentAt = loop.now  // (never later than the send: the window below errs on the safe side)
        do { try c.watch(.read) } catch { connectionFailed(error.description) }
    }

    // MARK: Receiving

    private func read() {
        guard let c = connection, !paused else { return }
        let buffer = loop.readBuffer
        let n = Glibc.read(c.fd, buffer.baseAddress, buffer.count)
        if n < 0 {
            let e = errno
            if e == EAGAIN || e == EWOULDBLOCK || e == EINTR { return }
            return connectionFailed("reading the response failed: \(String(cString: strerror(e)))")
        }
        if n == 0 { return endOfInput() }
        received += n
        lastActivity = loop.now
        if carry.isEmpty {
            let bytes = UnsafeRawBufferPointer(rebasing: buffer[0..<n])
            let consumed = process(bytes, from: 0)
            if !finished, consumed < n { carry.append(contentsOf: bytes[consumed...]) }
        } else {
            carry.append(contentsOf: UnsafeRawBufferPointer(rebasing: buffer[0..<n]))
            let consumed = carry.withUnsafeBytes { process($0, from: 0) }
            if !finished { carry.removeFirst(consumed) }
        }
    }

    /// Decodes from `buf[start...]`, delivering head and body; returns how far it consumed (while paused,
    /// the start of the body piece not taken yet).
    private func process(_ buf: UnsafeRawBufferPointer, from start: Int) -> Int {
        var pos = start
        do {
            while true {
                switch try decoder.next(buf, &pos) {
                case .needMore:
                    return pos
                case .head(let h):
                    headWasDelivered = true
                    // Past the head, silence is measured by the idle timeout.
                    let idleDeadline = loop.now &+ UInt64(timeouts.idle) * 1_000_000
                    if idleDeadline < deadline { arm(at: idleDeadline) }
                    delegate?.upstreamHead(h)
                    if finished { return pos }
                case .body(let r):
                    if !(delegate?.upstreamData(UnsafeRawBufferPointer(rebasing: buf[r])) ?? true) {
                        if finished { return pos }
                        paused = true
                        pendingBody = r.count
                        connection?.unwatch()
                        return r.lowerBound
                    }
                    if finished { return pos }
                case .end:
                    complete(reusable: pos == buf.count)
                    return pos
                }
            }
        } catch {
            connectionFailed("the provider sent a malformed response: \(error)")
            return pos
        }
    }

    private func continueAfterPause() {
        guard paused, !finished, let c = connection else { return }
        paused = false
        let consumed = carry.withUnsafeBytes { buf -> Int in
            var from = 0
            if pendingBody > 0 {
                if !(delegate?.upstreamData(UnsafeRawBufferPointer(rebasing: buf[0..<pendingBody])) ?? true) {
                    if !finished { paused = true }
                    return 0
                }
                if finished { return 0 }
                from = pendingBody
                pendingBody = 0
            }
            return process(buf, from: from)
        }
        if finished || paused && consumed == 0 { return }
        carry.removeFirst(consumed)
        if !paused {
            lastActivity = loop.now
            do { try c.watch(writing ? Interest.read.union(.write) : .read) } catch { connectionFailed(error.description) }
        }
    }

    private func endOfInput() {
        if received == 0 { return connectionFailed("the provider closed the connection before responding") }
        do {
            try decoder.endOfInput()
        } catch {
            return connectionFailed("\(error)")
        }
        dropConnection()
        finish(.success(()))
    }

    // MARK: Ending

    /// The response ended cleanly: the connection goes back for reuse if nothing says otherwise.
    private func complete(reusable: Bool) {
        if let c = connection {
            connection = nil
            c.transfer = nil
            if reusable, decoder.keepAlive, !writing { client.park(c) } else { c.close() }
        }
        finish(.success(()))
    }

    /// The connection failed. On a reused connection with no response byte yet, start over once on a new
    /// one — if the request had not all gone out, or the failure came within the stale-connection window
    /// (a provider that took the whole request and died later may have run it: no second run).
    private func connectionFailed(_ message: String) {
        let soonAfterSending = sentAt == 0 || monotonicNanos() &- sentAt < client.staleConnectionWindowNanos
        if reused, received == 0, !retried, !headWasDelivered, soonAfterSending {
            retried = true
            client.stats.retried.add(1, ordering: .relaxed)
            dropConnection()
            written = 0
            writing = false
            sentAt = 0
            decoder = HTTP1ResponseDecoder(requestWasHEAD: isHEAD)
            begin(allowReuse: false)
            return
        }
        finish(.failure(.unreachable("upstream failed: \(message)")))
    }

    private func dropConnection() {
        connection?.close()
        connection = nil
    }

    private func arm(at when: UInt64) {
        deadline = when
        client.watchDeadline(self)
    }

    /// The client's sweep found `deadline` passed: time out, or move the deadline on.
    func deadlineReached() {
        guard !finished else { return }
        guard headWasDelivered else {
            return finish(.failure(.timeout("no response from upstream within \(formatSeconds(timeouts.firstByte))")))
        }
        let now = monotonicNanos()
        let idle = UInt64(timeouts.idle) * 1_000_000
        if paused { return arm(at: now &+ idle) }  // waiting for the client, not for the provider
        if now &- lastActivity >= idle {
            return finish(.failure(.timeout("upstream sent nothing for \(formatSeconds(timeouts.idle))")))
        }
        arm(at: lastActivity &+ idle)
    }

    private func finish(_ result: UpstreamResult) {
        guard !finished else { return }
        finished = true
        client.unwatchDeadline(self)
        if let t = connectTimer { loop.cancelTimer(t) }
        connectTimer = nil
        dropConnection()
        let receiver = delegate
        delegate = nil
        receiver?.upstreamEnd(result)
        retainedSelf = nil  // every caller into this object holds its own reference for the call
    }
}

/// `1.5s`, `120s`: a timeout in milliseconds for messages.
func formatSeconds(_ millis: Int) -> String {
    millis % 1000 == 0 ? "\(millis / 1000)s" : "\(Double(millis) / 1000)s"
}
