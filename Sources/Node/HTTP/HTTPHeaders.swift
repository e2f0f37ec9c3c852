import Glibc

/// An ordered list of header fields, kept as bytes in one buffer: per field, its name's and its value's
/// lengths (four bytes each), then the name, then the value. Names from the parsers are lower-case;
/// lookups ignore ASCII case.
///
/// Bytes rather than a `(String, String)` per field: a parsed head is one allocation whatever its field
/// count (a string longer than 15 bytes was one each, and every copy or release of the list retained or
/// released each string), and the proxy path copies fields from one head to the next byte for byte
/// (`appendFields`, `appendLines`) without making a string at all. `fields`, the subscript and iteration
/// make strings on demand, for everything off the hot path. Fields are found by walking the buffer
/// (a head has tens of them, not thousands).
public struct HTTPHeaders: Sendable, Sequence, ExpressibleByDictionaryLiteral, ExpressibleByArrayLiteral, Equatable {
    private var bytes: [UInt8] = []
    public private(set) var count = 0
    /// Bytes before each field's name: its name's and its value's lengths.
    private static let prefix = 8

    public init() {}
    /// Room for `capacity` fields up front (a head is built field by field; growing costs a copy each time).
    public init(capacity: Int) {
        bytes.reserveCapacity(capacity * 40)
    }
    public init(_ fields: [(String, String)]) {
        for (name, value) in fields { add(name, value) }
    }
    public init(fields: [(name: String, value: String)]) {
        for f in fields { add(f.name, f.value) }
    }
    public init(dictionaryLiteral elements: (String, String)...) { self.init(elements) }
    public init(arrayLiteral elements: (String, String)...) { self.init(elements) }

    /// The fields as strings (made on each call: for code off the hot path).
    public var fields: [(name: String, value: String)] {
        var out: [(name: String, value: String)] = []
        out.reserveCapacity(count)
        forEachField { _, name, value in
            out.append((String(decoding: name, as: UTF8.self), String(decoding: value, as: UTF8.self)))
        }
        return out
    }

    public func makeIterator() -> IndexingIterator<[(name: String, value: String)]> { fields.makeIterator() }

    /// The same fields in the same order (the same bytes: names compared as stored).
    public static func == (a: HTTPHeaders, b: HTTPHeaders) -> Bool { a.count == b.count && a.bytes == b.bytes }

    // MARK: Bytes (the hot path)

    /// Appends a field from raw bytes; the name lower-cased when `lowercasingName`.
    mutating func append(name: UnsafeBufferPointer<UInt8>, lowercasingName: Bool, value: UnsafeBufferPointer<UInt8>) {
        // Both lengths in one typed copy (an untyped buffer would be appended byte by byte).
        let lengths = (UInt64(UInt32(value.count)) << 32 | UInt64(UInt32(name.count))).littleEndian
        withUnsafeBytes(of: lengths) { bytes.append(contentsOf: $0.bindMemory(to: UInt8.self)) }
        let start = bytes.count
        bytes.append(contentsOf: name)
        if lowercasingName {
            bytes.withUnsafeMutableBufferPointer { b in
                for i in start..<(start + name.count) where b[i] >= 0x41 && b[i] <= 0x5A { b[i] |= 0x20 }
            }
        }
        bytes.append(contentsOf: value)
        count += 1
    }

    /// Calls `body` with each field's index, name and value bytes, in order; stops when it returns false.
    @inline(__always)
    private func walk(_ body: (Int, UnsafeBufferPointer<UInt8>, UnsafeBufferPointer<UInt8>) throws -> Bool) rethrows {
        try bytes.withUnsafeBufferPointer { b in
            guard let base = b.baseAddress else { return }
            var at = 0
            for i in 0..<count {
                let nameCount = Int(UInt32(littleEndian: UnsafeRawPointer(base + at).loadUnaligned(as: UInt32.self)))
                let valueCount = Int(UInt32(littleEndian: UnsafeRawPointer(base + at + 4).loadUnaligned(as: UInt32.self)))
                let name = at + Self.prefix
                guard try body(i, UnsafeBufferPointer(start: base + name, count: nameCount),
                               UnsafeBufferPointer(start: base + name + nameCount, count: valueCount)) else { return }
                at = name + nameCount + valueCount
            }
        }
    }

