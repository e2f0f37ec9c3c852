import Glibc

/// A fixed set of string literals, looked up by the bytes of a candidate: grouped by length, compared with
/// `memcmp` — no hashing, no `String` made from the candidate. Given as `String` literals, which stay
/// immortal (returning one costs no allocation); their bytes are copied once into `blob`. Serves the
/// request parser's API paths (`CommonRequestTargets`) and the proxy's sets of header names to drop.
struct LiteralTable: Sendable {
    private let blob: [UInt8]
    /// For each length, the offsets in `blob` of the literals of that length, and the literals.
    private let byLength: [[(offset: Int, string: String)]]

    init(_ literals: [String]) {
        let longest = literals.map(\.utf8.count).max() ?? 0
        var blob: [UInt8] = []
        var byLength = [[(offset: Int, string: String)]](repeating: [], count: longest + 1)
        for l in literals {
            byLength[l.utf8.count].append((blob.count, l))
            blob.append(contentsOf: l.utf8)
        }
        self.blob = blob
        self.byLength = byLength
    }

    /// The literal equal to `bytes` — ignoring ASCII case when `foldingCase` (header names) — if any.
    func lookup(_ bytes: UnsafeBufferPointer<UInt8>, foldingCase: Bool = false) -> String? {
        let n = bytes.count
        guard n < byLength.count, !byLength[n].isEmpty, let base = bytes.baseAddress else { return nil }
        return blob.withUnsafeBufferPointer { all -> String? in
            for candidate in byLength[n] {
                let p = all.baseAddress! + candidate.offset
                if foldingCase {
                    var j = 0
                    while j < n, (base[j] >= 0x41 && base[j] <= 0x5A ? base[j] | 0x20 : base[j]) == p[j] { j += 1 }
                    if j == n { return candidate.string }
                } else if memcmp(base, p, n) == 0 {
                    return candidate.string
                }
            }
            return nil
        }
    }

    /// Whether `bytes` are one of the literals (exact bytes; the parsers keep names lower-case).
    func contains(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool { lookup(bytes) != nil }

    /// Whether `name` is one of the literals (exact bytes; the parsers give names lower-case).
    func contains(_ name: String) -> Bool {
        if let found = name.utf8.withContiguousStorageIfAvailable({ lookup($0) != nil }) { return found }
        var copy = name
        return copy.withUTF8 { lookup($0) != nil }
    }
}
