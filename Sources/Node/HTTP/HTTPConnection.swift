import Storage
import CLinux
import Glibc

/// One accepted client connection on one loop: reads and parses requests, hands each to the handler in
/// turn (pipelined requests wait their turn, so answers go out in order), writes responses with
/// backpressure, and enforces header/body/idle timeouts.
///
/// Lives on its loop's thread only; see `HTTPResponseWriter` for the one way in from handler tasks.
final class HTTPConnection: EventHandler, LoopDeferred {
    enum State {
        case idle          // waiting for (more of) a request
        case handling      // a request is with the handler
        case closing       // flushing the last bytes, then closing
        case lingering     // write side shut; discarding input briefly so the client reads our answer
        case closed
    }

    let fd: Int32
    let loop: EventLoop
    unowned let server: HTTPServerLoop
    private(set) var state: State = .idle
    private var parser: HTTPRequestParser
    private var input: [UInt8] = []
    private var inputIndex = 0
    private var output: [UInt8] = []
    private var outputIndex = 0
    private var interest: Interest = .read
    private(set) var deadline: UInt64 = 0
    private var writer: HTTPResponseWriter?
    private var drainWaiter: CheckedContinuation<Void, any Error>?
    private(set) var draining = false
    /// Told if the client goes away while a response is under way.
    var disconnectObserver: (any ClientDisconnectObserver)?
    /// One-shot callbacks for when queued output has gone out (callback-style backpressure).
    var onDrained: [() -> Void] = []

    static let highWater = 64 * 1024
    static let lowWater = 16 * 1024

    init(fd: Int32, loop: EventLoop, server: HTTPServerLoop) {
        self.fd = fd
        self.loop = loop
        self.server = server
        self.parser = HTTPRequestParser(limits: server.config.limits)
        armIdleDeadline()
    }

    var pendingOutput: Int { output.count - outputIndex }
    var isIdle: Bool { state == .idle && !parser.isMidRequest && inputIndex == input.count }

    // MARK: Events

    func handleEvents(_ events: UInt32) {
        if events & EpollEvents.writable != 0 {
            flush()
            if state == .closed { return }
        }
        if events & (EpollEvents.readable | EpollEvents.hangup | EpollEvents.error) != 0 {
            readAvailable()
        }
    }

    private func readAvailable() {
        let buffer = loop.readBuffer
        let result: IOResult<Int>
        do {
            result = try Sys.read(fd, buffer)
        } catch {
            close()
            return
        }
        guard case .processed(let n) = result else { return }
        if n == 0 {
            // The client closed (or half-closed) its side. Whatever is in flight has no one to go to.
            close()
            return
        }
        switch state {
        case .lingering:
            return
        case .closing, .closed:
            return
        case .idle, .handling:
            input.append(contentsOf: UnsafeRawBufferPointer(rebasing: buffer[0..<n]))
        }
        if state == .idle {
            processInput()
        } else if input.count - inputIndex > server.config.limits.maxHeaderBytes {
            // Pipelined bytes pile up behind a slow response: stop reading, but still hear a hang-up.
            setInterest(Interest(rawValue: EPOLLRDHUP.rawValue) .union(output.count > outputIndex ? .write : []))
        }
    }

    // MARK: Parsing

    private var processingInput = false

    private func processInput() {
        // A handler that answers synchronously re-enters through `responseComplete`; the loop below
        // picks up the next pipelined request instead of recursing.
        if processingInput { return }
        processingInput = true
        defer { processingInput = false }
        while state == .idle {
            let result: (consumed: Int, output: HTTPRequestParser.Output)
            do {
                result = try input.withUnsafeBufferPointer { all throws(HTTPParseError) in
                    try parser.parse(UnsafeBufferPointer(rebasing: all[inputIndex...]))
                }
            } catch {
                refuse(error)
                return
            }
            inputIndex += result.consumed
            switch result.output {
            case .needMore:
                compactInput()
                if parser.isReadingBody {
                    deadline = loop.now &+ server.config.bodyTimeoutNanos
                } else if parser.isMidRequest {
                    if deadline == 0 || !headDeadlineArmed {
                        deadline = loop.now &+ server.config.headerTimeoutNanos
                        headDeadlineArmed = true
                    }
                } else {
                    armIdleDeadline()
                }
                return
            case .continueExpected:
                enqueue(Array("HTTP/1.1 100 Continue\r\n\r\n".utf8))
            case .request(let parsed):
                compactInput()
                dispatch(parsed.request)
            }
        }
    }

