import Glibc

/// A fixed set of lower-case header names, tested by length and bytes: no hashing, no copies of the name
/// (a `Set<String>` hashes every field of every request head it is asked about).
struct HeaderNameSet: Sendable {
    private let names: [StaticString]

    init(_ names: [StaticString]) {
        self.names = names
    }

    /// Whether `name` (as the parsers give it: lower-case) is in the set.
    func contains(_ name: String) -> Bool {
        if let found = name.utf8.withContiguousStorageIfAvailable({ contains($0) }) { return found }
        var copy = name
        return copy.withUTF8 { contains($0) }
    }

    private func contains(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        guard let base = bytes.baseAddress else { return false }
        for n in names where n.utf8CodeUnitCount == bytes.count && memcmp(n.utf8Start, base, bytes.count) == 0 {
            return true
        }
        return false
    }
}
