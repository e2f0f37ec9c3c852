import Glibc
import Node

/// A blocking TCP client for tests: sends raw bytes and reads raw HTTP/1.1 responses.
public final class RawHTTPClient {
    public let fd: Int32
    private var buffer: [UInt8] = []

    public struct Response {
        public var status: Int
        public var headers: [(String, String)]
        public var body: [UInt8]
        public var bodyText: String { String(decoding: body, as: UTF8.self) }
        public func header(_ name: String) -> String? {
            headers.first { $0.0.lowercased() == name.lowercased() }?.1
        }
    }

    public struct ClientError: Error, CustomStringConvertible {
        public var description: String
    }

    public init(port: UInt16, host: String = "127.0.0.1", timeoutSeconds: Int = 5) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var tv = timeval(tv_sec: timeoutSeconds, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = port.bigEndian
        inet_pton(AF_INET, host, &addr.sin_addr)
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        if rc != 0 {
            // No close here: every stored property is set, so `deinit` runs when this initializer throws
            // and closes `fd`. Closing it twice closed whatever descriptor another thread had opened with
            // the number meanwhile (a test client's socket, seen as "send failed: errno 9").
            throw ClientError(description: "connect to \(host):\(port) failed: errno \(errno)")
        }
    }

    deinit { close(fd) }

    public func send(_ text: String) throws { try send(Array(text.utf8)) }

    public func send(_ bytes: [UInt8]) throws {
        var off = 0
        while off < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress! + off, $0.count - off, Int32(MSG_NOSIGNAL)) }
            if n <= 0 { throw ClientError(description: "send failed: errno \(errno)") }
            off += n
        }
    }

    public func shutdownWrite() { shutdown(fd, Int32(SHUT_WR)) }

    /// Reads more bytes; returns false on EOF.
    @discardableResult
    func fill() throws -> Bool {
        var chunk = [UInt8](repeating: 0, count: 65536)
        let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        if n < 0 { throw ClientError(description: "recv failed: errno \(errno) (timeout?)") }
        if n == 0 { return false }
        buffer.append(contentsOf: chunk[0..<n])
        return true
    }

    /// True if the server closed the connection (reads EOF) within the timeout.
    public func readEOF() -> Bool {
        do {
            while try fill() {}
            return true
        } catch {
            return false
        }
    }

    /// All bytes until the server closes.
    public func readAll() throws -> [UInt8] {
        while try fill() {}
        defer { buffer = [] }
        return buffer
    }

    private func readLine() throws -> String {
        while true {
            if let i = buffer.firstIndex(of: 0x0A) {
                let line = Array(buffer[0..<i])
                buffer.removeFirst(i + 1)
                return String(decoding: line.last == 0x0D ? Array(line.dropLast()) : line, as: UTF8.self)
            }
            guard try fill() else { throw ClientError(description: "EOF while reading a line") }
        }
    }

    private func readExactly(_ n: Int) throws -> [UInt8] {
        while buffer.count < n {
            guard try fill() else { throw ClientError(description: "EOF while reading \(n) bytes") }
        }
        let out = Array(buffer[0..<n])
        buffer.removeFirst(n)
        return out
    }

    /// Reads one response. `headRequest` means no body follows whatever the headers say.
    public func readResponse(headRequest: Bool = false) throws -> Response {
        let statusLine = try readLine()
        let parts = statusLine.split(separator: " ", maxSplits: 2)
        guard parts.count >= 2, let status = Int(parts[1]) else { throw ClientError(description: "bad status line: \(statusLine)") }
        var headers: [(String, String)] = []
        while true {
            let line = try readLine()
            if line.isEmpty { break }
            if let colon = line.firstIndex(of: ":") {
                headers.append((String(line[..<colon]), String(line[line.index(after: colon)...]).trimmingCharactersOWS()))
            }
        }
        var response = Response(status: status, headers: headers, body: [])
        if headRequest || status < 200 || status == 204 || status == 304 { return response }
        if let cl = response.header("content-length"), let n = Int(cl) {
            response.body = try readExactly(n)
        } else if response.header("transfer-encoding")?.lowercased() == "chunked" {
            while true {
                let sizeLine = try readLine()
                guard let size = Int(sizeLine.split(separator: ";")[0], radix: 16) else { throw ClientError(description: "bad chunk size \(sizeLine)") }
                if size == 0 {
                    while try !readLine().isEmpty {}
                    break
                }
                response.body += try readExactly(size)
                _ = try readExactly(2)
            }
        } else {
            while try fill() {}
            response.body = buffer
            buffer = []
        }
        return response
    }
}

extension String {
    func trimmingCharactersOWS() -> String {
        var s = Substring(self)
        while s.first == " " || s.first == "\t" { s = s.dropFirst() }
        while s.last == " " || s.last == "\t" { s = s.dropLast() }
        return String(s)
    }
}