    private var headDeadlineArmed = false

    private func armIdleDeadline() {
        headDeadlineArmed = false
        deadline = loop.now &+ server.config.idleTimeoutNanos
    }

    private func compactInput() {
        if inputIndex == input.count {
            input.removeAll(keepingCapacity: input.capacity <= 64 * 1024)
            inputIndex = 0
        } else if inputIndex > 32 * 1024 {
            input.removeFirst(inputIndex)
            inputIndex = 0
        }
    }

    private func dispatch(_ request: HTTPRequest) {
        state = .handling
        deadline = 0
        headDeadlineArmed = false
        let w = HTTPResponseWriter(connection: self, request: request, keepAlive: request.keepAlive && !draining && !server.isDraining)
        writer = w
        server.requestsStarted &+= 1
        server.handler.handle(request, w)
    }

    /// Answers a request the parser refused, then closes.
    private func refuse(_ error: HTTPParseError) {
        let body = Array("{\"error\":{\"message\":\"\(jsonEscape(error.message))\",\"type\":\"invalid_request_error\",\"param\":null,\"code\":null}}".utf8)
        var head = "HTTP/1.1 \(error.status) \(HTTPStatus.reason(error.status))\r\ncontent-type: application/json\r\n"
        head += "content-length: \(body.count)\r\nconnection: close\r\n\r\n"
        state = .closing
        deadline = monotonicNanos() &+ 2_000_000_000
        enqueue(Array(head.utf8) + body)
        finishClosing()
    }

    // MARK: Responses (called by HTTPResponseWriter)

    /// Queues bytes. A complete response (`immediately`) is written at once when nothing else is queued —
    /// one send, no deferral. Pieces of a streamed response go out at the end of this loop iteration, so a
    /// head and body produced in one pass (a proxied answer) leave in one send.
    func enqueue(_ bytes: [UInt8], immediately: Bool = false) {
        guard state != .closed && state != .lingering else { return }
        if immediately && outputIndex == output.count && !flushScheduled && !interest.contains(.write) {
            guard let written = writeToSocket(bytes, from: 0) else { return }
            if written == bytes.count { return }
            output.removeAll(keepingCapacity: true)
            outputIndex = 0
            output.append(contentsOf: bytes[written...])
            setInterest(interest.union(.write))
            return
        }
        bytes.withUnsafeBytes { enqueue($0) }
    }

    /// Queues a copy of `bytes`, to go out at the end of this loop iteration.
    func enqueue(_ bytes: UnsafeRawBufferPointer) {
        enqueue { $0.append(contentsOf: bytes) }
    }

    /// Queues what `write` appends to the output, in place (no intermediate array).
    func enqueue(writing write: (inout [UInt8]) -> Void) {
        guard state != .closed && state != .lingering else { return }
        if outputIndex == output.count && output.capacity > 0 && output.count > 0 {
            output.removeAll(keepingCapacity: true)
            outputIndex = 0
        }
        write(&output)
        scheduleFlush()
    }

    /// Flushes at the end of this loop iteration, unless already due (or waiting for the socket).
    private func scheduleFlush() {
        if !flushScheduled && !interest.contains(.write) {
            flushScheduled = true
            loop.enqueueFlush(self)
        }
    }

    func runDeferred() {
        flushScheduled = false
        flush()
    }

    private var flushScheduled = false

    /// Writes `bytes[from...]` until the socket would block; returns how far it got, nil if the connection
    /// failed (and is closed).
    private func writeToSocket(_ bytes: [UInt8], from start: Int) -> Int? {
        var written = start
        while written < bytes.count {
            let r: IOResult<Int>
            do {
                r = try bytes.withUnsafeBytes { p throws(SystemError) in
                    try Sys.write(fd, UnsafeRawBufferPointer(rebasing: p[written...]))
                }
            } catch {
                close()
                return nil
            }
            guard case .processed(let n) = r else { break }
            written += n
        }
        return written
    }

