import Foundation
import Glibc
import Testing
import TestSupport

/// The node's kept-alive connections to a provider: they stay registered with epoll between requests,
/// so the case that matters is the provider closing one while it is idle.
@Suite struct UpstreamConnectionTests {
    private func chat(_ stack: ProxyStack) -> Int {
        let body = #"{"model":"gpt-4o-mini","messages":[]}"#
        guard let c = try? RawHTTPClient(port: stack.port),
              (try? c.send("POST /v1/chat/completions HTTP/1.1\r\nHost: p\r\nAuthorization: Bearer \(stack.key)\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)")) != nil,
              let r = try? c.readResponse() else { return 0 }
        return r.status
    }

    /// CPU seconds the process has used (user + system), from /proc.
    private func cpuSeconds(_ pid: Int32) -> Double {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return 0 }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        // After the command: state is field 3, utime 14 and stime 15 (1-based in proc(5)).
        let ticks = (Double(fields[11]) ?? 0) + (Double(fields[12]) ?? 0)
        return ticks / Double(sysconf(Int32(_SC_CLK_TCK)))
    }

    @Test(arguments: PlainHTTPClients.all) func providerClosingIdleConnectionsIsInvisibleAndCostsNoCPU(client: String) throws {
        let stack = try ProxyStack(serveArgs: PlainHTTPClients.args(client))
        defer { stack.stop() }
        for _ in 0..<5 { #expect(chat(stack) == 200) }

        // The provider goes away: its end of every kept-alive connection closes while the node is idle.
        stack.mock.signal(SIGKILL)
        _ = stack.mock.waitForExit(timeout: 5)
        usleep(200_000)
        let pid = stack.node.process.processIdentifier
        let before = cpuSeconds(pid)
        usleep(1_000_000)
        let spent = cpuSeconds(pid) - before
        #expect(spent < 0.2, "an idle node used \(spent) s of CPU in 1 s after its provider closed its connections")

        // The provider is back on the same port: the next request opens a new connection.
        let again = try ChildProcess(BuiltProducts.path("mock-provider"), ["--listen", "127.0.0.1:\(stack.mockPort)"])
        defer { again.stop() }
        _ = try again.waitForOutput(containing: "listening on")
        for _ in 0..<5 { #expect(chat(stack) == 200) }
    }
}
