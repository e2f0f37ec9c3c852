/// Reads one HTTP/1.x response from a provider's bytes as they arrive: the head (interim 1xx heads are
/// skipped), then the body by its framing — `content-length`, `chunked` (de-chunked here; extensions and
/// trailers dropped) or until the connection closes — and the end. It never copies body bytes: a body
/// step names a range of the buffer it was given.
///
/// The caller keeps the bytes it has not consumed (`pos` after a step) and calls again with them at the
/// front and more behind. Strict where a lenient reading could let a response be misframed (malformed
/// status line, field names, lengths, chunk sizes, folded fields), because the connection is reused.
public struct HTTP1ResponseDecoder {
    public enum Step {
        /// Nothing more can be read from these bytes: call again with more.
        case needMore
        case head(UpstreamHead)
        /// `range` of the buffer is response body.
        case body(Range<Int>)
        /// The response is complete; any bytes after `pos` are not part of it.
        case end
    }

    public struct Failure: Error, Equatable, CustomStringConvertible {
        public let description: String
        init(_ d: String) { description = d }
    }

    public enum Framing: Equatable {
        case none
        case length(Int)
        case chunked
        case untilClose
    }

    private enum State {
        case head
        case bodyLength(Int)
        case chunkSize
        case chunkData(Int)
        case chunkDataEnd
        case trailers
        case untilClose
        case complete
    }

    public static let maxHeadBytes = 64 * 1024
    static let maxLineBytes = 8 * 1024
    static let maxTrailerBytes = 16 * 1024

    private let requestWasHEAD: Bool
    private var state = State.head
    /// Bytes after `pos` already searched for the end of the head.
    private var headScanned = 0
    private var trailerBytes = 0
    public private(set) var framing = Framing.none
    /// The connection may carry another request once this response is complete.
    public private(set) var keepAlive = false
    public private(set) var status = 0

    public init(requestWasHEAD: Bool = false) {
        self.requestWasHEAD = requestWasHEAD
    }

    public var isComplete: Bool {
        if case .complete = state { return true }
        return false
    }

    /// True once a final head was read.
    public var sawHead: Bool {
        if case .head = state { return false }
        return true
    }

    /// The next step from `buf[pos...]`, advancing `pos` past what it consumed.
    public mutating func next(_ buf: UnsafeRawBufferPointer, _ pos: inout Int) throws(Failure) -> Step {
        let b = buf.bindMemory(to: UInt8.self)
        while true {
            let available = b.count - pos
            switch state {
            case .head:
                guard let headEnd = findHeadEnd(b, from: pos) else {
                    if available > Self.maxHeadBytes { throw Failure("response head larger than \(Self.maxHeadBytes) bytes") }
                    return .needMore
                }
                let head = try parseHead(b, pos..<headEnd)
                pos = headEnd
                headScanned = 0
                if head.status < 200 { continue }  // interim (100, 103): the final head follows
                return .head(head)
            case .bodyLength(let remaining):
                return body(remaining, available, &pos) { $0 == 0 ? .complete : .bodyLength($0) }
            case .chunkSize:
                guard let lf = lineEnd(b, from: pos) else {
                    if available > Self.maxLineBytes { throw Failure("chunk size line longer than \(Self.maxLineBytes) bytes") }
                    return .needMore
                }
                let size = try Self.chunkSize(UnsafeBufferPointer(rebasing: b[pos..<lf]))
                pos = lf + 1
                state = size == 0 ? .trailers : .chunkData(size)
            case .chunkData(let remaining):
                return body(remaining, available, &pos) { $0 == 0 ? .chunkDataEnd : .chunkData($0) }
            case .chunkDataEnd:
                if available == 0 { return .needMore }
                if b[pos] == 0x0A {
                    pos += 1
                } else if b[pos] == 0x0D {
                    if available < 2 { return .needMore }
                    guard b[pos + 1] == 0x0A else { throw Failure("chunk data not followed by CRLF") }
                    pos += 2
                } else {
                    throw Failure("chunk longer than its size")
                }
                state = .chunkSize
            case .trailers:
                guard let lf = lineEnd(b, from: pos) else {
                    if trailerBytes + available > Self.maxTrailerBytes { throw Failure("trailer section larger than \(Self.maxTrailerBytes) bytes") }
                    return .needMore
                }
                let blank = lf == pos || (lf == pos + 1 && b[pos] == 0x0D)
                trailerBytes += lf + 1 - pos
                if trailerBytes > Self.maxTrailerBytes { throw Failure("trailer section larger than \(Self.maxTrailerBytes) bytes") }
                pos = lf + 1
                if blank { state = .complete }
            case .untilClose:
                if available == 0 { return .needMore }
                pos = b.count
                return .body(pos - available..<pos)
            case .complete:
                return .end
            }
        }
    }

