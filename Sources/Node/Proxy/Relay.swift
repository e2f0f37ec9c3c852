/// Moves one upstream response to the client: head, then body pieces as they arrive, pausing the
/// upstream while the client is behind, and reading usage on the way. The call's delegate and the
/// response's disconnect observer, so a request allocates no callback contexts. Loop thread only.
/// (`@unchecked Sendable` only because the exchange that owns it crosses into tasks that run on the loop.)
final class Relay: UpstreamCallDelegate, ClientDisconnectObserver, @unchecked Sendable {
    enum Outcome: Equatable {
        case completed
        case upstreamFailedBeforeHead
        case upstreamFailedMidBody
        case cancelledBeforeHead
        case cancelledMidBody
    }

    let response: HTTPResponseWriter
    let transfer: any UpstreamCall
    let hideUsageChunk: Bool
    let requestID: String
    let anthropic: Bool
    let started: UInt64
    let extraHeaders: [(String, String)]
    var tokens = TokenUsage()
    var bodyBytes = 0
    var status = 0
    private var sse: SSESplitter?
    private var plainBody: [UInt8] = []
    /// Whether a plain body is read for usage (kept, up to `maxScannedBody`, until it ends): JSON, or a body
    /// of no stated type — not audio or an image, which would only be copied for nothing.
    private var scansBody = true
    /// The upstream body's `content-length`, if it had one.
    private var declaredLength: Int?
    static let maxScannedBody = 4 << 20
    static let openStreams = LockedBox(0)
    private var countedAsStream = false

    init(response: HTTPResponseWriter, transfer: any UpstreamCall, hideUsageChunk: Bool, requestID: String, anthropic: Bool, started: UInt64,
         extraHeaders: [(String, String)] = []) {
        self.extraHeaders = extraHeaders
        self.response = response
        self.transfer = transfer
        self.hideUsageChunk = hideUsageChunk
        self.requestID = requestID
        self.anthropic = anthropic
        self.started = started
    }

    /// The exchange told the outcome (held from `start` until then).
    private var owner: ProxyExchange?

    /// Starts the call; `owner` hears the outcome once the response is complete (or cut short).
    func start(for owner: ProxyExchange) {
        self.owner = owner
        transfer.delegate = self
        response.onClientDisconnect(self)
        transfer.start()
    }

    private func finish(_ outcome: Outcome) {
        let o = owner
        owner = nil
        o?.relayFinished(outcome)
    }

    func clientDisconnected() {
        transfer.cancel()
    }

    func upstreamHead(_ head: UpstreamHead) {
        status = head.status
        // A request the proxy added `stream_options` to may be refused for it (strict OpenAI-compatible APIs
        // such as Mistral's answer 422): such an answer is held back until its body says why.
        if hideUsageChunk, head.status == 400 || head.status == 422 {
            held = head
            return
        }
        relayHead(head)
    }

    /// The head of a refusal held back by `upstreamHead`, and its body so far (at most `maxHeldBody`).
    private var held: UpstreamHead?
    private var heldBody: [UInt8] = []
    static let maxHeldBody = 64 << 10

    /// Relays what was held back, and from then on relays as usual.
    private func releaseHeld() {
        guard let head = held else { return }
        held = nil
        relayHead(head)
        let body = heldBody
        heldBody = []
        body.withUnsafeBytes { relayBody($0) }
    }

    /// Whether a body of this content type can hold a `usage` object: JSON (`application/json`, `…+json`,
    /// any type naming json), ignoring case.
    static func mayCarryUsage(contentType: UnsafeBufferPointer<UInt8>) -> Bool {
        guard contentType.count >= 4 else { return false }
        for i in 0...(contentType.count - 4) where HTTPHeaders.equalIgnoringCase(contentType.baseAddress! + i, ("json" as StaticString).utf8Start, 4) {
            return true
        }
        return false
    }

    /// Whether a refusal's body names `stream_options` (`Unrecognized request argument supplied:
    /// stream_options`, pydantic's `"loc":["body","stream_options","include_usage"]`).
    static func blamesStreamOptions(_ body: [UInt8]) -> Bool {
        body.firstRange(of: "stream_options".utf8) != nil  // a short error body, seen once a connection
    }

    private func relayHead(_ head: UpstreamHead) {
        // First the framing and the content type, on the fields' bytes (by name length first).
        var isSSE = false, sawContentType = false, transferCoded = false
        var length: Int?
        head.headers.forEachField { _, name, value in
            switch name.count {
            case 12 where !sawContentType && HTTPHeaders.isName(name, "content-type"):
                sawContentType = true
                // Media types ignore case (RFC 9110 §8.3.1): `Text/Event-Stream` is a stream too.
                isSSE = HTTPHeaders.hasPrefix(value, ignoringCase: "text/event-stream")
                scansBody = Self.mayCarryUsage(contentType: value)
            case 14 where length == nil && HTTPHeaders.isName(name, "content-length"):
                length = HTTP1ResponseDecoder.plainLength(value) ?? Int(String(decoding: value, as: UTF8.self))
            case 17 where HTTPHeaders.isName(name, "transfer-encoding"): transferCoded = true
            default: break
            }
        }
        // (A length beside a transfer coding does not frame the body.)
        declaredLength = transferCoded ? nil : length
        if isSSE {
            sse = SSESplitter()
            countedAsStream = true
            Self.openStreams.withLock { $0 += 1 }
        }
        // Then the head, written straight into the client's output: the provider's fields less the hop's
        // own, our request id, the rate-limit fields, our overhead. The body keeps its length unless usage
        // chunks are taken out of a stream.
        response.writeHead(status: head.status, contentLength: isSSE && hideUsageChunk ? nil : declaredLength) { out in
            head.headers.appendLines(to: &out) { name in
                ProviderRouting.droppedResponseHeaders.contains(name) || HTTPHeaders.isName(name, "x-request-id")
                    || HTTPHeaders.isName(name, "content-length")
                    // The client's limits are its key's, which we add: not the connection's key's beside them.
                    || (!extraHeaders.isEmpty && HTTPHeaders.hasPrefix(name, ignoringCase: "x-ratelimit-"))
            }
            out.appendField("x-request-id", requestID)
            for i in extraHeaders.indices { out.appendField(extraHeaders[i].0, extraHeaders[i].1) }
            out.append(contentsOf: "x-llm-proxy-overhead-ms: ".utf8)
            appendMillis(monotonicNanos() - started, to: &out)
            out.append(0x0D)
            out.append(0x0A)
        }
    }

