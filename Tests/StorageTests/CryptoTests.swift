import Testing
@testable import Storage

@Suite struct CryptoTests {
    @Test func aDigestValueIsTheHexDigestAndComparesByContent() {
        let abc = Crypto.sha256Digest("abc")
        #expect(abc.hex == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(abc == Crypto.sha256Digest("xabc".dropFirst()))
        #expect(abc != Crypto.sha256Digest("abd"))
        let keys: Set<SHA256Digest> = [abc, Crypto.sha256Digest("abd"), Crypto.sha256Digest("abc")]
        #expect(keys.count == 2)
    }

    @Test func sha256MatchesTheFIPSVectors() {
        #expect(Crypto.sha256Hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(Crypto.sha256Hex("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(Crypto.hex(Crypto.sha256(Array("abc".utf8))) == Crypto.sha256Hex("abc"))
        // Two blocks (448 bits of message, then padding), and a long input through many blocks.
        #expect(Crypto.sha256Hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq")
                == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        #expect(Crypto.hex(Crypto.sha256([UInt8](repeating: UInt8(ascii: "a"), count: 1_000_000)))
                == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
    }

    @Test func hmacSHA256MatchesRFC4231() {
        let key = [UInt8](repeating: 0x0b, count: 20)
        #expect(Crypto.hex(Crypto.hmacSHA256(key: key, Array("Hi There".utf8)))
                == "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7")
    }

    @Test func timeOrderedIdsSortByTimeAndDiffer() {
        let a = Identifiers.makeTimeOrdered("u", millis: 1_700_000_000_000)
        let b = Identifiers.makeTimeOrdered("u", millis: 1_700_000_000_001)
        let c = Identifiers.makeTimeOrdered("u", millis: 1_700_000_000_001)
        #expect(a < b && a < c)
        #expect(b != c)
        #expect(a.hasPrefix("u_018bcfe56800") && a.count == 2 + 28)
    }

    @Test func uniqueNumbersDoNotRepeatAndDoNotShowTheCounter() {
        var seen = Set<UInt64>()
        var previous = UniqueNumbers.next()
        var increasing = 0
        for _ in 0..<200_000 {
            let v = UniqueNumbers.next()
            #expect(seen.insert(v).inserted)
            if v > previous { increasing += 1 }
            previous = v
        }
        // A scrambled counter rises about half the time, not always.
        #expect((90_000...110_000).contains(increasing))
        let id = Identifiers.makeUnique("req")
        #expect(id.hasPrefix("req_") && id.count == 4 + 24 && id.dropFirst(4).allSatisfy(\.isHexDigit))
    }
}