    /// Up to `remaining` body bytes of the `available` ones at `pos`; `next` gives the state for what is
    /// left after them.
    private mutating func body(_ remaining: Int, _ available: Int, _ pos: inout Int, next: (Int) -> State) -> Step {
        if available == 0 { return .needMore }
        let n = min(available, remaining)
        state = next(remaining - n)
        pos += n
        return .body(pos - n..<pos)
    }

    /// The connection reached its end (EOF) with nothing left to decode: fine only for a body delimited by
    /// the close.
    public mutating func endOfInput() throws(Failure) {
        switch state {
        case .complete: return
        case .untilClose: state = .complete
        case .head: throw Failure("connection closed before a complete response head")
        default: throw Failure("connection closed before the end of the response body")
        }
    }

    // MARK: Head

    private mutating func findHeadEnd(_ b: UnsafeBufferPointer<UInt8>, from pos: Int) -> Int? {
        var i = pos + max(0, headScanned - 3)
        while let at = HeadBytes.index(of: 0x0A, in: b, from: i, to: b.count) {
            if at + 1 < b.count, b[at + 1] == 0x0A { return at + 2 }
            if at + 2 < b.count, b[at + 1] == 0x0D, b[at + 2] == 0x0A { return at + 3 }
            i = at + 1
        }
        headScanned = b.count - pos
        return nil
    }

    private func lineEnd(_ b: UnsafeBufferPointer<UInt8>, from pos: Int) -> Int? {
        HeadBytes.index(of: 0x0A, in: b, from: pos, to: b.count)
    }

    private mutating func parseHead(_ b: UnsafeBufferPointer<UInt8>, _ range: Range<Int>) throws(Failure) -> UpstreamHead {
        var lineStart = range.lowerBound
        var minor = 1
        var headers = HTTPHeaders(capacity: 16)
        var framingFields = FramingFields()
        var first = true
        while lineStart < range.upperBound {
            let lf = HeadBytes.index(of: 0x0A, in: b, from: lineStart, to: range.upperBound) ?? range.upperBound  // the head ends in LF
            var end = lf
            if end > lineStart, b[end - 1] == 0x0D { end -= 1 }
            let line = UnsafeBufferPointer(rebasing: b[lineStart..<end])
            lineStart = lf + 1
            if first {
                (minor, status) = try Self.statusLine(line)
                first = false
                continue
            }
            if line.isEmpty { break }
            if line[0] == 0x20 || line[0] == 0x09 { throw Failure("folded header field (obsolete line folding)") }
            guard let colon = HeadBytes.index(of: 0x3A, in: line, from: 0, to: line.count), colon > 0 else {
                throw Failure("malformed header field line")
            }
            let name = UnsafeBufferPointer(rebasing: line[0..<colon])
            guard HeadBytes.isToken(name) else { throw Failure("invalid character in a header field name") }
            let value = UnsafeBufferPointer(rebasing: line[HeadBytes.trimmed(line, colon + 1, line.count)])
            guard HeadBytes.hasNoCROrNUL(value) else { throw Failure("invalid character in a header field value") }
            try framingFields.take(name, value)
            headers.append(name: name, lowercasingName: true, value: value)
        }
        if status < 200 {
            if status == 101 { throw Failure("the provider switched protocols, which the proxy never asks for") }
            return UpstreamHead(status: status, headers: headers)
        }
        decideFraming(framingFields, minor: minor)
        return UpstreamHead(status: status, headers: headers)
    }

    /// What the three fields that frame a body said, read as the head is parsed.
    struct FramingFields {
        var close = false, keepAliveToken = false
        var lastCoding: Substring?
        var length: Int?
        var sawLength = false

