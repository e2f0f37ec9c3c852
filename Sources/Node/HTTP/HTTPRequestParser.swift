/// An incremental, strict HTTP/1.1 request parser.
///
/// Feed it the unconsumed bytes of a connection; it says how many it consumed and whether a request is
/// complete. It refuses what request smuggling relies on: Content-Length with Transfer-Encoding, repeated
/// or malformed Content-Length, transfer codings other than a lone `chunked`, bad chunk sizes, obs-fold,
/// bare CR or LF line endings, whitespace before a colon, control bytes in values, and missing `Host`
/// on HTTP/1.1.
public struct HTTPRequestParser {
    public enum Output: Equatable {
        case needMore
        /// The head asked for `Expect: 100-continue` and the body has not arrived yet.
        case continueExpected
        case request(HTTPRequestHeadAndBody)
    }

    enum State {
        case head
        case fixedBody(remaining: Int)
        case chunkSize
        case chunkData(remaining: Int)
        case chunkDataEnd
        case trailers
    }

    public let limits: HTTPParserLimits
    private var state: State = .head
    private var scanned = 0
    private var head: HTTPRequestHead?
    private var body: [UInt8] = []
    private var trailerBytes = 0

    public init(limits: HTTPParserLimits = HTTPParserLimits()) {
        self.limits = limits
    }

    /// True between the first byte of a request and its end.
    public var isMidRequest: Bool {
        if case .head = state { return scanned > 0 }
        return true
    }

    public var isReadingBody: Bool {
        if case .head = state { return false }
        return true
    }

