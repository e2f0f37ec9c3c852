import CCrypto

/// SHA-256, HMAC, HKDF and the OS CSPRNG through OpenSSL's libcrypto.
public enum Crypto {
    public static func sha256(_ bytes: [UInt8]) -> [UInt8] {
        bytes.withUnsafeBytes { sha256(of: $0) }
    }

    public static func sha256(of bytes: UnsafeRawBufferPointer) -> [UInt8] {
        [UInt8](unsafeUninitializedCapacity: 32) { out, count in
            llmp_sha256(bytes.baseAddress, bytes.count, out.baseAddress)
            count = 32
        }
    }

    /// The hex SHA-256 of a string's UTF-8 (how virtual and admin keys are looked up): one allocation, the
    /// result's, with the digest on the stack.
    public static func sha256Hex(_ text: String) -> String {
        sha256Hex(text[...])
    }

    public static func sha256Hex(_ text: Substring) -> String {
        sha256Digest(text).hex
    }

    /// The SHA-256 of a string's UTF-8 as a value (no allocation): what an in-memory map of keys can be keyed by.
    public static func sha256Digest(_ text: Substring) -> SHA256Digest {
        var text = text
        var digest = SHA256Digest()
        withUnsafeMutableBytes(of: &digest.words) { d in
            text.withUTF8 { llmp_sha256($0.baseAddress, $0.count, d.baseAddress!.assumingMemoryBound(to: UInt8.self)) }
        }
        return digest
    }

    public static func sha256Digest(_ bytes: UnsafeBufferPointer<UInt8>) -> SHA256Digest {
        var digest = SHA256Digest()
        withUnsafeMutableBytes(of: &digest.words) { d in
            llmp_sha256(bytes.baseAddress, bytes.count, d.baseAddress!.assumingMemoryBound(to: UInt8.self))
        }
        return digest
    }

