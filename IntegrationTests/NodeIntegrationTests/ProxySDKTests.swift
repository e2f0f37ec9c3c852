import Foundation
import Testing
import TestSupport

/// The official `openai` and `anthropic` Python SDKs through a real `llm-proxy serve` in front of the
/// mock provider: what an app sees after changing only its base URL and key. Every case runs over both
/// clients a node has for plain-HTTP providers (its own, and curl — which every HTTPS provider uses).
@Suite struct ProxySDKTests {
    @Test(arguments: PlainHTTPClients.all) func openAIChatStreamEmbeddingsAndModels(client: String) throws {
        let stack = try ProxyStack(serveArgs: PlainHTTPClients.args(client))
        let chat = try stack.sdk("openai-chat")
        #expect(chat["content"] as? String == "This is a fixed mock reply from the local benchmark upstream. It stands in for a real model answer so that only the proxy overhead is measured.")
        #expect(chat["prompt_tokens"] as? Int == 57)

        let stream = try stack.sdk("openai-stream")
        #expect(stream["content"] as? String == "tok0 tok1 tok2 tok3 tok4 ")
        // The proxy asked upstream for usage; the client, which did not, sees no trace of it.
        #expect(stream["usage_chunks"] as? Int == 0)
        #expect(stream["empty_choice_chunks"] as? Int == 0)

        // A client that asks for usage gets it as usual.
        let withUsage = try stack.sdk("openai-stream-usage")
        #expect((withUsage["usage"] as? [[String: Any]])?.first?["completion_tokens"] as? Int == 5)

        let emb = try stack.sdk("openai-embeddings")
        #expect(emb["dims"] as? Int == 3)
        let models = try stack.sdk("openai-models")
        #expect(models["models"] as? [String] == ["gpt-4o-mini"])

        // The provider got the real key and never the virtual one.
        let seen = try stack.lastUpstreamRequest()
        #expect(seen["authorization"] == "Bearer \(stack.providerKey)")
        #expect(!seen.values.contains { $0.contains(stack.key) })

        // Usage is recorded for every call (written within about a second).
        Thread.sleep(forTimeInterval: 1.5)
        let usage = try stack.usage()
        let requests = usage.reduce(0) { $0 + ($1["requests"] as? Int ?? 0) }
        #expect(requests == 5)
        let chatRow = usage.first { $0["model"] as? String == "gpt-4o-mini" }
        #expect((chatRow?["prompt_tokens"] as? Int ?? 0) >= 57 + 12 + 12)
        // The model list reports no usage, and its bytes are no completion: nothing is estimated for it.
        let listRow = usage.first { $0["model"] as? String == "" }
        #expect(listRow?["requests"] as? Int == 1 && listRow?["completion_tokens"] as? Int == 0, "\(usage)")
    }

    /// The Responses API, plain and streamed: its streams carry their usage in `response.completed`, so the
    /// proxy counts it from there and adds nothing to the request (`stream_options.include_usage` is a chat
    /// and completions option; the mock, like OpenAI, refuses it here).
    @Test(arguments: PlainHTTPClients.all) func openAIResponsesPlainAndStreamed(client: String) throws {
        let stack = try ProxyStack(serveArgs: PlainHTTPClients.args(client))
        let plain = try stack.sdk("openai-responses")
        #expect(plain["text"] as? String == "Hello from responses.")
        #expect(plain["input_tokens"] as? Int == 14 && plain["output_tokens"] as? Int == 6)
        let stream = try stack.sdk("openai-responses-stream")
        #expect(stream["text"] as? String == "Hello from responses.", "\(stream)")
        #expect((stream["usage"] as? [String: Any])?["output_tokens"] as? Int == 6)
        #expect((stream["events"] as? [String])?.last == "response.completed")
        #expect(try stack.lastUpstreamRequest()[":body"]?.contains("stream_options") == false)
        Thread.sleep(forTimeInterval: 1.5)
        let usage = try stack.usage()
        #expect(usage.reduce(0) { $0 + ($1["requests"] as? Int ?? 0) } == 2)
        #expect(usage.reduce(0) { $0 + ($1["prompt_tokens"] as? Int ?? 0) } == 28)
        #expect(usage.reduce(0) { $0 + ($1["completion_tokens"] as? Int ?? 0) } == 12)
    }

