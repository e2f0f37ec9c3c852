/// The chunk-size line of a chunked body, without its line end: 1–15 hex digits, optional whitespace, then
/// optional `;` extensions (ignored, but no control characters). Read the same way for requests
/// (`HTTPRequestParser`) and for providers' responses (`HTTP1ResponseDecoder`).
enum ChunkSizeLine {
    enum Problem: Error {
        case tooLarge
        case invalid
        case badExtension
    }

    static func parse(_ line: UnsafeBufferPointer<UInt8>) -> Result<Int, Problem> {
        var size = 0, digits = 0, i = 0
        while i < line.count, let v = hexValue(line[i]) {
            digits += 1
            if digits > 15 { return .failure(.tooLarge) }
            size = size << 4 | v
            i += 1
        }
        if digits == 0 { return .failure(.invalid) }
        while i < line.count, line[i] == 0x20 || line[i] == 0x09 { i += 1 }
        guard i < line.count else { return .success(size) }
        guard line[i] == 0x3B else { return .failure(.invalid) }
        for b in UnsafeBufferPointer(rebasing: line[i...]) where (b < 0x20 && b != 0x09) || b == 0x7F {
            return .failure(.badExtension)
        }
        return .success(size)
    }

    @inline(__always)
    private static func hexValue(_ b: UInt8) -> Int? {
        switch b {
        case 0x30...0x39: Int(b - 0x30)
        case 0x41...0x46: Int(b - 0x41 + 10)
        case 0x61...0x66: Int(b - 0x61 + 10)
        default: nil
        }
    }
}