    /// Parses as much of `bytes` as possible. `bytes` must start where the previous call's consumption ended.
    public mutating func parse(_ bytes: UnsafeBufferPointer<UInt8>) throws(HTTPParseError) -> (consumed: Int, output: Output) {
        var pos = 0
        while true {
            switch state {
            case .head:
                guard let (headLength, parsed) = try parseHead(bytes) else { return (0, .needMore) }
                pos = headLength
                scanned = 0
                head = parsed
                body = []
                switch parsed.framing {
                case .none:
                    return (pos, .request(finish()))
                case .length(let n):
                    if n > limits.maxBodyBytes {
                        throw HTTPParseError(.bodyTooLarge, "request body of \(n) bytes exceeds the limit of \(limits.maxBodyBytes)")
                    }
                    body.reserveCapacity(n)
                    state = .fixedBody(remaining: n)
                case .chunked:
                    state = .chunkSize
                }
                if parsed.expectContinue {
                    // Send 100 Continue only if the body is not already here.
                    let available = bytes.count - pos
                    if case .fixedBody(let n) = state, available < n { return (pos, .continueExpected) }
                    if case .chunkSize = state, available == 0 { return (pos, .continueExpected) }
                }

            case .fixedBody(let remaining):
                let take = min(remaining, bytes.count - pos)
                body.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[pos..<(pos + take)]))
                pos += take
                if take == remaining { return (pos, .request(finish())) }
                state = .fixedBody(remaining: remaining - take)
                return (pos, .needMore)

            case .chunkSize:
                guard let lineEnd = try findLineEnd(bytes, from: pos, limit: limits.maxChunkLineBytes, what: "chunk size line") else {
                    return (pos, .needMore)
                }
                let size = try parseChunkSize(UnsafeBufferPointer(rebasing: bytes[pos..<lineEnd]))
                pos = lineEnd + 2
                if size == 0 {
                    state = .trailers
                    trailerBytes = 0
                } else {
                    if size > limits.maxBodyBytes - body.count {
                        throw HTTPParseError(.bodyTooLarge, "chunked request body exceeds the limit of \(limits.maxBodyBytes) bytes")
                    }
                    state = .chunkData(remaining: size)
                }

            case .chunkData(let remaining):
                let take = min(remaining, bytes.count - pos)
                body.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[pos..<(pos + take)]))
                pos += take
                if take < remaining {
                    state = .chunkData(remaining: remaining - take)
                    return (pos, .needMore)
                }
                state = .chunkDataEnd

            case .chunkDataEnd:
                if bytes.count - pos < 2 { return (pos, .needMore) }
                guard bytes[pos] == cr, bytes[pos + 1] == lf else {
                    throw HTTPParseError(.badRequest, "chunk data not followed by CRLF")
                }
                pos += 2
                state = .chunkSize

            case .trailers:
                let remainingBudget = limits.maxHeaderBytes - trailerBytes
                guard let lineEnd = try findLineEnd(bytes, from: pos, limit: remainingBudget, what: "trailer section") else {
                    return (pos, .needMore)
                }
                let line = UnsafeBufferPointer(rebasing: bytes[pos..<lineEnd])
                trailerBytes += line.count + 2
                pos = lineEnd + 2
                if line.isEmpty { return (pos, .request(finish())) }
                // Trailers are validated like header fields and then dropped: nothing here acts on them.
                _ = try parseField(line)
            }
        }
    }

    private mutating func finish() -> HTTPRequestHeadAndBody {
        let h = head!
        head = nil
        state = .head
        let b = body
        body = []
        return HTTPRequestHeadAndBody(head: h, body: b)
    }

    // MARK: Head

    /// Finds the end of the head (CRLF CRLF); nil if more bytes are needed.
    private mutating func parseHead(_ bytes: UnsafeBufferPointer<UInt8>) throws(HTTPParseError) -> (Int, HTTPRequestHead)? {
        // Skip empty lines before the request line (RFC 9112 §2.2), e.g. a stray CRLF after a body.
        var start = 0
        while start + 1 < bytes.count, bytes[start] == cr, bytes[start + 1] == lf { start += 2 }
        if start > limits.maxHeaderBytes { throw HTTPParseError(.badRequest, "too many empty lines before the request line") }
        // Scan no further than the limit, so the verdict does not depend on how the bytes were split.
        let scanLimit = min(bytes.count, start + limits.maxHeaderBytes)
        var i = max(scanned, start)
        var end = -1
        // From line feed to line feed (memchr), checking each is preceded by CR, until an empty line.
        while let at = HeadBytes.index(of: lf, in: bytes, from: i, to: scanLimit) {
            guard at > start, bytes[at - 1] == cr else {
                throw HTTPParseError(.badRequest, "bare LF in the request head; lines must end with CRLF")
            }
            if at - start >= 3, bytes[at - 2] == lf, bytes[at - 3] == cr {
                end = at + 1
                break
            }
            i = at + 1
        }
        if end < 0 {
            if scanLimit - start >= limits.maxHeaderBytes {
                throw HTTPParseError(.headersTooLarge, "request head exceeds \(limits.maxHeaderBytes) bytes")
            }
            scanned = scanLimit
            return nil
        }
        let head = try parseHeadLines(UnsafeBufferPointer(rebasing: bytes[start..<(end - 2)]))
        return (end, head)
    }

    /// Parses request line and fields. `block` holds every line with its CRLF, minus the final empty line.
    private func parseHeadLines(_ block: UnsafeBufferPointer<UInt8>) throws(HTTPParseError) -> HTTPRequestHead {
        guard let firstLF = block.firstIndex(of: lf) else { throw HTTPParseError(.badRequest, "empty request") }
        var head = try parseRequestLine(UnsafeBufferPointer(rebasing: block[0..<(firstLF - 1)]))
        var headers = HTTPHeaders(capacity: 16)
        var contentLength: Int?
        var transferCodings: [Substring] = []
        var sawTE = false
        var hostCount = 0
        var connectionClose = false, connectionKeepAlive = false
        var expect: String?
        var lineStart = firstLF + 1
        while lineStart < block.count {
            // Every line in `block` ends with CRLF.
            let lineEnd = HeadBytes.index(of: lf, in: block, from: lineStart, to: block.count) ?? block.count
            let line = UnsafeBufferPointer(rebasing: block[lineStart..<(lineEnd - 1)])
            lineStart = lineEnd + 1
            if headers.count == limits.maxHeaderCount {
                throw HTTPParseError(.headersTooLarge, "more than \(limits.maxHeaderCount) header fields")
            }
            if let first = line.first, first == sp || first == ht {
                throw HTTPParseError(.badRequest, "obsolete line folding in header fields is not allowed")
            }
            let (name, value) = try parseField(line)
            // The fields that frame the request, by length first (no string is made for the others).
            switch name.count {
            case 14 where HTTPHeaders.isName(name, "content-length"):
                if contentLength != nil { throw HTTPParseError(.badRequest, "more than one Content-Length") }
                guard !value.isEmpty, value.count <= 18, value.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else {
                    throw HTTPParseError(.badRequest, "invalid Content-Length \"\(String(decoding: value.prefix(40), as: UTF8.self))\"")
                }
                contentLength = value.reduce(0) { $0 * 10 + Int($1 - 0x30) }
            case 17 where HTTPHeaders.isName(name, "transfer-encoding"):
                sawTE = true
                for part in String(decoding: value, as: UTF8.self).split(separator: ",", omittingEmptySubsequences: false) {
                    let t = part.trimmingOWS()
                    if t.isEmpty { throw HTTPParseError(.badRequest, "empty transfer coding") }
                    transferCodings.append(t)
                }
            case 4 where HTTPHeaders.isName(name, "host"):
                hostCount += 1
            case 10 where HTTPHeaders.isName(name, "connection"):
                for part in String(decoding: value, as: UTF8.self).split(separator: ",") {
                    let t = part.trimmingOWS()
                    if t.asciiCaseInsensitiveEquals("close") { connectionClose = true }
                    if t.asciiCaseInsensitiveEquals("keep-alive") { connectionKeepAlive = true }
                }
            case 6 where HTTPHeaders.isName(name, "expect"):
                expect = String(decoding: value, as: UTF8.self)
            default:
                break
            }
            headers.append(name: name, lowercasingName: true, value: value)
        }
        if head.version == .http11 && hostCount != 1 {
            throw HTTPParseError(.badRequest, hostCount == 0 ? "missing Host header" : "more than one Host header")
        }
        if hostCount > 1 { throw HTTPParseError(.badRequest, "more than one Host header") }
        if sawTE {
            if contentLength != nil {
                throw HTTPParseError(.badRequest, "both Content-Length and Transfer-Encoding; refusing ambiguous framing")
            }
            if head.version == .http10 {
                throw HTTPParseError(.badRequest, "Transfer-Encoding is not allowed in HTTP/1.0")
            }
            guard let last = transferCodings.last, last.asciiCaseInsensitiveEquals("chunked") else {
                throw HTTPParseError(.badRequest, "Transfer-Encoding must end with chunked")
            }
            if transferCodings.count != 1 {
                throw HTTPParseError(.notImplemented, "transfer codings other than chunked are not supported")
            }
            head.framing = .chunked
        } else if let n = contentLength {
            head.framing = n > 0 ? .length(n) : .none
        }
        if let e = expect {
            guard e.asciiCaseInsensitiveEquals("100-continue") else {
                throw HTTPParseError(.expectationFailed, "unsupported expectation \"\(e.prefix(40))\"")
            }
            head.expectContinue = head.version == .http11 && head.framing != .none
        }
        head.keepAlive = head.version == .http11 ? !connectionClose : (connectionKeepAlive && !connectionClose)
        head.headers = headers
        return head
    }

    private func parseRequestLine(_ line: UnsafeBufferPointer<UInt8>) throws(HTTPParseError) -> HTTPRequestHead {
        guard let sp1 = line.firstIndex(of: sp), sp1 > 0 else {
            throw HTTPParseError(.badRequest, "malformed request line")
        }
        let methodBytes = UnsafeBufferPointer(rebasing: line[0..<sp1])
        guard HeadBytes.isToken(methodBytes) else { throw HTTPParseError(.badRequest, "invalid method") }
        let rest = UnsafeBufferPointer(rebasing: line[(sp1 + 1)...])
        guard let sp2rel = rest.firstIndex(of: sp), sp2rel > 0 else {
            throw HTTPParseError(.badRequest, "malformed request line")
        }
        let targetBytes = UnsafeBufferPointer(rebasing: rest[0..<sp2rel])
        guard targetBytes.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else {
            throw HTTPParseError(.badRequest, "invalid character in request target")
        }
        let versionBytes = UnsafeBufferPointer(rebasing: rest[(sp2rel + 1)...])
        let version: HTTPVersion
        if versionBytes.equals("HTTP/1.1") {
            version = .http11
        } else if versionBytes.equals("HTTP/1.0") {
            version = .http10
        } else if versionBytes.count == 8, versionBytes.starts(with: "HTTP/".utf8),
                  isDigit(versionBytes[5]), versionBytes[6] == 0x2E, isDigit(versionBytes[7]) {
            throw HTTPParseError(.versionNotSupported, "HTTP version \(String(decoding: versionBytes, as: UTF8.self)) is not supported")
        } else {
            throw HTTPParseError(.badRequest, "malformed HTTP version")
        }
        var target = (targetBytes.count > 15 ? CommonRequestTargets.paths.lookup(targetBytes) : nil) ?? String(decoding: targetBytes, as: UTF8.self)
        let method = HTTPMethod(String(decoding: methodBytes, as: UTF8.self))
        if target.utf8.first != UInt8(ascii: "/") {
            if target == "*" && method == .OPTIONS {
                // asterisk-form
            } else if let authority = Self.afterScheme(target) {
                // absolute-form: keep only the path and query.
                let afterAuthority = authority.firstIndex(where: { $0 == "/" || $0 == "?" })
                target = afterAuthority.map { String(authority[$0...]) } ?? "/"
                if target.first == "?" { target = "/" + target }
            } else {
                throw HTTPParseError(.badRequest, "request target must be a path")
            }
        }
        return HTTPRequestHead(method: method, target: target, version: version)
    }

    /// For an absolute-form target (`http://host/path`), what follows `scheme://`.
    private static func afterScheme(_ target: String) -> Substring? {
        for scheme in ["http://", "https://"] where target.count > scheme.count {
            if target.prefix(scheme.count).asciiCaseInsensitiveEquals(scheme) { return target.dropFirst(scheme.count) }
        }
        return nil
    }

    /// One `name: value` field: the name's bytes (checked to be a token) and the value's without
    /// surrounding whitespace (checked for control bytes).
    private func parseField(_ line: UnsafeBufferPointer<UInt8>) throws(HTTPParseError) -> (UnsafeBufferPointer<UInt8>, UnsafeBufferPointer<UInt8>) {
        guard let colon = HeadBytes.index(of: 0x3A, in: line, from: 0, to: line.count), colon > 0 else {
            throw HTTPParseError(.badRequest, "header field without a name or colon")
        }
        let nameBytes = UnsafeBufferPointer(rebasing: line[0..<colon])
        guard HeadBytes.isToken(nameBytes) else { throw HTTPParseError(.badRequest, "invalid character in header field name") }
        let value = UnsafeBufferPointer(rebasing: line[HeadBytes.trimmed(line, colon + 1, line.count)])
        guard HeadBytes.isFieldValue(value) else { throw HTTPParseError(.badRequest, "invalid character in header field value") }
        return (nameBytes, value)
    }

    // MARK: Chunks

    private func findLineEnd(_ bytes: UnsafeBufferPointer<UInt8>, from: Int, limit: Int, what: String) throws(HTTPParseError) -> Int? {
        var i = from
        while i < bytes.count {
            let b = bytes[i]
            if b == cr {
                if i + 1 >= bytes.count { return nil }
                guard bytes[i + 1] == lf else { throw HTTPParseError(.badRequest, "bare CR in \(what)") }
                return i
            }
            if b == lf { throw HTTPParseError(.badRequest, "bare LF in \(what)") }
            i += 1
            if i - from > limit {
                throw HTTPParseError(what == "trailer section" ? .headersTooLarge : .badRequest, "\(what) too long")
            }
        }
        return nil
    }

    private func parseChunkSize(_ line: UnsafeBufferPointer<UInt8>) throws(HTTPParseError) -> Int {
        switch ChunkSizeLine.parse(line) {
        case .success(let size): return size
        case .failure(.tooLarge): throw HTTPParseError(.badRequest, "chunk size too large")
        case .failure(.invalid): throw HTTPParseError(.badRequest, "invalid chunk size")
        case .failure(.badExtension): throw HTTPParseError(.badRequest, "invalid character in chunk extension")
        }
    }
}

