import Testing
@testable import Node

/// The word-at-a-time and memchr scans the HTTP parsers use agree with the plain byte-by-byte rules.
@Suite struct HeadBytesTests {
    static let tchars = Set("!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz".utf8)

    @Test func theTokenSetIsExactlyRFC9110Tchar() {
        for c in 0...255 {
            #expect(HeadBytes.isToken(UInt8(c)) == Self.tchars.contains(UInt8(c)), "byte \(c)")
            let one = [UInt8(c)]
            #expect(one.withUnsafeBufferPointer { HeadBytes.isToken($0) } == Self.tchars.contains(UInt8(c)))
        }
        #expect([UInt8]().withUnsafeBufferPointer { HeadBytes.isToken($0) } == false)
    }

    /// Every length up to 40 (the word loop and the byte tail), each bad byte at every position.
    @Test func fieldValueChecksFindABadByteAnywhere() {
        for length in 0...40 {
            let clean = (0..<length).map { UInt8(0x61 + $0 % 26) } // letters
            #expect(clean.withUnsafeBufferPointer { HeadBytes.isFieldValue($0) })
            #expect(clean.withUnsafeBufferPointer { HeadBytes.hasNoCROrNUL($0) })
            for at in 0..<length {
                for bad: UInt8 in [0x00, 0x01, 0x09, 0x0A, 0x0D, 0x1F, 0x20, 0x7E, 0x7F, 0x80, 0xC3, 0xFF] {
                    var v = clean
                    v[at] = bad
                    let strictOK = !((bad < 0x20 && bad != 0x09) || bad == 0x7F)
                    #expect(v.withUnsafeBufferPointer { HeadBytes.isFieldValue($0) } == strictOK, "length \(length) byte \(bad) at \(at)")
                    #expect(v.withUnsafeBufferPointer { HeadBytes.hasNoCROrNUL($0) } == (bad != 0x0D && bad != 0), "length \(length) byte \(bad) at \(at)")
                }
            }
        }
    }

    @Test func indexOfFindsTheFirstWithinTheBoundsOnly() {
        let b = Array("ab:cd:ef".utf8)
        b.withUnsafeBufferPointer { p in
            #expect(HeadBytes.index(of: 0x3A, in: p, from: 0, to: p.count) == 2)
            #expect(HeadBytes.index(of: 0x3A, in: p, from: 3, to: p.count) == 5)
            #expect(HeadBytes.index(of: 0x3A, in: p, from: 3, to: 5) == nil)
            #expect(HeadBytes.index(of: 0x3A, in: p, from: 6, to: 6) == nil)
        }
        #expect([UInt8]().withUnsafeBufferPointer { HeadBytes.index(of: 0x3A, in: $0, from: 0, to: 0) } == nil)
    }

    @Test func trimmingDropsSpacesAndTabsAtBothEndsOnly() {
        let b = Array(" \t a b\t \t".utf8)
        b.withUnsafeBufferPointer { p in
            #expect(HeadBytes.trimmed(p, 0, p.count) == 3..<6)
            #expect(HeadBytes.trimmed(p, 0, 2) == 2..<2)
        }
    }
}
