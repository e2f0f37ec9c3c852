import Glibc
import Testing
@testable import Node
import Storage

@Suite struct LoggerTests {
    /// A reader that stops reading (a stuck log collector) must not block whoever logs; what did not fit
    /// is counted, and every line logged is either delivered whole or counted as dropped.
    @Test func aStuckReaderNeverBlocksTheCallerAndLossIsCounted() throws {
        var fds: [Int32] = [0, 0]
        #expect(pipe(&fds) == 0)
        defer { close(fds[0]) }
        let log = Logger(level: .info, fd: fds[1])
        let total = 120_000
        let padding = String(repeating: "x", count: 60)
        let t0 = monotonicNanos()
        for i in 0..<total { log.info("line", [("i", .int(i)), ("pad", .string(padding))]) }
        let elapsedMillis = Double(monotonicNanos() - t0) / 1e6
        // ~12 MB logged against a pipe nobody reads: the calls still return at memory speed.
        #expect(elapsedMillis < 3000, "logging took \(elapsedMillis) ms with the reader stuck")

        // Now read everything: whole lines, then one warning counting the rest.
        var text: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 1 << 16)
        let flags = fcntl(fds[0], F_GETFL)
        _ = fcntl(fds[0], F_SETFL, flags | O_NONBLOCK)
        var idle = 0
        while idle < 50 {
            let n = read(fds[0], &buf, buf.count)
            if n > 0 { text += buf[0..<n]; idle = 0 } else { idle += 1; usleep(20_000) }
        }
        let lines = text.split(separator: 0x0A).map { String(decoding: $0, as: UTF8.self) }
        let delivered = lines.filter { $0.contains("\"msg\":\"line\"") }.count
        let droppedLines = lines.filter { $0.contains("log lines dropped") }
        let dropped = droppedLines.compactMap { line in
            line.split(separator: ":").last.flatMap { Int($0.dropLast()) }
        }.reduce(0, +)
        #expect(lines.allSatisfy { $0.hasPrefix("{") && $0.hasSuffix("}") }, "a line was cut")
        #expect(dropped > 0, "12 MB should not fit the 8 MiB buffer plus the pipe")
        #expect(delivered + dropped == total, "delivered \(delivered) + dropped \(dropped) != \(total)")
    }

    @Test func timestampsAreRFC3339UTCWithMilliseconds() {
        let t = Logger.timestamp()
        let shape = t.utf8.map { (0x30...0x39).contains($0) ? UInt8(ascii: "9") : $0 }
        #expect(String(decoding: shape, as: UTF8.self) == "9999-99-99T99:99:99.999Z", "\(t)")
        #expect(t.hasPrefix("20"))
    }

    @Test func jsonEscapeLeavesPlainTextAndEscapesTheRest() {
        #expect(jsonEscape("req_0123 /v1/chat gpt-4o é") == "req_0123 /v1/chat gpt-4o é")
        #expect(jsonEscape("a\"b\\c\nd\u{1}") == #"a\"b\\c\nd\u0001"#)
    }
}