    /// Calls `body` with each field's index, name and value bytes, in order.
    func forEachField(_ body: (Int, UnsafeBufferPointer<UInt8>, UnsafeBufferPointer<UInt8>) throws -> Void) rethrows {
        try walk { i, name, value in
            try body(i, name, value)
            return true
        }
    }

    /// `body` with the name and value bytes of field `i`.
    func withField<R>(_ i: Int, _ body: (UnsafeBufferPointer<UInt8>, UnsafeBufferPointer<UInt8>) throws -> R) rethrows -> R {
        precondition(i >= 0 && i < count, "field \(i) of \(count)")
        var result: R?
        try walk { j, name, value in
            guard j == i else { return true }
            result = try body(name, value)
            return false
        }
        return result!
    }

    /// `body` with the index and value bytes of the first field called `name` (ASCII case ignored), or
    /// nil when there is none.
    private func first<R>(named name: UnsafeBufferPointer<UInt8>, _ body: (Int, UnsafeBufferPointer<UInt8>) throws -> R) rethrows -> R? {
        var result: R?
        try walk { i, field, value in
            guard field.count == name.count, name.isEmpty || Self.equalIgnoringCase(field.baseAddress!, name.baseAddress!, name.count) else {
                return true
            }
            result = try body(i, value)
            return false
        }
        return result
    }

    /// The index of the first field called `name` (ASCII case ignored), or nil.
    func index(of name: StaticString) -> Int? {
        first(named: UnsafeBufferPointer(start: name.utf8Start, count: name.utf8CodeUnitCount)) { i, _ in i }
    }

    /// `body` with the value bytes of the first field called `name`, or nil when there is none.
    func withValue<R>(of name: StaticString, _ body: (UnsafeBufferPointer<UInt8>) throws -> R) rethrows -> R? {
        try first(named: UnsafeBufferPointer(start: name.utf8Start, count: name.utf8CodeUnitCount)) { _, value in try body(value) }
    }

    /// Appends the fields as `name: value` CRLF lines, leaving out those `skip` names (it sees the name's
    /// bytes as stored).
    func appendLines(to out: inout [UInt8], skip: (UnsafeBufferPointer<UInt8>) -> Bool = { _ in false }) {
        forEachField { _, name, value in
            if !skip(name) { out.appendField(name, value) }
        }
    }

    /// Appends to `other` the fields `skip` does not leave out, byte for byte.
    func appendFields(to other: inout HTTPHeaders, skip: (UnsafeBufferPointer<UInt8>) -> Bool) {
        forEachField { _, name, value in
            if !skip(name) { other.append(name: name, lowercasingName: false, value: value) }
        }
    }

    /// The bytes every field takes as `name: value` CRLF lines.
    var lineBytes: Int { bytes.count - 4 * count }

    /// Equal bytes, ignoring ASCII case (`literal` may be in either case).
    @inline(__always)
    static func equalIgnoringCase(_ a: UnsafePointer<UInt8>, _ literal: UnsafePointer<UInt8>, _ n: Int) -> Bool {
        var j = 0
        while j < n, a[j] == literal[j] || (a[j] | 0x20 == literal[j] | 0x20 && (a[j] | 0x20) >= 0x61 && (a[j] | 0x20) <= 0x7A) { j += 1 }
        return j == n
    }

    /// `bytes` begins with the lower-case `literal`, ignoring ASCII case (a media type, a family of names).
    @inline(__always)
    static func hasPrefix(_ bytes: UnsafeBufferPointer<UInt8>, ignoringCase literal: StaticString) -> Bool {
        bytes.count >= literal.utf8CodeUnitCount && (literal.utf8CodeUnitCount == 0 || equalIgnoringCase(bytes.baseAddress!, literal.utf8Start, literal.utf8CodeUnitCount))
    }

