import Glibc

/// The byte scans both HTTP/1 parsers (requests from clients, responses from providers) make over a head:
/// finding line ends and colons with `memchr` (vectorised in libc) and checking names and values a
/// machine word at a time, instead of a bounds-checked loop per byte (bench/parsers.sh: a head's scan was
/// most of a parser's time).
enum HeadBytes {
    /// The index of the first `byte` in `b[from..<to]`, or nil.
    @inline(__always)
    static func index(of byte: UInt8, in b: UnsafeBufferPointer<UInt8>, from: Int, to: Int) -> Int? {
        guard from < to, let base = b.baseAddress, let p = memchr(base + from, Int32(byte), to - from) else { return nil }
        return base.distance(to: p.assumingMemoryBound(to: UInt8.self))
    }

    /// RFC 9110 `tchar` — `!#$%&'*+-.^_`|~`, digits and letters — as a 128-bit set: bytes 0–63, 64–127
    /// (literals: a computed static would be a lazy global, checked on every use; a unit test rebuilds them).
    static let tokenLow: UInt64 = 0x03ff_6cfa_0000_0000
    static let tokenHigh: UInt64 = 0x57ff_ffff_c7ff_fffe

    @inline(__always)
    static func isToken(_ c: UInt8) -> Bool {
        c < 64 ? (tokenLow >> UInt64(c)) & 1 == 1 : c < 128 && (tokenHigh >> UInt64(c - 64)) & 1 == 1
    }

    /// Every byte of `b` is a `tchar` (and there is at least one).
    static func isToken(_ b: UnsafeBufferPointer<UInt8>) -> Bool {
        guard !b.isEmpty else { return false }
        for c in b where !isToken(c) { return false }
        return true
    }

    /// A field value as RFC 9110 allows it from a client: no control byte but HT, no DEL.
    static func isFieldValue(_ b: UnsafeBufferPointer<UInt8>) -> Bool {
        // Below 0x20, or DEL: the word check only says "maybe" (HT is allowed), the bytes decide.
        noByte(in: b, wordMayHave: { w in WordBytes.below(w, 0x20) | WordBytes.equal(w, 0x7F) != 0 },
               isBad: { c in (c < 0x20 && c != 0x09) || c == 0x7F })
    }

    /// No CR and no NUL in `b` (what the response decoder refuses in a provider's field value).
    static func hasNoCROrNUL(_ b: UnsafeBufferPointer<UInt8>) -> Bool {
        noByte(in: b, wordMayHave: { w in WordBytes.equal(w, 0) | WordBytes.equal(w, 0x0D) != 0 }, isBad: { $0 == 0x0D || $0 == 0 })
    }

    /// True if no byte of `b` `isBad`: eight bytes at a time while `wordMayHave` (never false for a word
    /// holding a bad byte) says no, then byte by byte from the first word it flags.
    @inline(__always)
    private static func noByte(in b: UnsafeBufferPointer<UInt8>, wordMayHave: (UInt64) -> Bool, isBad: (UInt8) -> Bool) -> Bool {
        guard let base = b.baseAddress else { return true }
        var i = 0
        let raw = UnsafeRawPointer(base)
        while i + 8 <= b.count, !wordMayHave(raw.loadUnaligned(fromByteOffset: i, as: UInt64.self)) { i += 8 }
        while i < b.count {
            if isBad(b[i]) { return false }
            i += 1
        }
        return true
    }

    /// `b[from..<to]` without leading and trailing spaces and tabs.
    @inline(__always)
    static func trimmed(_ b: UnsafeBufferPointer<UInt8>, _ from: Int, _ to: Int) -> Range<Int> {
        var s = from, e = to
        while s < e, b[s] == 0x20 || b[s] == 0x09 { s += 1 }
        while e > s, b[e - 1] == 0x20 || b[e - 1] == 0x09 { e -= 1 }
        return s..<e
    }
}
