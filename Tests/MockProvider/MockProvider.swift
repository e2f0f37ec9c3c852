import Node

/// Provider-shaped answers: a fixed chat completion (the benchmark body), models, and health.
enum MockProvider {
    /// A fixed 570-byte OpenAI chat.completion, the body every benchmark serves.
    static let chatCompletion: [UInt8] = Array(#"{"id":"chatcmpl-mock0001","object":"chat.completion","created":1721000000,"model":"gpt-4o-mini-2024-07-18","system_fingerprint":"fp_mock01","choices":[{"index":0,"message":{"role":"assistant","content":"This is a fixed mock reply from the local benchmark upstream. It stands in for a real model answer so that only the proxy overhead is measured.","refusal":null},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":57,"completion_tokens":31,"total_tokens":88,"prompt_tokens_details":{"cached_tokens":0},"completion_tokens_details":{"reasoning_tokens":0}}}"#.utf8)

    static func router() -> Router {
        var r = Router()
        r.add(.POST, "/v1/chat/completions") { _, response in
            response.respond(status: 200, headers: ["content-type": "application/json"], body: chatCompletion)
        }
        r.add(.GET, "/v1/models") { _, response in
            response.respond(status: 200, headers: ["content-type": "application/json"],
                             body: Array(#"{"object":"list","data":[{"id":"gpt-4o-mini","object":"model","created":1721000000,"owned_by":"mock"}]}"#.utf8))
        }
        r.add(.GET, "/healthz") { _, response in
            response.respond(status: 200, headers: ["content-type": "application/json"], body: Array(#"{"status":"ok"}"#.utf8))
        }
        return r
    }
}