    private func flush() {
        guard let written = writeToSocket(output, from: outputIndex) else { return }
        outputIndex = written
        if outputIndex < output.count {
            if !interest.contains(.write) { setInterest(interest.union(.write)) }
            return
        }
        output.removeAll(keepingCapacity: output.capacity <= 256 * 1024)
        outputIndex = 0
        if interest.contains(.write) { setInterest(interest.subtracting(.write)) }
        if let waiter = drainWaiter {
            drainWaiter = nil
            waiter.resume()
        }
        if !onDrained.isEmpty {
            let callbacks = onDrained
            onDrained = []
            for cb in callbacks { cb() }
        }
        if state == .closing { finishClosing() }
    }

    /// Suspends the writer while more than `highWater` bytes wait for the socket.
    func waitForWritable() async throws(HTTPWriteError) {
        if state == .closed { throw .connectionClosed }
        if pendingOutput <= Self.highWater { return }
        do {
            try await withCheckedThrowingContinuation { (c: CheckedContinuation<Void, any Error>) in
                drainWaiter = c
            }
        } catch {
            throw .connectionClosed
        }
    }

    /// The handler finished its response.
    func responseComplete(keepAlive: Bool) {
        writer = nil
        // Disconnect and drain callbacks belong to the response that just ended.
        disconnectObserver = nil
        onDrained = []
        server.requestsFinished &+= 1
        // Goes out with the iteration's other writes (`EventLoop.enqueueFlush`): sent from here, ahead of
        // the rest of the batch, each response woke its client by itself (at 16 connections 12 of 12
        // alternated pairs were 1-8% faster without that). At one connection the response now also waits
        // for the exchange's bookkeeping (usage record, metrics): a few µs.
        if outputIndex < output.count { scheduleFlush() }
        guard state == .handling else { return }
        if keepAlive && !draining && !server.isDraining {
            state = .idle
            armIdleDeadline()
            if !interest.contains(.read) { setInterest(interest.union(.read)) }
            if inputIndex < input.count { processInput() }
        } else {
            state = .closing
            deadline = loop.now &+ server.config.idleTimeoutNanos
            finishClosing()
        }
    }

    /// Closes once the output is flushed; if request bytes may still be arriving, lingers so the client
    /// gets to read the answer instead of a reset.
    private func finishClosing() {
        guard state == .closing, outputIndex == output.count else { return }
        if parser.isMidRequest || inputIndex < input.count {
            state = .lingering
            _ = shutdown(fd, Int32(SHUT_WR))
            deadline = monotonicNanos() &+ 2_000_000_000
            setInterest(.read)
        } else {
            close()
        }
    }

    // MARK: Timeouts, draining, closing

    func checkTimeout(now: UInt64) {
        guard deadline != 0, now >= deadline else { return }
        switch state {
        case .idle where parser.isMidRequest:
            let message = parser.isReadingBody ? "timed out reading the request body" : "timed out reading the request head"
            state = .closing
            let body = Array("{\"error\":{\"message\":\"\(message)\",\"type\":\"invalid_request_error\",\"param\":null,\"code\":\"request_timeout\"}}".utf8)
            let head = "HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\ncontent-length: \(body.count)\r\nconnection: close\r\n\r\n"
            deadline = now &+ 1_000_000_000
            enqueue(Array(head.utf8) + body)
            finishClosing()
        case .handling:
            break
        default:
            close()
        }
    }

    /// Server shutdown: close if idle, otherwise close after the current response.
    func drain() {
        draining = true
        if isIdle || state == .lingering { close() }
    }

    func close() {
        guard state != .closed else { return }
        state = .closed
        loop.unregister(fd)
        Sys.close(fd)
        input = []
        output = []
        outputIndex = 0
        if let waiter = drainWaiter {
            drainWaiter = nil
            waiter.resume(throwing: HTTPWriteError.connectionClosed)
        }
        onDrained = []
        let observer = disconnectObserver
        disconnectObserver = nil
        observer?.clientDisconnected()
        server.connectionClosed(self)
    }

    private func setInterest(_ new: Interest) {
        guard new != interest, state != .closed else { return }
        interest = new
        do { try loop.modify(fd, interest: new) } catch { close() }
    }
}
