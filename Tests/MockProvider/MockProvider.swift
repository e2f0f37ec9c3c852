import Node
import Storage

/// Provider-shaped answers for tests and benchmarks: OpenAI chat (plain and streamed), embeddings,
/// models, responses (plain and streamed), Azure deployments, Anthropic messages (plain and streamed), and fault injection through
/// request headers: `x-mock-status` (error status), `x-mock-delay-ms` (before the head),
/// `x-mock-chunk-delay-ms` (between stream chunks), `x-mock-drop-after` (close after N chunks).
/// `GET /mock/last-request` shows the last proxied request's headers (to check what the proxy sent).
enum MockProvider {
    /// A fixed 570-byte OpenAI chat.completion, the body every benchmark serves.
    static let chatCompletion: [UInt8] = Array(#"{"id":"chatcmpl-mock0001","object":"chat.completion","created":1721000000,"model":"gpt-4o-mini-2024-07-18","system_fingerprint":"fp_mock01","choices":[{"index":0,"message":{"role":"assistant","content":"This is a fixed mock reply from the local benchmark upstream. It stands in for a real model answer so that only the proxy overhead is measured.","refusal":null},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":57,"completion_tokens":31,"total_tokens":88,"prompt_tokens_details":{"cached_tokens":0},"completion_tokens_details":{"reasoning_tokens":0}}}"#.utf8)

    static let lastRequest = LockedBox<[(String, String)]>([])
    static let transfersStarted = LockedBox(0)
    static let transfersFinished = LockedBox(0)
    static let refusals = LockedBox(0)

    /// Only the fixed chat completion, with no bookkeeping: the HTTP server benchmark's route.
    static func benchRouter() -> Router {
        var r = Router()
        r.add(.POST, "/v1/chat/completions") { _, response in
            response.respond(status: 200, headers: ["content-type": "application/json"], body: chatCompletion)
        }
        return r
    }

    static func router() -> Router {
        var r = Router()
        r.add(.POST, "/v1/chat/completions") { req, res in await chat(req, res) }
        r.addPrefix(.POST, "/openai/deployments/") { req, res in await chat(req, res) }
        r.add(.POST, "/v1/embeddings") { req, res in
            remember(req)
            res.respond(status: 200, headers: ["content-type": "application/json"], body: Array(#"{"object":"list","data":[{"object":"embedding","index":0,"embedding":[0.1,0.2,0.3]}],"model":"text-embedding-3-small","usage":{"prompt_tokens":5,"total_tokens":5}}"#.utf8))
        }
        r.add(.GET, "/v1/models") { req, res in
            remember(req)
            res.respond(status: 200, headers: ["content-type": "application/json"],
                        body: Array(#"{"object":"list","data":[{"id":"gpt-4o-mini","object":"model","created":1721000000,"owned_by":"mock"}]}"#.utf8))
        }
        r.add(.POST, "/v1/messages") { req, res in await messages(req, res) }
        r.add(.POST, "/v1/responses") { req, res in await responses(req, res) }
        r.add(.POST, "/v1/audio/transcriptions") { req, res in  // whisper-1's answer: text, no usage
            remember(req)
            res.respond(status: 200, headers: ["content-type": "application/json"], body: Array(#"{"text":"hello from audio"}"#.utf8))
        }
        // An OpenAI-compatible API that refuses what it does not define, as Mistral's does (422, pydantic's
        // `extra_forbidden`), and ends its streams with the usage unasked.
        r.addPrefix(.POST, "/strict/") { req, res in
            if req.body.firstRange(of: "stream_options".utf8) != nil {
                remember(req)
                refusals.withLock { $0 += 1 }
                res.respond(status: 422, headers: ["content-type": "application/json"],
                            body: Array(#"{"object":"error","message":{"detail":[{"type":"extra_forbidden","loc":["body","stream_options","include_usage"],"msg":"Extra inputs are not permitted","input":true}]},"type":"invalid_request_error","param":null,"code":null}"#.utf8))
                return
            }
            await chat(req, res, usageInLastChunk: true)
        }
        r.add(.GET, "/mock/last-request") { _, res in
            let fields = lastRequest.withLock { $0 }
            let json = "{" + fields.map { "\"\(jsonEscape($0.0))\":\"\(jsonEscape($0.1))\"" }.joined(separator: ",") + "}"
            res.respond(status: 200, headers: ["content-type": "application/json"], body: Array(json.utf8))
        }
        r.add(.GET, "/mock/stats") { _, res in
            let s = transfersStarted.withLock { $0 }, f = transfersFinished.withLock { $0 }, refused = refusals.withLock { $0 }
            res.respond(status: 200, headers: ["content-type": "application/json"],
                        body: Array("{\"started\":\(s),\"finished\":\(f),\"refused\":\(refused)}".utf8))
        }
        r.add(.GET, "/healthz") { _, res in
            res.respond(status: 200, headers: ["content-type": "application/json"], body: Array(#"{"status":"ok"}"#.utf8))
        }
        return r
    }

    static func remember(_ req: HTTPRequest) {
        var fields = req.headers.fields.map { ($0.name, $0.value) }
        fields.append((":path", req.target))
        fields.append((":body", String(decoding: req.body, as: UTF8.self)))
        lastRequest.withLock { $0 = fields }
    }

    static func faults(_ req: HTTPRequest, _ res: HTTPResponseWriter) async -> Bool {
        if let d = req.headers["x-mock-delay-ms"].flatMap(Int.init) { try? await Task.sleep(for: .milliseconds(d)) }
        if let s = req.headers["x-mock-status"].flatMap(Int.init) {
            res.respond(status: s, headers: ["content-type": "application/json", "x-mock-error": "yes"],
                        body: Array(#"{"error":{"message":"mock upstream failure","type":"server_error","param":null,"code":"mock"}}"#.utf8))
            return true
        }
        return false
    }

    /// `usageInLastChunk`: the stream's last chunk carries the usage whether or not it was asked for (as
    /// Mistral's API does).
    static func chat(_ req: HTTPRequest, _ res: HTTPResponseWriter, usageInLastChunk: Bool = false) async {
        remember(req)
        if await faults(req, res) { return }
        let body = String(decoding: req.body, as: UTF8.self)
        guard body.contains("\"stream\":true") || body.contains("\"stream\": true") else {
            // As OpenAI: the limits of the key the request came with (here the connection's).
            res.respond(status: 200, headers: ["content-type": "application/json", "x-ratelimit-limit-requests": "10000",
                                               "x-ratelimit-remaining-requests": "9999", "x-ratelimit-limit-tokens": "30000000"],
                        body: chatCompletion)
            return
        }
        // As Azure before api-version 2024-09-01-preview: `stream_options` is refused.
        if req.path.hasPrefix("/openai/deployments/"), body.contains("stream_options"),
           let version = req.query?.split(separator: "&").first(where: { $0.hasPrefix("api-version=") })?.dropFirst(12), version < "2024-09-01" {
            res.respond(status: 400, headers: ["content-type": "application/json"],
                        body: Array(#"{"error":{"code":null,"message":"Unrecognized request argument supplied: stream_options","param":null,"type":"invalid_request_error"}}"#.utf8))
            return
        }
        let includeUsage = body.contains("\"include_usage\":true") || body.contains("\"include_usage\": true")
        let delay = req.headers["x-mock-chunk-delay-ms"].flatMap(Int.init) ?? 0
        let dropAfter = req.headers["x-mock-drop-after"].flatMap(Int.init)
        let chunks = req.headers["x-mock-chunks"].flatMap(Int.init) ?? 5
        transfersStarted.withLock { $0 += 1 }
        let contentType = req.headers["x-mock-content-type"] ?? "text/event-stream"
        res.writeHead(status: 200, headers: ["content-type": contentType, "cache-control": "no-cache"])
        for i in 0..<chunks {
            if let d = dropAfter, i == d { res.abort(); return }
            let piece = #"{"id":"chatcmpl-s","object":"chat.completion.chunk","created":1721000000,"model":"gpt-4o-mini","choices":[{"index":0,"delta":{"content":"tok\#(i) "},"finish_reason":null}]"# + (includeUsage ? #","usage":null}"# : "}")
            do { try await res.write(Array("data: \(piece)\n\n".utf8)) } catch { return }
            if delay > 0 { try? await Task.sleep(for: .milliseconds(delay)) }
        }
        let lastUsage = usageInLastChunk ? #","usage":{"prompt_tokens":12,"completion_tokens":\#(chunks),"total_tokens":\#(12 + chunks)}}"# : (includeUsage ? #","usage":null}"# : "}")
        let last = #"{"id":"chatcmpl-s","object":"chat.completion.chunk","created":1721000000,"model":"gpt-4o-mini","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]"# + lastUsage
        try? await res.write(Array("data: \(last)\n\n".utf8))
        if includeUsage {
            try? await res.write(Array("data: {\"id\":\"chatcmpl-s\",\"object\":\"chat.completion.chunk\",\"created\":1721000000,\"model\":\"gpt-4o-mini\",\"choices\":[],\"usage\":{\"prompt_tokens\":12,\"completion_tokens\":\(chunks),\"total_tokens\":\(12 + chunks)}}\n\n".utf8))
        }
        try? await res.write(Array("data: [DONE]\n\n".utf8))
        res.end()
        transfersFinished.withLock { $0 += 1 }
    }

    /// The Responses API: one `response` object, or a stream of typed events ending in `response.completed`,
    /// which carries the usage (the API has no `stream_options.include_usage`: asking is a 400, as at OpenAI).
    static func responses(_ req: HTTPRequest, _ res: HTTPResponseWriter) async {
        remember(req)
        if await faults(req, res) { return }
        let body = String(decoding: req.body, as: UTF8.self)
        if body.contains("include_usage") {
            res.respond(status: 400, headers: ["content-type": "application/json"],
                        body: Array(#"{"error":{"message":"Unknown parameter: 'stream_options.include_usage'.","type":"invalid_request_error","param":"stream_options.include_usage","code":"unknown_parameter"}}"#.utf8))
            return
        }
        func response(_ status: String, output: String, usage: String) -> String {
            #"{"id":"resp_mock","object":"response","created_at":1721000000,"status":"\#(status)","model":"gpt-4o-mini","output":\#(output),"usage":\#(usage)}"#
        }
        let message = #"[{"type":"message","id":"msg_mock","status":"completed","role":"assistant","content":[{"type":"output_text","text":"Hello from responses.","annotations":[]}]}]"#
        let usage = #"{"input_tokens":14,"input_tokens_details":{"cached_tokens":0},"output_tokens":6,"output_tokens_details":{"reasoning_tokens":0},"total_tokens":20}"#
        guard body.contains("\"stream\":true") || body.contains("\"stream\": true") else {
            res.respond(status: 200, headers: ["content-type": "application/json"], body: Array(response("completed", output: message, usage: usage).utf8))
            return
        }
        res.writeHead(status: 200, headers: ["content-type": "text/event-stream"])
        var events = [("response.created", #"{"type":"response.created","sequence_number":0,"response":\#(response("in_progress", output: "[]", usage: "null"))}"#)]
        for (i, piece) in ["Hello ", "from ", "responses."].enumerated() {
            events.append(("response.output_text.delta",
                           #"{"type":"response.output_text.delta","sequence_number":\#(i + 1),"item_id":"msg_mock","output_index":0,"content_index":0,"delta":"\#(piece)"}"#))
        }
        events.append(("response.completed", #"{"type":"response.completed","sequence_number":4,"response":\#(response("completed", output: message, usage: usage))}"#))
        for (name, data) in events {
            do { try await res.write(Array("event: \(name)\ndata: \(data)\n\n".utf8)) } catch { return }
        }
        res.end()
    }

    static func messages(_ req: HTTPRequest, _ res: HTTPResponseWriter) async {
        remember(req)
        if await faults(req, res) { return }
        let body = String(decoding: req.body, as: UTF8.self)
        guard body.contains("\"stream\":true") || body.contains("\"stream\": true") else {
            res.respond(status: 200, headers: ["content-type": "application/json"], body: Array(#"{"id":"msg_mock","type":"message","role":"assistant","model":"claude-3-5-haiku-latest","content":[{"type":"text","text":"Hello from the mock."}],"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":21,"output_tokens":7}}"#.utf8))
            return
        }
        res.writeHead(status: 200, headers: ["content-type": "text/event-stream"])
        let events = [
            ("message_start", #"{"type":"message_start","message":{"id":"msg_mock","type":"message","role":"assistant","model":"claude-3-5-haiku-latest","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":21,"output_tokens":1}}}"#),
            ("content_block_start", #"{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#),
            ("content_block_delta", #"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hello"}}"#),
            ("content_block_delta", #"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":" there"}}"#),
            ("content_block_stop", #"{"type":"content_block_stop","index":0}"#),
            ("message_delta", #"{"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":9}}"#),
            ("message_stop", #"{"type":"message_stop"}"#),
        ]
        for (name, data) in events {
            do { try await res.write(Array("event: \(name)\ndata: \(data)\n\n".utf8)) } catch { return }
        }
        res.end()
    }
}