    /// A strict OpenAI-compatible provider (Mistral's API answers 422 to parameters it does not define)
    /// refuses the `stream_options` the proxy adds: the proxy sends that request again as the client wrote
    /// it, the client sees only the stream, and the connection's later streams go unchanged at once.
    /// The usage such a provider reports unasked is counted.
    @Test(arguments: PlainHTTPClients.all) func aProviderRefusingStreamOptionsGetsTheStreamAsWritten(client: String) throws {
        let stack = try ProxyStack(endpointPath: "/strict/v1", serveArgs: PlainHTTPClients.args(client))
        for _ in 0..<2 {
            let stream = try stack.sdk("openai-stream")
            #expect(stream["content"] as? String == "tok0 tok1 tok2 tok3 tok4 ", "\(stream)")
            #expect(stream["usage_chunks"] as? Int == 1)  // the provider's own, on its last chunk
        }
        #expect(try stack.mockStats()["refused"] == 1)
        // A refusal for anything else, of a stream the proxy asked for usage, reaches the client as sent.
        let plain = try ProxyStack(serveArgs: PlainHTTPClients.args(client))
        let refused = try plain.sendStreamedChat(headers: ["x-mock-status: 400"]).readResponse()
        #expect(refused.status == 400)
        #expect(String(decoding: refused.body, as: UTF8.self).contains("mock upstream failure"))
        #expect(try plain.lastUpstreamRequest()[":body"]?.contains("include_usage") == true)  // it was asked
        // A client that asks for usage itself is passed through, and refused, as it asked.
        let asked = try stack.sdk("openai-stream-usage")
        #expect(asked["exception"] as? String == "UnprocessableEntityError", "\(asked)")
        Thread.sleep(forTimeInterval: 1.5)
        let usage = try stack.usage()
        #expect(usage.reduce(0) { $0 + ($1["requests"] as? Int ?? 0) } == 3)
        #expect(usage.reduce(0) { $0 + ($1["completion_tokens"] as? Int ?? 0) } >= 10)
    }

    /// `OpenAI-Organization` and `OpenAI-Project` scope the client's own key (the SDK sends them when
    /// OPENAI_ORG_ID / OPENAI_PROJECT_ID are set): the provider gets the connection's key without them.
    @Test func theClientsOrganizationAndProjectStayWithTheClient() throws {
        let stack = try ProxyStack()
        let chat = try stack.sdk("openai-chat", environment: ["OPENAI_ORG_ID": "org-client", "OPENAI_PROJECT_ID": "proj_client"])
        #expect(chat["prompt_tokens"] as? Int == 57, "\(chat)")
        let seen = try stack.lastUpstreamRequest()
        #expect(seen["openai-organization"] == nil && seen["openai-project"] == nil, "\(seen)")
        #expect(seen["authorization"] == "Bearer \(stack.providerKey)")
    }

    @Test(arguments: PlainHTTPClients.all) func anthropicMessagesAndStream(client: String) throws {
        let stack = try ProxyStack(provider: "anthropic", serveArgs: PlainHTTPClients.args(client))
        let msg = try stack.sdk("anthropic-messages")
        #expect(msg["text"] as? String == "Hello from the mock.")
        #expect(msg["input_tokens"] as? Int == 21)
        let stream = try stack.sdk("anthropic-stream")
        #expect(stream["text"] as? String == "Hello there")
        #expect(stream["output_tokens"] as? Int == 9)
        let seen = try stack.lastUpstreamRequest()
        #expect(seen["x-api-key"] == stack.providerKey)
        #expect(seen["authorization"] == nil)
        #expect(seen["anthropic-version"] != nil)
        Thread.sleep(forTimeInterval: 1.5)
        let usage = try stack.usage()
        #expect(usage.reduce(0) { $0 + ($1["requests"] as? Int ?? 0) } == 2)
        #expect(usage.reduce(0) { $0 + ($1["completion_tokens"] as? Int ?? 0) } == 7 + 9)
    }

