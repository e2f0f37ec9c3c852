import Node

/// The proxy's parsers of untrusted bytes: the request-body scanner (and the one body rewrite), usage
/// extraction from responses, the SSE splitter and the upstream head reader. Properties checked, not just "no crash":
/// - a body with include_usage added still scans as an object and reports it;
/// - what the JSON scanner accepts checking every token, it accepts skimming nested values too, with the
///   same members;
/// - the SSE splitter loses and invents nothing: its events plus the remainder equal the input;
/// - the upstream response decoder gives the same response, body and verdict whatever the read sizes;
/// - the multipart reader finds a form field it is given back, whatever the bytes around it, and only
///   returns bytes of the body.
func fuzzProxyParsers(_ data: UnsafeRawBufferPointer) {
    guard !data.isEmpty else { return }
    let bytes = Array(data.dropFirst())
    if let facts = RequestInspector.inspect(bytes) {
        if !facts.hasStreamOptions, let rewritten = RequestInspector.addingIncludeUsage(bytes) {
            guard let again = RequestInspector.inspect(rewritten) else {
                fatalError("rewritten body no longer parses: \(String(decoding: rewritten, as: UTF8.self))")
            }
            precondition(again.hasStreamOptions && again.includeUsage == true, "include_usage not seen after rewrite")
            precondition(again.model == facts.model && again.stream == facts.stream, "rewrite changed other fields")
        }
    }
    bytes.withUnsafeBytes { b in
        var checked: [Range<Int>] = []
        var skimmed: [Range<Int>] = []
        let strict = JSONScanner.members(of: b) { _, r in checked.append(r) }
        let loose = JSONScanner.members(of: b, skimContainers: true) { _, r in skimmed.append(r) }
        precondition(!strict || (loose && checked == skimmed), "skimming refused or split differently what checking accepted")
    }
    var usage = TokenUsage()
    bytes.withUnsafeBytes { _ = usage.absorb(jsonObject: $0) }
    precondition(usage.prompt >= 0 && usage.completion >= 0)

    let step = Int(data[0] % 17) + 1
    var splitter = SSESplitter()
    var rebuilt: [UInt8] = []
    var i = 0
    while i < bytes.count {
        let n = min(step, bytes.count - i)
        bytes[i..<(i + n)].withUnsafeBytes { chunk in
            for e in splitter.feed(chunk) {
                rebuilt += e
                _ = SSESplitter.dataPayloads(e)
            }
        }
        i += n
    }
    rebuilt += splitter.flush()
    precondition(rebuilt == bytes, "SSE splitter changed the stream")

    // The node's own upstream client's decoder: bytes in any piece size decode to the same thing.
    for head in [false, true] {
        let whole = HTTP1ResponseDecoder.decodeWhole(bytes, pieceSize: bytes.count, requestWasHEAD: head)
        let pieces = HTTP1ResponseDecoder.decodeWhole(bytes, pieceSize: step, requestWasHEAD: head)
        precondition(whole == pieces, "decoding in pieces of \(step) differs: \(whole) vs \(pieces)")
        precondition(whole.status == 0 || (200...999).contains(whole.status), "final status \(whole.status)")
        precondition(whole.body.count <= bytes.count, "the decoder invented body bytes")
        precondition(!(head && !whole.body.isEmpty), "a response to HEAD had a body")
    }

    // The multipart reader: on the raw input as a body, then on a form built around a value from it.
    let boundary = Substring("fz" + String(data[0] % 97))
    if let v = MultipartForm.field(named: "model", in: bytes, boundary: boundary) {
        precondition(bytes.firstRange(of: Array(v.utf8)) != nil, "a field value not taken from the body")
    }
    let value = String(decoding: bytes.prefix(40).map { 0x21 + $0 % 94 }, as: UTF8.self)  // printable, no CR LF
    let around = bytes.dropFirst(40)
    let form = Array("--\(boundary)\r\nContent-Disposition: form-data; name=\"file\"; filename=\"f\"\r\n\r\n".utf8)
        + around + Array("\r\n--\(boundary)\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\n\(value)\r\n--\(boundary)--\r\n".utf8)
    if around.firstRange(of: Array("\r\n--\(boundary)".utf8)) == nil {
        precondition(MultipartForm.field(named: "model", in: form, boundary: boundary) == value, "the model field was not found: \(value)")
    }

    // The upstream head reader, fed the input as curl would: line by line.
    var reader = UpstreamHeadReader()
    var start = 0
    for (j, b) in bytes.enumerated() where b == 0x0A || j == bytes.count - 1 {
        let complete = bytes[start...j].withUnsafeBytes { reader.take($0) }
        start = j + 1
        precondition(!complete || reader.status >= 200, "a head ended with status \(reader.status)")
        precondition((0...999).contains(reader.status), "status \(reader.status) out of range")
        for (name, value) in reader.headers {
            precondition(!name.isEmpty && !name.utf8.contains { (0x41...0x5A).contains($0) }, "name not lower-cased: \(name)")
            precondition(!value.utf8.contains(0x0A), "line feed inside a value")
        }
    }
}

#if FUZZING
@_cdecl("LLVMFuzzerTestOneInput")
public func llvmFuzzerTestOneInput(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    fuzzProxyParsers(UnsafeRawBufferPointer(start: start, count: count))
    return 0
}
#else
import Glibc

/// Without `-DFUZZING`: replays corpus files given as arguments.
@main
struct ProxyParsersFuzzReplay {
    static func main() {
        for path in CommandLine.arguments.dropFirst() {
            guard let f = fopen(path, "rb") else { continue }
            var bytes: [UInt8] = []
            var chunk = [UInt8](repeating: 0, count: 4096)
            while true {
                let n = fread(&chunk, 1, chunk.count, f)
                if n <= 0 { break }
                bytes.append(contentsOf: chunk[0..<n])
            }
            fclose(f)
            bytes.withUnsafeBytes { fuzzProxyParsers($0) }
            print("ok \(path)")
        }
    }
}
#endif