        mutating func take(_ name: UnsafeBufferPointer<UInt8>, _ value: UnsafeBufferPointer<UInt8>) throws(Failure) {
            switch name.count {  // by length first: most fields are none of the three
            case 10 where HTTPHeaders.isName(name, "connection"):
                close = close || HTTP1ResponseDecoder.listContains(value, "close")
                keepAliveToken = keepAliveToken || HTTP1ResponseDecoder.listContains(value, "keep-alive")
            case 14 where HTTPHeaders.isName(name, "content-length"):
                sawLength = true
                if let n = HTTP1ResponseDecoder.plainLength(value) {  // the usual case: digits only, nothing to split
                    if let l = length, l != n { throw Failure("conflicting content-length values") }
                    length = n
                    return
                }
                let text = String(decoding: value, as: UTF8.self)
                for part in text.split(separator: ",", omittingEmptySubsequences: false) {
                    let digits = part.trimmingOWS()
                    guard !digits.isEmpty, digits.utf8.count <= 15, digits.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }), let n = Int(digits) else {
                        throw Failure("invalid content-length \"\(text.prefix(40))\"")
                    }
                    if let l = length, l != n { throw Failure("conflicting content-length values") }
                    length = n
                }
            case 17 where HTTPHeaders.isName(name, "transfer-encoding"):
                lastCoding = String(decoding: value, as: UTF8.self).split(separator: ",").last.map { $0.trimmingOWS() } ?? ""
            default:
                return
            }
        }
    }

    private mutating func decideFraming(_ f: FramingFields, minor: Int) {
        let close = f.close, keepAliveToken = f.keepAliveToken, lastCoding = f.lastCoding, sawLength = f.sawLength
        keepAlive = minor >= 1 ? !close : keepAliveToken && !close
        if requestWasHEAD || status == 204 || status == 304 {
            framing = .none
            state = .complete
            return
        }
        if let lastCoding {
            if lastCoding.asciiCaseInsensitiveEquals("chunked") {
                framing = .chunked
                state = .chunkSize
            } else {
                framing = .untilClose
                state = .untilClose
                keepAlive = false
            }
            // A length beside a transfer coding is ignored, and the connection is not trusted again.
            if sawLength { keepAlive = false }
            return
        }
        guard let length = f.length else {
            framing = .untilClose
            state = .untilClose
            keepAlive = false
            return
        }
        framing = .length(length)
        state = length == 0 ? .complete : .bodyLength(length)
    }

    /// A value of 1 to 15 ASCII digits, or nil.
    static func plainLength(_ value: UnsafeBufferPointer<UInt8>) -> Int? {
        guard !value.isEmpty, value.count <= 15 else { return nil }
        var n = 0
        for c in value {
            guard c >= 0x30 && c <= 0x39 else { return nil }
            n = n * 10 + Int(c - 0x30)
        }
        return n
    }

    /// True if the comma-separated `list` has `token` (ASCII case ignored), without splitting it.
    static func listContains(_ l: UnsafeBufferPointer<UInt8>, _ token: StaticString) -> Bool {
        let t = UnsafeBufferPointer(start: token.utf8Start, count: token.utf8CodeUnitCount)
        var i = 0
        while i < l.count {
            while i < l.count, l[i] == 0x20 || l[i] == 0x09 || l[i] == 0x2C { i += 1 }
            var j = i, k = 0
            while j < l.count, k < t.count, l[j] | 0x20 == t[k] { j += 1; k += 1 }
            var end = j
            while end < l.count, l[end] == 0x20 || l[end] == 0x09 { end += 1 }
            if k == t.count, end == l.count || l[end] == 0x2C { return true }
            while i < l.count, l[i] != 0x2C { i += 1 }
        }
        return false
    }

    static func listContains(_ list: String, _ token: StaticString) -> Bool {
        var list = list
        return list.withUTF8 { listContains($0, token) }
    }

    /// `HTTP/1.x SP 3DIGIT [SP reason]` → (x, status).
    private static func statusLine(_ line: UnsafeBufferPointer<UInt8>) throws(Failure) -> (Int, Int) {
        guard line.count >= 12, line[0] == 0x48, line[1] == 0x54, line[2] == 0x54, line[3] == 0x50, line[4] == 0x2F,
              line[5] == 0x31, line[6] == 0x2E, line[7] >= 0x30, line[7] <= 0x39, line[8] == 0x20 else {
            throw Failure("malformed status line (not HTTP/1.x)")
        }
        var code = 0
        for i in 9..<12 {
            guard line[i] >= 0x30, line[i] <= 0x39 else { throw Failure("malformed status code") }
            code = code * 10 + Int(line[i] - 0x30)
        }
        guard code >= 100, line.count == 12 || line[12] == 0x20 else { throw Failure("malformed status code") }
        return (Int(line[7] - 0x30), code)
    }

    /// A chunk-size line (without its LF, with or without its CR).
    private static func chunkSize(_ line: UnsafeBufferPointer<UInt8>) throws(Failure) -> Int {
        let end = line.count > 0 && line[line.count - 1] == 0x0D ? line.count - 1 : line.count
        switch ChunkSizeLine.parse(UnsafeBufferPointer(rebasing: line[0..<end])) {
        case .success(let size): return size
        case .failure(.tooLarge): throw Failure("chunk size too large")
        case .failure(.invalid): throw Failure("malformed chunk size")
        case .failure(.badExtension): throw Failure("invalid character in a chunk extension")
        }
    }
}
