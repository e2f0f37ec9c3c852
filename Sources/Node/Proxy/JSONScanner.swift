/// A purpose-built scanner for the few JSON fields the proxy needs, over raw bytes: it walks one object's
/// top-level members and skips every other value without building it. Malformed input gives nil, never
/// a crash (it is fuzzed).
public struct JSONScanner {
    private let bytes: UnsafeRawBufferPointer
    private var i = 0
    /// Objects and arrays inside a member's value are stepped over by their brackets alone (strings still
    /// read with their escapes), not checked token by token.
    private let skimContainers: Bool
    static let maxDepth = 256

    init(_ bytes: UnsafeRawBufferPointer, skimContainers: Bool = false) {
        self.bytes = bytes
        self.skimContainers = skimContainers
    }

    /// Calls `visit` with each top-level key (raw, without quotes; escapes left as sent) and the byte
    /// range of its value. Returns false if `bytes` is not one well-formed JSON object — with
    /// `skimContainers`, if its top level is not: the objects and arrays in its values are only matched
    /// bracket for bracket, which is all a reader of a few scalar members needs, at a fraction of the cost
    /// (a provider's answer is mostly `choices`, read past on the way to `usage`).
    public static func members(of bytes: UnsafeRawBufferPointer, skimContainers: Bool = false,
                               _ visit: (UnsafeRawBufferPointer, Range<Int>) -> Void) -> Bool {
        var s = JSONScanner(bytes, skimContainers: skimContainers)
        s.skipSpace()
        guard s.peek == UInt8(ascii: "{") else { return false }
        s.i += 1
        s.skipSpace()
        if s.peek == UInt8(ascii: "}") { s.i += 1; return s.atEndAfterSpace() }
        while true {
            s.skipSpace()
            guard let key = s.stringRange() else { return false }
            s.skipSpace()
            guard s.peek == UInt8(ascii: ":") else { return false }
            s.i += 1
            s.skipSpace()
            let start = s.i
            guard s.skipValue(depth: 1) else { return false }
            visit(UnsafeRawBufferPointer(rebasing: bytes[key]), start..<s.i)
            s.skipSpace()
            if s.peek == UInt8(ascii: ",") { s.i += 1; continue }
            if s.peek == UInt8(ascii: "}") { s.i += 1; return s.atEndAfterSpace() }
            return false
        }
    }

    private var peek: UInt8? { i < bytes.count ? bytes[i] : nil }

    private mutating func atEndAfterSpace() -> Bool {
        skipSpace()
        return i == bytes.count
    }

    private mutating func skipSpace() {
        while i < bytes.count, bytes[i] == 0x20 || bytes[i] == 0x0A || bytes[i] == 0x0D || bytes[i] == 0x09 { i += 1 }
    }

    /// The contents of a string (between the quotes), validating escapes.
    private mutating func stringRange() -> Range<Int>? {
        guard peek == UInt8(ascii: "\"") else { return nil }
        i += 1
        let start = i
        while i < bytes.count {
            // Eight bytes at a time: past plain ones, or straight to the first quote, backslash or control byte.
            // (Swift's `SIMD16` compares here ran 30x slower: not lowered to vector instructions.)
            while i + 8 <= bytes.count {
                let special = Self.specialBytes(bytes.loadUnaligned(fromByteOffset: i, as: UInt64.self))
                if special == 0 { i += 8; continue }
                i += special.trailingZeroBitCount / 8
                break
            }
            guard i < bytes.count else { break }
            let b = bytes[i]
            if b == UInt8(ascii: "\"") {
                let r = start..<i
                i += 1
                return r
            }
            if b == UInt8(ascii: "\\") {
                i += 1
                guard i < bytes.count else { return nil }
                if bytes[i] == UInt8(ascii: "u") {
                    guard i + 4 < bytes.count else { return nil }
                    for k in 1...4 where !isHex(bytes[i + k]) { return nil }
                    i += 4
                } else {
                    switch bytes[i] {
                    case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"), UInt8(ascii: "b"), UInt8(ascii: "f"),
                         UInt8(ascii: "n"), UInt8(ascii: "r"), UInt8(ascii: "t"):
                        break
                    default:
                        return nil
                    }
                }
            } else if b < 0x20 {
                return nil
            }
            i += 1
        }
        return nil
    }

    /// The high bit set in each byte of `w` (read little-endian) that is `"`, `\\` or below 0x20 — exact up to
    /// and including the first such byte (a borrow can also mark bytes after it), so the lowest set bit
    /// finds the first one; zero if there is none.
    @inline(__always)
    static func specialBytes(_ w: UInt64) -> UInt64 {
        WordBytes.below(w, 0x20) | WordBytes.equal(w, 0x22) | WordBytes.equal(w, 0x5C)
    }

