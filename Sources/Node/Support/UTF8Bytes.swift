import Glibc

/// Prefix tests and byte searches on text by `memcmp` and `memchr` over the text's own UTF-8 storage.
/// The generic `utf8.starts(with:)` and `utf8.firstIndex(of:)` step an index through the view a byte at a
/// time (~25 instructions a byte, `bench/instructions.sh`), and every proxied request asks several such
/// questions of its target (where its query starts, which route and error shape its path has).
extension StringProtocol {
    /// Whether `self`'s UTF-8 bytes begin with `prefix`'s.
    @inline(__always)
    func hasUTF8Prefix(_ prefix: StaticString) -> Bool {
        Self.startsWith(utf8, prefix.utf8Start, prefix.utf8CodeUnitCount)
    }

    /// Whether `self`'s UTF-8 bytes begin with `prefix`'s.
    @inline(__always)
    func hasUTF8Prefix(_ prefix: String) -> Bool {
        prefix.utf8.withContiguousStorageIfAvailable { p in Self.startsWith(utf8, p.baseAddress, p.count) }
            ?? utf8.starts(with: prefix.utf8)
    }

    @inline(__always)
    private static func startsWith(_ view: UTF8View, _ prefix: UnsafePointer<UInt8>?, _ count: Int) -> Bool {
        guard count > 0, let prefix else { return true }
        return view.withContiguousStorageIfAvailable { b in b.count >= count && memcmp(b.baseAddress!, prefix, count) == 0 }
            ?? view.starts(with: UnsafeBufferPointer(start: prefix, count: count))
    }
}

extension StringProtocol where UTF8View.Index == Index {
    /// The index of the first `byte` among the UTF-8 bytes (an index of the text when `byte` is ASCII).
    @inline(__always)
    func utf8Index(of byte: UInt8) -> Index? {
        guard let found = utf8.withContiguousStorageIfAvailable({ firstOffset(of: byte, in: $0) }) else { return utf8.firstIndex(of: byte) }
        return found.map { utf8.index(utf8.startIndex, offsetBy: $0) }
    }
}

@inline(__always)
private func firstOffset(of byte: UInt8, in b: UnsafeBufferPointer<UInt8>) -> Int? {
    guard let base = b.baseAddress, let p = memchr(base, Int32(byte), b.count) else { return nil }
    return base.distance(to: p.assumingMemoryBound(to: UInt8.self))
}

extension UnsafeBufferPointer<UInt8> {
    /// Whether these bytes are exactly `literal`'s.
    @inline(__always)
    func equals(_ literal: StaticString) -> Bool {
        count == literal.utf8CodeUnitCount && (count == 0 || memcmp(baseAddress!, literal.utf8Start, count) == 0)
    }
}
