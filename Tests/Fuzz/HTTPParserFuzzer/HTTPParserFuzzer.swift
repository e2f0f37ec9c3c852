import Node

/// Feeds `data` to the request parser twice — whole, and split at a point chosen from the data — and
/// checks that both ways agree and that consumption never overruns. Any crash or disagreement is a bug.
func fuzzHTTPParser(_ data: UnsafeRawBufferPointer) {
    guard !data.isEmpty else { return }
    var limits = HTTPParserLimits()
    limits.maxHeaderBytes = 4096
    limits.maxHeaderCount = 32
    limits.maxBodyBytes = 64 * 1024
    let bytes = Array(data.dropFirst())
    let whole = run(bytes, step: Int.max, limits: limits)
    let step = Int(data[0] % 31) + 1
    let pieces = run(bytes, step: step, limits: limits)
    guard whole == pieces else {
        fatalError("parser disagrees with itself: whole=\(whole) pieces(step \(step))=\(pieces)")
    }
}

enum Outcome: Equatable {
    case requests([HTTPRequestHeadAndBody], error: Int?)
}

private func run(_ bytes: [UInt8], step: Int, limits: HTTPParserLimits) -> Outcome {
    var parser = HTTPRequestParser(limits: limits)
    var buffer: [UInt8] = []
    var fed = 0
    var requests: [HTTPRequestHeadAndBody] = []
    while true {
        if fed < bytes.count {
            let n = min(step, bytes.count - fed)
            buffer.append(contentsOf: bytes[fed..<(fed + n)])
            fed += n
        }
        while true {
            let result: (consumed: Int, output: HTTPRequestParser.Output)
            do {
                result = try buffer.withUnsafeBufferPointer { p throws(HTTPParseError) in try parser.parse(p) }
            } catch {
                return .requests(requests, error: error.status)
            }
            precondition(result.consumed >= 0 && result.consumed <= buffer.count, "consumed out of range")
            buffer.removeFirst(result.consumed)
            switch result.output {
            case .request(let r):
                precondition(r.body.count <= limits.maxBodyBytes, "body over the limit")
                requests.append(r)
                continue
            case .continueExpected:
                continue
            case .needMore:
                break
            }
            break
        }
        if fed == bytes.count { return .requests(requests, error: nil) }
    }
}

#if FUZZING
@_cdecl("LLVMFuzzerTestOneInput")
public func llvmFuzzerTestOneInput(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    fuzzHTTPParser(UnsafeRawBufferPointer(start: start, count: count))
    return 0
}
#else
import Glibc

/// Without `-DFUZZING`: replays corpus files given as arguments (handy for reproducing a crash).
@main
struct HTTPParserFuzzReplay {
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
            bytes.withUnsafeBytes { fuzzHTTPParser($0) }
            print("ok \(path)")
        }
    }
}
#endif
