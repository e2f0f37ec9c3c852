/// What decoding a whole byte sequence gave: for tests, the fuzzer and anything that holds a complete
/// response in memory.
public struct DecodedResponse: Equatable {
    public var status = 0
    public var headerNames: [String] = []
    public var body: [UInt8] = []
    /// The response ended (by its framing, or by the end of input for a close-delimited body).
    public var complete = false
    public var keepAlive = false
    /// Bytes after the end of the response.
    public var leftover = 0
    public var error: String?
}

extension HTTP1ResponseDecoder {
    /// Decodes `bytes` fed in pieces of `pieceSize` the way a connection does (keeping what was not
    /// consumed, adding the next piece behind it), then the end of input.
    public static func decodeWhole(_ bytes: [UInt8], pieceSize: Int, requestWasHEAD: Bool = false) -> DecodedResponse {
        var d = HTTP1ResponseDecoder(requestWasHEAD: requestWasHEAD)
        var out = DecodedResponse()
        var carry: [UInt8] = []
        var i = 0
        repeat {
            let n = min(max(1, pieceSize), bytes.count - i)
            carry += bytes[i..<(i + n)]
            i += n
            var pos = 0
            var ended = false
            do {
                steps: while true {
                    let step = try carry.withUnsafeBytes { buf throws(Failure) in try d.next(buf, &pos) }
                    switch step {
                    case .needMore: break steps
                    case .head(let h):
                        out.status = h.status
                        out.headerNames = h.headers.fields.map(\.name)
                    case .body(let r): out.body += carry[r]
                    case .end:
                        ended = true
                        break steps
                    }
                }
            } catch {
                out.error = "\(error)"
                return out
            }
            carry.removeFirst(pos)
            if ended {
                out.complete = true
                out.keepAlive = d.keepAlive
                out.leftover = carry.count + bytes.count - i
                return out
            }
        } while i < bytes.count
        do {
            try d.endOfInput()
            out.complete = true
            out.keepAlive = false
        } catch {
            out.error = error.description
        }
        return out
    }
}
