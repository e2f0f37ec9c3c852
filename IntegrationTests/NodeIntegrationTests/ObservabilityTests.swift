import Foundation
import Testing
import TestSupport

/// `/metrics` as Prometheus reads it, and logs an operator can ship without leaking secrets.
@Suite struct ObservabilityTests {
    func post(_ stack: ProxyStack, extraHeaders: String = "") throws -> Int {
        let body = #"{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hello"}]}"#
        let c = try RawHTTPClient(port: stack.port)
        try c.send("POST /v1/chat/completions HTTP/1.1\r\nHost: p\r\nAuthorization: Bearer \(stack.key)\r\n\(extraHeaders)Content-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)")
        return try c.readResponse().status
    }

    func scrape(_ port: UInt16) throws -> String {
        let c = try RawHTTPClient(port: port)
        try c.send("GET /metrics HTTP/1.1\r\nHost: p\r\n\r\n")
        let r = try c.readResponse()
        #expect(r.header("content-type")?.hasPrefix("text/plain; version=0.0.4") == true)
        return r.bodyText
    }

    func value(_ text: String, _ series: String) -> Double? {
        for line in text.split(separator: "\n") where line.hasPrefix(series + " ") {
            return Double(line.split(separator: " ").last!)
        }
        return nil
    }

    @Test func metricsPassPromtoolAndMoveWithTraffic() throws {
        let stack = try ProxyStack(keyArgs: ["--tps", "5", "--burst", "5"])
        var statuses: [Int] = []
        for _ in 0..<8 { statuses.append(try post(stack)) }
        usleep(1_100_000)
        statuses.append(try post(stack, extraHeaders: "x-mock-status: 500\r\n"))
        #expect(statuses.filter { $0 == 429 }.count >= 2)
        usleep(1_200_000)  // let the usage writer run
        let text = try scrape(stack.port)

        let file = "/tmp/llmp-metrics-\(getpid()).txt"
        try text.write(toFile: file, atomically: true, encoding: .utf8)
        defer { unlink(file) }
        let promtool = try runCommand("/bin/sh", ["-c", "promtool check metrics < \(file)"], timeout: 30)
        #expect(promtool.status == 0, "promtool: \(promtool.output)")

        #expect(value(text, #"llmp_requests_total{route="/v1/chat/completions",provider="openai",status="200"}"#) ?? 0 >= 5)
        #expect(value(text, #"llmp_requests_total{route="/v1/chat/completions",provider="openai",status="429"}"#) ?? 0 >= 2)
        #expect(value(text, #"llmp_requests_total{route="/v1/chat/completions",provider="openai",status="500"}"#) == 1)
        #expect(value(text, #"llmp_rate_limited_total{kind="requests"}"#) ?? 0 >= 2)
        #expect(value(text, #"llmp_tokens_total{vkey="\#(stack.keyID)",model="gpt-4o-mini",kind="completion"}"#) ?? 0 >= 31 * 5)
        #expect(value(text, "llmp_usage_dropped_total") == 0)
        #expect(value(text, "llmp_usage_written_total") ?? 0 >= 6)
        #expect(value(text, #"llmp_limiter_mode{mode="local"}"#) == 1)
        #expect(text.contains("llmp_proxy_overhead_seconds_bucket"))
        #expect(!text.contains(stack.key))
    }

    @Test func logsAreJSONLinesWithoutSecrets() throws {
        let stack = try ProxyStack()
        _ = try post(stack)
        _ = try post(stack, extraHeaders: "x-mock-status: 503\r\n")
        _ = try stack.sdk("openai-error", key: "sk-llmp-some-random-wrong-key")
        stack.node.stop()
        let lines = stack.node.outputText.split(separator: "\n")
        #expect(lines.count >= 4)
        for line in lines {
            #expect(line.hasPrefix("{\"time\":\""), "not a JSON log line: \(line)")
            #expect((try? JSONSerialization.jsonObject(with: Data(line.utf8))) != nil, "invalid JSON: \(line)")
            #expect(!line.contains(stack.key))
            #expect(!line.contains(stack.providerKey))
            #expect(!line.contains("sk-llmp-some-random-wrong-key"))
            #expect(!line.contains("hello"), "a prompt reached the log: \(line)")
        }
        #expect(lines.contains { $0.contains("\"msg\":\"request\"") && $0.contains("\"status\":200") && $0.contains(stack.keyID) })
    }
}
