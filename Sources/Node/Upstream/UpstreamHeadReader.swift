/// Builds an upstream response head from the raw header lines curl hands over one at a time (status
/// line, fields, the blank line that ends a head), reading bytes: each field is kept as its bytes, the
/// name lower-cased. Interim 1xx heads are read and dropped; a line that is not a field is ignored
/// (curl has already refused malformed responses).
public struct UpstreamHeadReader {
    public private(set) var status = 0
    public private(set) var headers = HTTPHeaders(capacity: 16)

    public init() {}

    /// Takes one line (with or without its CRLF); true when it ended a final (non-1xx) head.
    public mutating func take(_ raw: UnsafeRawBufferPointer) -> Bool {
        let line = raw.bindMemory(to: UInt8.self)
        var end = line.count
        while end > 0, line[end - 1] == 0x0A || line[end - 1] == 0x0D { end -= 1 }
        if end == 0 { return status >= 200 }
        if end >= 5, line[0] == 0x48, line[1] == 0x54, line[2] == 0x54, line[3] == 0x50, line[4] == 0x2F {  // "HTTP/"
            // A new status line (also after 1xx interim responses): start over.
            var i = 5
            while i < end, line[i] != 0x20 { i += 1 }
            while i < end, line[i] == 0x20 { i += 1 }
            var code = 0, digits = 0
            while i < end, digits < 3, line[i] >= 0x30, line[i] <= 0x39 {
                code = code * 10 + Int(line[i] - 0x30)
                digits += 1
                i += 1
            }
            status = digits == 3 ? code : 0
            headers = HTTPHeaders(capacity: 16)
            return false
        }
        // A `name: value` line: the name lower-cased, the value without surrounding whitespace.
        let field = UnsafeBufferPointer(rebasing: line[0..<end])
        guard let colon = HeadBytes.index(of: 0x3A, in: field, from: 0, to: field.count), colon > 0 else { return false }
        headers.append(name: UnsafeBufferPointer(rebasing: field[0..<colon]), lowercasingName: true,
                       value: UnsafeBufferPointer(rebasing: field[HeadBytes.trimmed(field, colon + 1, field.count)]))
        return false
    }

    var head: UpstreamHead { UpstreamHead(status: status, headers: headers) }
}