    private mutating func skipValue(depth: Int) -> Bool {
        guard depth <= Self.maxDepth, let b = peek else { return false }
        switch b {
        case UInt8(ascii: "\""):
            return stringRange() != nil
        case UInt8(ascii: "{") where skimContainers, UInt8(ascii: "[") where skimContainers:
            return skimContainer()
        case UInt8(ascii: "{"), UInt8(ascii: "["):
            let close = b == UInt8(ascii: "{") ? UInt8(ascii: "}") : UInt8(ascii: "]")
            i += 1
            skipSpace()
            if peek == close { i += 1; return true }
            while true {
                skipSpace()
                if b == UInt8(ascii: "{") {
                    guard stringRange() != nil else { return false }
                    skipSpace()
                    guard peek == UInt8(ascii: ":") else { return false }
                    i += 1
                    skipSpace()
                }
                guard skipValue(depth: depth + 1) else { return false }
                skipSpace()
                if peek == UInt8(ascii: ",") { i += 1; continue }
                if peek == close { i += 1; return true }
                return false
            }
        case UInt8(ascii: "t"): return literal("true")
        case UInt8(ascii: "f"): return literal("false")
        case UInt8(ascii: "n"): return literal("null")
        default:
            return number()
        }
    }

    /// From an opening bracket to its match: strings are read (escapes and all, so a bracket inside one
    /// does not count), every other byte only counted as an opening or closing bracket. Unbalanced or too
    /// deep: false.
    private mutating func skimContainer() -> Bool {
        var depth = 0
        while i < bytes.count {
            switch bytes[i] {
            case UInt8(ascii: "\""):
                guard stringRange() != nil else { return false }
                continue
            case UInt8(ascii: "{"), UInt8(ascii: "["):
                depth += 1
                if depth > Self.maxDepth { return false }
            case UInt8(ascii: "}"), UInt8(ascii: "]"):
                depth -= 1
                if depth == 0 {
                    i += 1
                    return true
                }
            default:
                break
            }
            i += 1
        }
        return false
    }

    private mutating func literal(_ word: StaticString) -> Bool {
        let n = word.utf8CodeUnitCount
        guard i + n <= bytes.count else { return false }
        for k in 0..<n where bytes[i + k] != word.utf8Start[k] { return false }
        i += n
        return true
    }

    private mutating func number() -> Bool {
        let start = i
        if peek == UInt8(ascii: "-") { i += 1 }
        let digitsStart = i
        while let b = peek, b >= 0x30 && b <= 0x39 { i += 1 }
        guard i > digitsStart else { return false }
        if peek == UInt8(ascii: ".") {
            i += 1
            let f = i
            while let b = peek, b >= 0x30 && b <= 0x39 { i += 1 }
            guard i > f else { return false }
        }
        if peek == UInt8(ascii: "e") || peek == UInt8(ascii: "E") {
            i += 1
            if peek == UInt8(ascii: "+") || peek == UInt8(ascii: "-") { i += 1 }
            let e = i
            while let b = peek, b >= 0x30 && b <= 0x39 { i += 1 }
            guard i > e else { return false }
        }
        return i > start
    }

    private func isHex(_ b: UInt8) -> Bool {
        (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x46) || (b >= 0x61 && b <= 0x66)
    }
}

/// Reading scalar values out of a value range found by `JSONScanner.members`.
enum JSONValueReader {
    static func isKey(_ key: UnsafeRawBufferPointer, _ name: StaticString) -> Bool {
        key.count == name.utf8CodeUnitCount && memcmp(key.baseAddress!, name.utf8Start, key.count) == 0
    }

    static func bool(_ v: UnsafeRawBufferPointer) -> Bool? {
        if v.elementsEqual("true".utf8) { return true }
        if v.elementsEqual("false".utf8) { return false }
        return nil
    }

    static func int(_ v: UnsafeRawBufferPointer) -> Int64? {
        guard !v.isEmpty, v.count <= 18, v.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return nil }
        var n: Int64 = 0
        for b in v { n = n * 10 + Int64(b - 0x30) }
        return n
    }

    /// A JSON string value, unescaped.
    static func string(_ v: UnsafeRawBufferPointer) -> String? {
        guard v.count >= 2, v.first == UInt8(ascii: "\""), v.last == UInt8(ascii: "\"") else { return nil }
        let inner = UnsafeRawBufferPointer(rebasing: v[1..<(v.count - 1)])
        if !inner.contains(UInt8(ascii: "\\")) { return String(decoding: inner, as: UTF8.self) }
        var out: [UInt8] = []
        var k = 0
        while k < inner.count {
            let b = inner[k]
            if b != UInt8(ascii: "\\") { out.append(b); k += 1; continue }
            k += 1
            guard k < inner.count else { return nil }
            switch inner[k] {
            case UInt8(ascii: "n"): out.append(0x0A)
            case UInt8(ascii: "t"): out.append(0x09)
            case UInt8(ascii: "r"): out.append(0x0D)
            case UInt8(ascii: "b"): out.append(0x08)
            case UInt8(ascii: "f"): out.append(0x0C)
            case UInt8(ascii: "u"):
                guard k + 4 < inner.count, let code = UInt32(String(decoding: UnsafeRawBufferPointer(rebasing: inner[(k + 1)...(k + 4)]), as: UTF8.self), radix: 16) else { return nil }
                out.append(contentsOf: Array(String(Unicode.Scalar(code).map(Character.init) ?? "\u{FFFD}").utf8))
                k += 4
            default: out.append(inner[k])
            }
            k += 1
        }
        return String(decoding: out, as: UTF8.self)
    }
}

import Glibc
