import Foundation
import Node

// The proxy path's parsers on the benchmark's own messages (bench/lib.sh), each run in a tight loop:
// nanoseconds per message, median of `rounds` rounds. For comparing one build with the next (a change to
// a scanner or parser shows here in isolation, where the whole proxy's figures are too noisy to tell 2%).
//   swift run -c release parsers-bench [rounds]
let rounds = CommandLine.arguments.count > 1 ? max(1, Int(CommandLine.arguments[1]) ?? 7) : 7

let requestBody = Array(#"{"model":"gpt-4o-mini","messages":[{"role":"system","content":"You are a concise assistant."},{"role":"user","content":"In one sentence, why should an API gateway add as little latency as possible to each request it forwards to the model?"}],"max_tokens":64,"temperature":0.2,"user":"bench-user-1"}"#.utf8)
let responseBody = Array(#"{"id":"chatcmpl-mock0001","object":"chat.completion","created":1721000000,"model":"gpt-4o-mini-2024-07-18","system_fingerprint":"fp_mock01","choices":[{"index":0,"message":{"role":"assistant","content":"This is a fixed mock reply from the local benchmark upstream. It stands in for a real model answer so that only the proxy overhead is measured.","refusal":null},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":57,"completion_tokens":31,"total_tokens":88,"prompt_tokens_details":{"cached_tokens":0},"completion_tokens_details":{"reasoning_tokens":0}}}"#.utf8)
// What wrk sends (bench/lib.sh write_wrk_script) and what the nginx mock answers.
let requestHead = Array(("POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1:8132\r\nAuthorization: Bearer sk-llmp-0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJK\r\n"
    + "Content-Type: application/json\r\nContent-Length: \(requestBody.count)\r\n\r\n").utf8) + requestBody
let responseHead = Array(("HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: Sun, 29 Nov 2026 18:00:00 GMT\r\nContent-Type: application/json\r\n"
    + "Content-Length: \(responseBody.count)\r\nLast-Modified: Sun, 29 Nov 2026 17:00:00 GMT\r\nConnection: keep-alive\r\nETag: \"6749a0c0-23a\"\r\n"
    + "Accept-Ranges: bytes\r\n\r\n").utf8) + responseBody

/// Median nanoseconds per call of `body` over `rounds` rounds of `n` calls.
@MainActor func measure(_ name: String, n: Int = 200_000, _ body: () -> Int) {
    var perCall: [Double] = []
    for _ in 0..<rounds {
        let t0 = DispatchTime.now().uptimeNanoseconds
        for _ in 0..<n { sink &+= body() }
        perCall.append(Double(DispatchTime.now().uptimeNanoseconds - t0) / Double(n))
    }
    perCall.sort()
    print("| \(name) | \(String(format: "%.0f", perCall[perCall.count / 2])) | \(String(format: "%.0f–%.0f", perCall.first!, perCall.last!)) |")
}

var sink = 0
print("| parser (one message) | ns, median | range |")
print("|---|---|---|")
measure("request body: RequestInspector.inspect (\(requestBody.count) B)") {
    RequestInspector.inspect(requestBody)?.maxTokens.map(Int.init) ?? 0
}
measure("response body: TokenUsage.absorb (\(responseBody.count) B)") {
    var usage = TokenUsage()
    responseBody.withUnsafeBytes { _ = usage.absorb(jsonObject: $0) }
    return Int(usage.prompt)
}
measure("request head + body: HTTPRequestParser (\(requestHead.count) B)") {
    var parser = HTTPRequestParser()
    let out = try? requestHead.withUnsafeBufferPointer { try parser.parse($0) }
    if case .request(let r)? = out?.output { return r.head.headers.count + r.body.count }
    return 0
}
measure("response head: HTTP1ResponseDecoder (\(responseHead.count - responseBody.count) B head)") {
    var decoder = HTTP1ResponseDecoder()
    var pos = 0
    let step = try? responseHead.withUnsafeBytes { try decoder.next($0, &pos) }
    if case .head(let h)? = step { return h.headers.count }
    return 0
}
if sink == 42 { print(sink) }