    public static func hmacSHA256(key: [UInt8], _ data: [UInt8]) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: 32)
        var len: UInt32 = 32
        key.withUnsafeBytes { k in
            data.withUnsafeBytes { d in
                _ = HMAC(EVP_sha256(), k.baseAddress, Int32(k.count), d.baseAddress?.assumingMemoryBound(to: UInt8.self), d.count, &out, &len)
            }
        }
        return out
    }

    /// HKDF-SHA256 (RFC 5869) for up to 32 bytes of output.
    public static func hkdfSHA256(ikm: [UInt8], salt: [UInt8], info: [UInt8], length: Int = 32) -> [UInt8] {
        precondition(length <= 32)
        let prk = hmacSHA256(key: salt, ikm)
        return Array(hmacSHA256(key: prk, info + [1]).prefix(length))
    }

    /// Bytes from the OS CSPRNG (OpenSSL's RAND_bytes, seeded from getrandom).
    public static func randomBytes(_ count: Int) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: count)
        guard RAND_bytes(&out, Int32(count)) == 1 else { fatalError("RAND_bytes failed: no entropy") }
        return out
    }

    public static func hex(_ bytes: [UInt8]) -> String {
        bytes.withUnsafeBytes { hex($0) }
    }

    static let hexDigits: StaticString = "0123456789abcdef"

    public static func hex(_ bytes: UnsafeRawBufferPointer) -> String {
        let digits = hexDigits
        return String(unsafeUninitializedCapacity: bytes.count * 2) { out in
            for (i, b) in bytes.enumerated() {
                out[2 * i] = digits.utf8Start[Int(b >> 4)]
                out[2 * i + 1] = digits.utf8Start[Int(b & 0x0F)]
            }
            return bytes.count * 2
        }
    }

    public static func unhex(_ text: String) -> [UInt8]? {
        let bytes = Array(text.utf8)
        guard bytes.count % 2 == 0 else { return nil }
        func v(_ c: UInt8) -> UInt8? {
            switch c {
            case 0x30...0x39: c - 0x30
            case 0x61...0x66: c - 0x61 + 10
            case 0x41...0x46: c - 0x41 + 10
            default: nil
            }
        }
        var out = [UInt8]()
        out.reserveCapacity(bytes.count / 2)
        var i = 0
        while i < bytes.count {
            guard let hi = v(bytes[i]), let lo = v(bytes[i + 1]) else { return nil }
            out.append(hi << 4 | lo)
            i += 2
        }
        return out
    }

    /// base64url without padding.
    public static func base64URL(_ bytes: [UInt8]) -> String {
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)
        var out = [UInt8]()
        var i = 0
        while i + 3 <= bytes.count {
            let n = UInt32(bytes[i]) << 16 | UInt32(bytes[i + 1]) << 8 | UInt32(bytes[i + 2])
            for shift in [18, 12, 6, 0] { out.append(alphabet[Int((n >> UInt32(shift)) & 63)]) }
            i += 3
        }
        let rest = bytes.count - i
        if rest == 1 {
            let n = UInt32(bytes[i]) << 16
            out.append(alphabet[Int((n >> 18) & 63)])
            out.append(alphabet[Int((n >> 12) & 63)])
        } else if rest == 2 {
            let n = UInt32(bytes[i]) << 16 | UInt32(bytes[i + 1]) << 8
            out.append(alphabet[Int((n >> 18) & 63)])
            out.append(alphabet[Int((n >> 12) & 63)])
            out.append(alphabet[Int((n >> 6) & 63)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Compares without an early exit, so timing does not reveal where two secrets differ.
    public static func constantTimeEquals(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        return a.withUnsafeBytes { pa in b.withUnsafeBytes { pb in CRYPTO_memcmp(pa.baseAddress, pb.baseAddress, a.count) == 0 } }
    }
}

/// Random identifiers and virtual keys.
public enum Identifiers {
    /// `prefix_` + 24 hex characters (96 random bits).
    public static func make(_ prefix: String) -> String { prefix + "_" + Crypto.hex(Crypto.randomBytes(12)) }

    /// `prefix_` + 12 hex characters of milliseconds since 1970 + 16 hex characters of a `UniqueNumbers`
    /// value: ids of records written in bulk (usage) sort by time, so each batch lands at the end of an
    /// index on them (MongoDB's `_id`; the SQL stores key records by start first) instead of dirtying pages
    /// all over it. A new usage record keeps the two numbers and writes this text when read
    /// (`UsageRecord(newIDEndingAt:…)`).
    public static func makeTimeOrdered(_ prefix: String, millis: Int64) -> String {
        timeOrdered(prefix, millis: millis, unique: UniqueNumbers.next())
    }

    /// `makeTimeOrdered`'s text for a given `UniqueNumbers` value.
    public static func timeOrdered(_ prefix: String, millis: Int64, unique: UInt64) -> String {
        prefixedHex(prefix, (UInt64(max(0, millis)), 12), (unique, 16))
    }

    /// `prefix_` + 24 hex characters, unique (not secret): two `UniqueNumbers` values' worth.
    public static func makeUnique(_ prefix: String) -> String {
        prefixedHex(prefix, (UniqueNumbers.next() >> 32, 8), (UniqueNumbers.next(), 16))
    }

    /// `prefix_` and two numbers in fixed-width hex, written straight into the one string (ids are made per
    /// request: concatenating pieces allocated each piece and each intermediate result).
    private static func prefixedHex(_ prefix: String, _ a: (value: UInt64, digits: Int), _ b: (value: UInt64, digits: Int)) -> String {
        let table = Crypto.hexDigits
        let head = prefix.utf8.count
        return String(unsafeUninitializedCapacity: head + 1 + a.digits + b.digits) { out in
            var i = 0
            for byte in prefix.utf8 { out[i] = byte; i += 1 }
            out[i] = UInt8(ascii: "_"); i += 1
            func put(_ v: UInt64, _ digits: Int) {
                for d in 0..<digits {
                    out[i] = table.utf8Start[Int((v >> UInt64(4 * (digits - 1 - d))) & 0xF)]
                    i += 1
                }
            }
            put(a.value, a.digits)
            put(b.value, b.digits)
            return i
        }
    }

    public static let virtualKeyPrefix = "sk-llmp-"

    /// A new virtual key: `sk-llmp-` + 32 random bytes, base64url.
    public static func newVirtualKey() -> String { virtualKeyPrefix + Crypto.base64URL(Crypto.randomBytes(32)) }

    /// What is shown of a key after it is created: its first 12 characters.
    public static func displayPrefix(of key: String) -> String { String(key.prefix(12)) }
}

/// A SHA-256 digest held in four words: hashable and comparable without a string.
public struct SHA256Digest: Hashable, Sendable {
    fileprivate var words: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)

    /// Lowercase hex, as stored.
    public var hex: String {
        var w = words
        return withUnsafeBytes(of: &w) { Crypto.hex($0) }
    }

    public static func == (a: SHA256Digest, b: SHA256Digest) -> Bool {
        a.words.0 == b.words.0 && a.words.1 == b.words.1 && a.words.2 == b.words.2 && a.words.3 == b.words.3
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(words.0)
        hasher.combine(words.1)
        hasher.combine(words.2)
        hasher.combine(words.3)
    }
}