    /// `bytes` equals the lower-case `literal`, ignoring ASCII case.
    @inline(__always)
    static func isName(_ bytes: UnsafeBufferPointer<UInt8>, _ literal: StaticString) -> Bool {
        bytes.count == literal.utf8CodeUnitCount && equalIgnoringCase(bytes.baseAddress!, literal.utf8Start, bytes.count)
    }

    // MARK: Strings (everything else)

    /// The first value of `name`, or nil.
    public subscript(name: String) -> String? {
        var name = name
        return name.withUTF8 { n in first(named: n) { _, value in String(decoding: value, as: UTF8.self) } }
    }

    private func index(ofName name: String) -> Int? {
        var name = name
        return name.withUTF8 { n in first(named: n) { i, _ in i } }
    }

    public func contains(_ name: String) -> Bool { index(ofName: name) != nil }

    public mutating func add(_ name: String, _ value: String) {
        var name = name, value = value
        name.withUTF8 { n in value.withUTF8 { v in append(name: n, lowercasingName: false, value: v) } }
    }

    /// Replaces every field called `name` with one field.
    public mutating func set(_ name: String, _ value: String) {
        remove(name)
        add(name, value)
    }

    public mutating func remove(_ name: String) {
        guard index(ofName: name) != nil else { return }
        let kept = fields.filter { !$0.name.asciiCaseInsensitiveEquals(name) }
        self = HTTPHeaders(fields: kept)
    }
}

extension StringProtocol {
    func asciiCaseInsensitiveEquals(_ other: some StringProtocol) -> Bool {
        let a = utf8, b = other.utf8
        guard a.count == b.count else { return false }
        // Contiguous bytes (native strings, the usual case): an indexed loop, no iterators.
        if let equal = a.withContiguousStorageIfAvailable({ pa in
            b.withContiguousStorageIfAvailable { pb in
                for i in 0..<pa.count where pa[i] != pb[i] && !Self.sameLetter(pa[i], pb[i]) { return false }
                return true
            }
        }), let equal { return equal }
        for (x, y) in zip(a, b) where x != y && !Self.sameLetter(x, y) { return false }
        return true
    }

    /// Two different bytes that are the same ASCII letter in different cases.
    @inline(__always)
    static func sameLetter(_ x: UInt8, _ y: UInt8) -> Bool {
        (x | 0x20) == (y | 0x20) && (x | 0x20) >= 0x61 && (x | 0x20) <= 0x7A
    }

    func trimmingOWS() -> Substring {
        let s = self[...]
        var start = s.startIndex, end = s.endIndex
        while start < end, s[start] == " " || s[start] == "\t" { start = s.index(after: start) }
        while end > start, s[s.index(before: end)] == " " || s[s.index(before: end)] == "\t" { end = s.index(before: end) }
        return Substring(s[start..<end])
    }
}

extension Array where Element == UInt8 {
    /// Appends the UTF-8 bytes of `s` straight from its storage (the generic `append(contentsOf: s.utf8)`
    /// walks an iterator and retains the string's storage on the way).
    @inline(__always)
    mutating func appendUTF8(_ s: String) {
        if s.utf8.withContiguousStorageIfAvailable({ append(contentsOf: $0) }) == nil { append(contentsOf: s.utf8) }
    }

    /// Appends `name: value` and CRLF, from bytes.
    @inline(__always)
    mutating func appendField(_ name: UnsafeBufferPointer<UInt8>, _ value: UnsafeBufferPointer<UInt8>) {
        append(contentsOf: name)
        append(0x3A)
        append(0x20)
        append(contentsOf: value)
        append(0x0D)
        append(0x0A)
    }

    /// Appends `name: value` and CRLF.
    @inline(__always)
    mutating func appendField(_ name: String, _ value: String) {
        appendUTF8(name)
        append(0x3A)
        append(0x20)
        appendUTF8(value)
        append(0x0D)
        append(0x0A)
    }
}