    @Test(arguments: PlainHTTPClients.all) func unknownKeysGet401InEachAPIsShape(client: String) throws {
        let stack = try ProxyStack(serveArgs: PlainHTTPClients.args(client))
        let o = try stack.sdk("openai-error", key: "sk-llmp-not-a-real-key")
        #expect(o["error"] as? String == "AuthenticationError")
        #expect(o["status"] as? Int == 401)
        #expect(((o["body"] as? [String: Any])?["code"] as? String) == "invalid_api_key")
        let a = try stack.sdk("anthropic-error", key: "sk-llmp-not-a-real-key")
        #expect(a["error"] as? String == "AuthenticationError")
        #expect(((a["body"] as? [String: Any])?["error"] as? [String: Any])?["type"] as? String == "authentication_error")
    }

    @Test(arguments: PlainHTTPClients.all) func modelOutsideTheAllowedListIs403(client: String) throws {
        let stack = try ProxyStack(keyArgs: ["--models", "gpt-4o"], serveArgs: PlainHTTPClients.args(client))
        let r = try stack.sdk("openai-error", environment: ["MODEL": "gpt-4o-mini"])
        #expect(r["error"] as? String == "PermissionDeniedError")
        #expect(r["status"] as? Int == 403)
    }

    @Test(arguments: PlainHTTPClients.all) func upstreamErrorsPassThroughAndTimeoutsAre504(client: String) throws {
        let stack = try ProxyStack(serveArgs: ["--upstream-first-byte-timeout", "500ms"] + PlainHTTPClients.args(client))
        let e500 = try stack.sdk("openai-error", environment: ["HEADERS": #"{"x-mock-status": "500"}"#])
        #expect(e500["status"] as? Int == 500)
        #expect(((e500["body"] as? [String: Any])?["code"] as? String) == "mock")  // the provider's body, untouched
        #expect((e500["request_id"] as? String)?.hasPrefix("req_") == true)
        let e429 = try stack.sdk("openai-error", environment: ["HEADERS": #"{"x-mock-status": "429"}"#])
        #expect(e429["error"] as? String == "RateLimitError")
        let slow = try stack.sdk("openai-error", environment: ["HEADERS": #"{"x-mock-delay-ms": "3000"}"#])
        #expect(slow["status"] as? Int == 504)
        #expect(((slow["body"] as? [String: Any])?["code"] as? String) == "upstream_timeout")
    }

    @Test(arguments: PlainHTTPClients.all) func unreachableUpstreamIs502(client: String) throws {
        let stack = try ProxyStack(serveArgs: PlainHTTPClients.args(client))
        stack.mock.stop()
        let r = try stack.sdk("openai-error")
        #expect(r["status"] as? Int == 502)
        #expect(((r["body"] as? [String: Any])?["code"] as? String) == "upstream_unreachable")
    }

    @Test(arguments: PlainHTTPClients.all) func firstStreamedChunkArrivesBeforeTheUpstreamFinishes(client: String) throws {
        let stack = try ProxyStack(serveArgs: PlainHTTPClients.args(client))
        let r = try stack.sdk("openai-stream", environment: ["CHUNK_DELAY": "250"])
        let first = r["first_chunk_s"] as? Double ?? 99
        let total = r["total_s"] as? Double ?? 0
        #expect(total >= 1.2)
        // The mock sends the first chunk at once and four more 250 ms apart: a relay that held anything back
        // would deliver the first chunk less than a second before the end. (Measured from before the SDK
        // builds its client, so the absolute time moves with the machine's load.)
        #expect(total - first >= 0.95, "first chunk after \(first)s of \(total)s")
    }

    @Test(arguments: PlainHTTPClients.all) func clientDisconnectMidStreamCancelsTheUpstream(client: String) throws {
        let stack = try ProxyStack(serveArgs: PlainHTTPClients.args(client))
        let r = try stack.sdk("disconnect-mid-stream")
        #expect(r["received"] as? Int == 2)
        Thread.sleep(forTimeInterval: 1.0)
        let stats = try stack.mockStats()
        #expect(stats["started"] == 1)
        #expect(stats["finished"] == 0, "the upstream stream ran to its end: \(stats)")
        // The aborted request is still accounted.
        Thread.sleep(forTimeInterval: 1.0)
        #expect(try stack.usage().reduce(0) { $0 + ($1["requests"] as? Int ?? 0) } == 1)
    }

    @Test(arguments: PlainHTTPClients.all) func droppedUpstreamStreamTruncatesTheClientStream(client: String) throws {
        let stack = try ProxyStack(serveArgs: PlainHTTPClients.args(client))
        let raw = String(decoding: try stack.sendStreamedChat(headers: ["x-mock-drop-after: 2"]).readAll(), as: UTF8.self)
        #expect(raw.hasPrefix("HTTP/1.1 200"))
        #expect(raw.contains("tok1"))
        #expect(!raw.contains("[DONE]"))
        #expect(!raw.hasSuffix("0\r\n\r\n"))  // no clean end of the chunked body: the client knows it was cut
    }

    /// Media types ignore case: a provider's `Text/Event-Stream` is read as a stream, so the usage the proxy
    /// asked for is counted and kept from the client all the same.
    @Test(arguments: PlainHTTPClients.all) func aStreamIsAStreamWhateverTheCaseOfItsContentType(client: String) throws {
        let stack = try ProxyStack(serveArgs: PlainHTTPClients.args(client))
        let c = try stack.sendStreamedChat(headers: ["x-mock-content-type: Text/Event-Stream; charset=utf-8", "Connection: close"])
        let raw = String(decoding: try c.readAll(), as: UTF8.self)
        #expect(raw.hasPrefix("HTTP/1.1 200"))
        #expect(raw.contains("tok4") && raw.contains("[DONE]"))
        #expect(!raw.contains("usage"), "the usage the proxy asked for reached the client: \(raw)")
        Thread.sleep(forTimeInterval: 1.5)
        // Counted from the provider's usage (five chunks), not estimated from the bytes.
        #expect(try stack.usage().first?["completion_tokens"] as? Int == 5)
    }
}

/// Per-key limits in local mode, as an app with the official SDK meets them.
@Suite struct LocalLimitTests {
    @Test func requestsPerSecondIsEnforcedWithOpenAIHeaders() throws {
        let stack = try ProxyStack(keyArgs: ["--tps", "1", "--burst", "2"])
        var statuses: [Int] = []
        var last: RawHTTPClient.Response?
        var admitted: [RawHTTPClient.Response] = []
        let body = #"{"model":"gpt-4o-mini","messages":[]}"#
        for _ in 0..<4 {
            let c = try RawHTTPClient(port: stack.port)
            try c.send("POST /v1/chat/completions HTTP/1.1\r\nHost: p\r\nAuthorization: Bearer \(stack.key)\r\nContent-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)")
            let r = try c.readResponse()
            statuses.append(r.status)
            if r.status == 200 { admitted.append(r) }
            last = r
        }
        #expect(statuses == [200, 200, 429, 429])
        #expect(admitted.map { $0.headers.filter { $0.0.lowercased() == "x-ratelimit-limit-requests" }.map(\.1) } == [["2"], ["2"]],
                "the key's limits, and not the provider's beside them")
        #expect(admitted.allSatisfy { $0.header("x-ratelimit-limit-tokens") == nil })
        // A key without limits passes the provider's own on.
        let open = try ProxyStack()
        let c = try RawHTTPClient(port: open.port)
        try c.send("POST /v1/chat/completions HTTP/1.1\r\nHost: p\r\nAuthorization: Bearer \(open.key)\r\nContent-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)")
        #expect(try c.readResponse().header("x-ratelimit-limit-requests") == "10000")
        let denied = try #require(last)
        #expect(denied.header("retry-after") == "1")
        #expect(Int(denied.header("retry-after-ms") ?? "") ?? 0 > 0)
        #expect(denied.header("x-ratelimit-limit-requests") == "2")
        #expect(denied.header("x-ratelimit-remaining-requests") == "0")
        #expect(denied.bodyText.contains("rate_limit_exceeded"))
        #expect(denied.bodyText.contains("\"type\":\"requests\""))
    }

    @Test func openAISDKSeesRateLimitErrorAndItsRetryHeaders() throws {
        let stack = try ProxyStack(keyArgs: ["--tps", "0.2", "--burst", "1"])
        let first = try stack.sdk("openai-error")
        #expect(first["error"] is NSNull || first["error"] == nil)
        let second = try stack.sdk("openai-error")
        #expect(second["error"] as? String == "RateLimitError")
        #expect(second["status"] as? Int == 429)
    }

    @Test func openAISDKWithRetriesWaitsTheTimeWeSaid() throws {
        // One request per 2 s: the retry must wait about 2 s (retry-after-ms), then succeed.
        let stack = try ProxyStack(keyArgs: ["--tps", "0.5", "--burst", "1"])
        let r = try stack.sdk("openai-retry-wait")
        #expect(r["status"] as? Int == 200, "\(r)")
        let waited = r["waited_s"] as? Double ?? 0
        #expect(waited >= 1.8 && waited < 4, "waited \(waited) s")
    }

    /// An audio upload (multipart, megabytes) is no prompt: it neither meets the token limit's size check
    /// nor is its answer's or upload's size counted as tokens when the provider reports none.
    /// The upload's model is read from its form (so a key limited to whisper-1 may transcribe, and the
    /// record names the model).
    @Test func audioUploadsAreNotTakenForPrompts() throws {
        let stack = try ProxyStack(keyArgs: ["--tokens", "1000", "--models", "whisper-1"])
        let audio = String(repeating: "A", count: 40_000)  // ~10,000 "tokens" by bytes
        let body = "--b\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\nwhisper-1\r\n--b\r\nContent-Disposition: form-data; "
            + "name=\"file\"; filename=\"a.wav\"\r\nContent-Type: audio/wav\r\n\r\n\(audio)\r\n--b--\r\n"
        let c = try RawHTTPClient(port: stack.port)
        try c.send("POST /v1/audio/transcriptions HTTP/1.1\r\nHost: p\r\nAuthorization: Bearer \(stack.key)\r\n"
                   + "Content-Type: multipart/form-data; boundary=b\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)")
        let r = try c.readResponse()
        #expect(r.status == 200, "\(r.bodyText)")
        #expect(r.bodyText.contains("hello from audio"))
        Thread.sleep(forTimeInterval: 1.5)
        let row = try stack.usage().first
        #expect(row?["requests"] as? Int == 1)
        #expect(row?["prompt_tokens"] as? Int == 0 && row?["completion_tokens"] as? Int == 0, "\(String(describing: row))")
        #expect(row?["model"] as? String == "whisper-1")
    }

    @Test func bigPromptsAreStoppedByTheTokenLimit() throws {
        let stack = try ProxyStack(keyArgs: ["--tokens", "1000"])
        let big = String(repeating: "x", count: 8000)  // ~2000 tokens: more than the whole bucket
        let body = #"{"model":"gpt-4o-mini","messages":[{"role":"user","content":"\#(big)"}]}"#
        let c = try RawHTTPClient(port: stack.port)
        try c.send("POST /v1/chat/completions HTTP/1.1\r\nHost: p\r\nAuthorization: Bearer \(stack.key)\r\nContent-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)")
        let r = try c.readResponse()
        #expect(r.status == 400)
        #expect(r.bodyText.contains("request_too_large"))
        // A prompt that fits (≈ 615 tokens estimated) passes; its estimate was taken before the answer,
        // and only the reported usage (88 tokens) stays charged after settlement.
        let mid = #"{"model":"gpt-4o-mini","messages":[{"role":"user","content":"\#(String(repeating: "y", count: 2400))"}]}"#
        try c.send("POST /v1/chat/completions HTTP/1.1\r\nHost: p\r\nAuthorization: Bearer \(stack.key)\r\nContent-Type: application/json\r\nContent-Length: \(mid.utf8.count)\r\n\r\n\(mid)")
        let ok = try c.readResponse()
        #expect(ok.status == 200)
        #expect(ok.header("x-ratelimit-limit-tokens") == "1000")
        #expect((Int(ok.header("x-ratelimit-remaining-tokens") ?? "") ?? 1000) < 400)
        try c.send("POST /v1/chat/completions HTTP/1.1\r\nHost: p\r\nAuthorization: Bearer \(stack.key)\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}")
        let after = try c.readResponse()
        #expect((Int(after.header("x-ratelimit-remaining-tokens") ?? "") ?? 0) > 850)
    }
}

/// Azure OpenAI: deployments by model, `api-version`, the `api-key` header.
@Suite struct AzureProxyTests {
    @Test func chatGoesToTheDeploymentWithApiVersionAndApiKey() throws {
        let stack = try ProxyStack(provider: "azure", endpointPath: "/openai")
        let chat = try stack.sdk("openai-chat")
        #expect(chat["prompt_tokens"] as? Int == 57, "\(chat)")
        let seen = try stack.lastUpstreamRequest()
        #expect(seen[":path"] == "/openai/deployments/gpt-4o-mini/chat/completions?api-version=2024-10-21")
        #expect(seen["api-key"] == stack.providerKey)
        #expect(seen["authorization"] == nil)
        let stream = try stack.sdk("openai-stream")
        #expect(stream["content"] as? String == "tok0 tok1 tok2 tok3 tok4 ")
    }

    /// An audio upload names its deployment as the form's `model`: it goes to that deployment.
    @Test func audioUploadsGoToTheDeploymentTheirFormNames() throws {
        let stack = try ProxyStack(provider: "azure", endpointPath: "/openai")
        let body = "--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.wav\"\r\nContent-Type: audio/wav\r\n\r\nRIFF....\r\n"
            + "--b\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\nmy-whisper\r\n--b--\r\n"
        let c = try RawHTTPClient(port: stack.port)
        try c.send("POST /v1/audio/transcriptions HTTP/1.1\r\nHost: p\r\nAuthorization: Bearer \(stack.key)\r\n"
                   + "Content-Type: multipart/form-data; boundary=b\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)")
        #expect(try c.readResponse().status == 200)
        #expect(try stack.lastUpstreamRequest()[":path"] == "/openai/deployments/my-whisper/audio/transcriptions?api-version=2024-10-21")
    }

    /// Azure refuses `stream_options` before api-version 2024-09-01-preview (the mock does too): on such a
    /// connection the proxy sends the stream as asked and estimates its usage; on a current one it asks for
    /// the usage and counts it.
    @Test func azureStreamsAreAskedForUsageOnlyWhereTheApiVersionKnowsHow() throws {
        let old = try ProxyStack(provider: "azure", endpointPath: "/openai", connectionArgs: ["--api-version", "2024-06-01"])
        let stream = try old.sdk("openai-stream")
        #expect(stream["content"] as? String == "tok0 tok1 tok2 tok3 tok4 ", "\(stream)")
        #expect(try old.lastUpstreamRequest()[":body"]?.contains("stream_options") == false)
        let current = try ProxyStack(provider: "azure", endpointPath: "/openai")
        let counted = try current.sdk("openai-stream")
        #expect(counted["usage_chunks"] as? Int == 0)
        #expect(try current.lastUpstreamRequest()[":body"]?.contains("include_usage") == true)
        Thread.sleep(forTimeInterval: 1.5)
        #expect(try current.usage().first?["completion_tokens"] as? Int == 5)
        #expect(try old.usage().first?["requests"] as? Int == 1)
    }

    /// A request Azure cannot route (no model, so no deployment) is answered 400 before it is admitted:
    /// it takes no request and no concurrency slot with it (it once kept its slot for good, so a key with
    /// one slot refused everything after its first such request).
    @Test func aRequestWithoutAModelIs400AndKeepsNoSlot() throws {
        let stack = try ProxyStack(provider: "azure", endpointPath: "/openai", keyArgs: ["--max-concurrent", "1"])
        let c = try RawHTTPClient(port: stack.port)
        for _ in 0..<3 {
            try c.send("POST /v1/chat/completions HTTP/1.1\r\nHost: p\r\napi-key: \(stack.key)\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}")
            let r = try c.readResponse()
            #expect(r.status == 400)
            #expect(r.bodyText.contains("model_required"))
        }
        let body = #"{"model":"gpt-4o-mini","messages":[]}"#
        try c.send("POST /v1/chat/completions HTTP/1.1\r\nHost: p\r\napi-key: \(stack.key)\r\nContent-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)")
        #expect(try c.readResponse().status == 200)
    }
}

/// Usage accepted before SIGTERM is in the store after the node exits.
@Suite struct UsageFlushTests {
    @Test func sigtermFlushesQueuedUsage() throws {
        let stack = try ProxyStack()
        let c = try RawHTTPClient(port: stack.port)
        let body = #"{"model":"gpt-4o-mini","messages":[]}"#
        for _ in 0..<20 {
            try c.send("POST /v1/chat/completions HTTP/1.1\r\nHost: p\r\nAuthorization: Bearer \(stack.key)\r\nContent-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)")
            #expect(try c.readResponse().status == 200)
        }
        // Stop at once: the 1 s flush timer has probably not run yet for the last requests.
        #expect(stack.node.stop() == 0)
        #expect(try stack.usage().reduce(0) { $0 + ($1["requests"] as? Int ?? 0) } == 20)
    }
}