    func upstreamData(_ bytes: UnsafeRawBufferPointer) -> Bool {
        if held != nil {
            if heldBody.count + bytes.count <= Self.maxHeldBody {
                heldBody.append(contentsOf: bytes)
                return true
            }
            releaseHeld()  // too long for an error about one parameter: relay it as it is
        }
        if response.isBackedUp {
            response.whenDrained { [transfer] in transfer.resume() }
            return false
        }
        relayBody(bytes)
        return true
    }

    private func relayBody(_ bytes: UnsafeRawBufferPointer) {
        bodyBytes += bytes.count
        if sse != nil {
            for event in sse!.feed(bytes) { forward(event: event) }
        } else {
            if !scansBody {
                // relayed as it is
            } else if plainBody.isEmpty && bytes.count == declaredLength {
                _ = tokens.absorb(jsonObject: bytes)  // the whole body in one piece: read usage in place
            } else if plainBody.count + bytes.count <= Self.maxScannedBody {
                plainBody.append(contentsOf: bytes)
            }
            response.writeNow(bytes)
        }
    }

    func upstreamEnd(_ result: UpstreamResult) {
        if held != nil {
            guard case .success = result else {
                held = nil  // nothing reached the client: it gets a 502/504 of ours
                heldBody = []
                return endBeforeClientHead(result)
            }
            if Self.blamesStreamOptions(heldBody), let owner {
                // Refused for the option the proxy added, so nothing ran upstream: the exchange sends the
                // request again as the client wrote it (on the next turn, once this call has let go of
                // its connection), and the client never sees the refusal.
                held = nil
                self.owner = nil
                response.loop.enqueueLocal { owner.usageOptionRefused() }
                return
            }
            releaseHeld()
        }
        if countedAsStream {
            countedAsStream = false
            Self.openStreams.withLock { $0 -= 1 }
        }
        // The exchange accounts (usage, metrics) before the response is completed: completing it can close
        // the connection, and a draining node waits for its connections only — usage recorded after
        // that could miss the final flush.
        switch result {
        case .success:
            if sse != nil {
                let rest = sse!.flush()
                if !rest.isEmpty { response.writeNow(rest) }
            } else if !plainBody.isEmpty {
                plainBody.withUnsafeBytes { _ = tokens.absorb(jsonObject: $0) }
            }
            finish(.completed)
            response.end()
        case .failure(.cancelled):
            finish(transfer.headWasDelivered ? .cancelledMidBody : .cancelledBeforeHead)
        case .failure:
            if transfer.headWasDelivered {
                finish(.upstreamFailedMidBody)
                response.abort()
            } else {
                endBeforeClientHead(result)
            }
        }
    }

    /// The call failed before the client got a head: 502, or 504 for a timeout, in the API's own shape.
    private func endBeforeClientHead(_ result: UpstreamResult) {
        guard case .failure(let e) = result else { return }
        if case .cancelled = e { return finish(.cancelledBeforeHead) }
        let isTimeout: Bool = if case .timeout = e { true } else { false }
        status = isTimeout ? 504 : 502
        finish(.upstreamFailedBeforeHead)
        let err = ProxyError(status: status, type: "server_error", code: isTimeout ? "upstream_timeout" : "upstream_unreachable",
                             message: e.message)
        response.respond(status: status, headers: ["content-type": "application/json", "x-request-id": requestID],
                         body: err.body(anthropic: anthropic))
    }

    private func forward(event: [UInt8]) {
        var usageOnly = false
        for payload in SSESplitter.dataPayloads(event) where payload.first == UInt8(ascii: "{") {
            payload.withUnsafeBytes { usageOnly = tokens.absorb(jsonObject: $0) || usageOnly }
        }
        if hideUsageChunk {
            if usageOnly { return }
            // Asking for usage makes OpenAI add `"usage":null` to every chunk: take it out again.
            response.writeNow(Self.removing(Self.nullUsage, from: event))
            return
        }
        response.writeNow(event)
    }

    static let nullUsage = Array(#","usage":null"#.utf8)

    static func removing(_ needle: [UInt8], from bytes: [UInt8]) -> [UInt8] {
        guard bytes.count >= needle.count else { return bytes }
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        var i = 0
        while i < bytes.count {
            if bytes[i] == needle[0], i + needle.count <= bytes.count, bytes[i..<(i + needle.count)].elementsEqual(needle) {
                i += needle.count
                continue
            }
            out.append(bytes[i])
            i += 1
        }
        return out
    }
}

/// `nanos` as milliseconds with one decimal (`12.3`), written as digits (no string made on the way).
func appendMillis(_ nanos: UInt64, to out: inout [UInt8]) {
    let tenths = nanos / 100_000
    let start = out.count
    var whole = tenths / 10
    repeat {
        out.append(UInt8(0x30 + whole % 10))
        whole /= 10
    } while whole > 0
    out[start...].reverse()  // written lowest digit first
    out.append(0x2E)
    out.append(UInt8(0x30 + tenths % 10))
}