/// A parsed head before its body.
public struct HTTPRequestHead: Sendable, Equatable {
    public enum Framing: Sendable, Equatable {
        case none
        case length(Int)
        case chunked
    }

    public var method: HTTPMethod
    public var target: String
    public var version: HTTPVersion
    public var headers = HTTPHeaders()
    public var framing: Framing = .none
    public var keepAlive = true
    public var expectContinue = false

    public static func == (a: HTTPRequestHead, b: HTTPRequestHead) -> Bool {
        a.method == b.method && a.target == b.target && a.version == b.version && a.framing == b.framing
            && a.keepAlive == b.keepAlive && a.headers == b.headers
    }
}

public struct HTTPRequestHeadAndBody: Sendable, Equatable {
    public var head: HTTPRequestHead
    public var body: [UInt8]

    public var request: HTTPRequest {
        HTTPRequest(method: head.method, target: head.target, version: head.version, headers: head.headers,
                    body: body, keepAlive: head.keepAlive)
    }
}

private let cr: UInt8 = 0x0D
private let lf: UInt8 = 0x0A
private let sp: UInt8 = 0x20
private let ht: UInt8 = 0x09

@inline(__always)
private func isDigit(_ b: UInt8) -> Bool { b >= 0x30 && b <= 0x39 }
