import Synchronization

/// 64-bit numbers for ids that must be unique but are not secrets (request ids, usage record ids),
/// without a CSPRNG call each (OpenSSL's RAND_bytes costs a lock, a getpid and an AES block per call,
/// twice per proxied request).
///
/// A counter, offset and then scrambled by the SplitMix64 finalizer under random per-process keys: every
/// step is a bijection, so a process never repeats a value before 2⁶⁴ of them, and values from different
/// processes collide like random ones. The keys hide the counter (how many requests a node served) from
/// clients who see request ids; they are not a defence against someone who wants to predict ids.
public enum UniqueNumbers {
    private static let keys: (UInt64, UInt64) = {
        let b = Crypto.randomBytes(16)
        var k0: UInt64 = 0, k1: UInt64 = 0
        for i in 0..<8 {
            k0 = k0 << 8 | UInt64(b[i])
            k1 = k1 << 8 | UInt64(b[8 + i])
        }
        return (k0, k1)
    }()
    private static let counter = Atomic<UInt64>(0)

    public static func next() -> UInt64 {
        let n = counter.add(1, ordering: .relaxed).newValue
        var z = (n ^ keys.0) &* 0x9E37_79B9_7F4A_7C15  // odd multiplier: a bijection
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return (z ^ (z >> 31)) &+ keys.1
    }
}
