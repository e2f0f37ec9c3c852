/// Eight bytes at a time (SWAR), for the scanners of untrusted bytes (`HeadBytes`, `JSONScanner`): each
/// function gives the high bit of every byte of a little-endian word that matches — exact up to and
/// including the first match (a borrow can also mark bytes after it), so the lowest set bit finds the first
/// match and "none" is exact.
enum WordBytes {
    static let ones: UInt64 = 0x0101_0101_0101_0101
    static let highs: UInt64 = 0x8080_8080_8080_8080

    /// Bytes equal to `byte`.
    @inline(__always)
    static func equal(_ w: UInt64, _ byte: UInt8) -> UInt64 {
        let x = w ^ (ones &* UInt64(byte))
        return (x &- ones) & ~x & highs
    }

    /// Bytes below `n` (`n` at most 128).
    @inline(__always)
    static func below(_ w: UInt64, _ n: UInt8) -> UInt64 { (w &- ones &* UInt64(n)) & ~w & highs }
}
