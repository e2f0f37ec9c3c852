/// An ordered list of header fields. Names from the parser are lower-case; lookups ignore ASCII case.
public struct HTTPHeaders: Sendable, Sequence, ExpressibleByDictionaryLiteral {
    public private(set) var fields: [(name: String, value: String)]

    public init() { fields = [] }
    /// Room for `capacity` fields up front (a head is built field by field; growing costs a copy each time).
    public init(capacity: Int) {
        fields = []
        fields.reserveCapacity(capacity)
    }
    public init(_ fields: [(String, String)]) { self.fields = fields.map { (name: $0.0, value: $0.1) } }
    public init(fields: [(name: String, value: String)]) { self.fields = fields }
    public init(dictionaryLiteral elements: (String, String)...) { self.init(elements) }

    public var count: Int { fields.count }
    public func makeIterator() -> IndexingIterator<[(name: String, value: String)]> { fields.makeIterator() }

    /// The first value of `name`, or nil.
    public subscript(name: String) -> String? {
        // By index: iterating the fields would copy (retain and release) every name and value on the way.
        for i in fields.indices where fields[i].name.asciiCaseInsensitiveEquals(name) { return fields[i].value }
        return nil
    }

    public func contains(_ name: String) -> Bool { self[name] != nil }

    public mutating func add(_ name: String, _ value: String) {
        fields.append((name: name, value: value))
    }

    /// Replaces every field called `name` with one field.
    public mutating func set(_ name: String, _ value: String) {
        remove(name)
        add(name, value)
    }

    public mutating func remove(_ name: String) {
        fields.removeAll { $0.name.asciiCaseInsensitiveEquals(name) }
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
