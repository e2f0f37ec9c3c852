import Testing
@testable import Node
import Storage

@Suite struct ProxyParsersTests {
    @Test func eightByteStringSkipFindsTheFirstSpecialByteLikeAByteByByteCheck() {
        var rng = SystemRandomNumberGenerator()
        let interesting: [UInt8] = [0x00, 0x1F, 0x20, 0x21, 0x22, 0x5B, 0x5C, 0x5D, 0x7F, 0x80, 0xA2, 0xDC, 0xFF]
        for _ in 0..<20_000 {
            let bytes = (0..<8).map { _ in Bool.random(using: &rng) ? interesting.randomElement(using: &rng)! : UInt8.random(in: 0...255, using: &rng) }
            let word = bytes.withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) }
            let first = bytes.firstIndex { $0 < 0x20 || $0 == 0x22 || $0 == 0x5C }
            let special = JSONScanner.specialBytes(word)
            #expect((special == 0 ? nil : special.trailingZeroBitCount / 8) == first, "\(bytes)")
        }
    }

    @Test func inspectorReadsOnlyTheFieldsItNeeds() throws {
        let body = Array(#"{"messages":[{"role":"user","content":"say \"model\": 1"}],"model":"gpt-4o","stream":true,"max_tokens":64,"stream_options":{"include_usage":true}}"#.utf8)
        let f = try #require(RequestInspector.inspect(body))
        #expect(f.model == "gpt-4o")
        #expect(f.stream)
        #expect(f.maxTokens == 64)
        #expect(f.hasStreamOptions)
        #expect(f.includeUsage == true)
    }

    @Test func inspectorUnescapesTheModel() throws {
        #expect(RequestInspector.inspect(Array(#"{"model":"a\/b\u00e9"}"#.utf8))?.model == "a/bé")
    }

    @Test func inspectorRefusesWhatIsNotOneJSONObject() {
        for text in ["", "[]", "{", #"{"a":}"#, #"{"a":1,}"#, #"{"a":1} x"#, #"{"a":tru}"#, #"{"a":"\q"}"#, #"{"a":01x}"#, "{\"a\":\"\u{1}\"}"] {
            #expect(RequestInspector.inspect(Array(text.utf8)) == nil, "\(text)")
        }
    }

    /// Without skimming, every nested object and array is checked token by token; skimming matches their
    /// brackets only. (Nested objects were skimmed either way: a `where` on a two-pattern `case` binds to
    /// the second pattern alone.)
    @Test func onlySkimmingLetsMalformedNestedValuesThrough() {
        for text in [#"{"a":{"b":tru}}"#, #"{"a":[{"b":1,}]}"#, #"{"a":{"b" 1}}"#, #"{"a":[1 2]}"#, #"{"a":{"b":01x}}"#, #"{"a":{1:2}}"#] {
            let strict = Array(text.utf8).withUnsafeBytes { JSONScanner.members(of: $0) { _, _ in } }
            let skimmed = Array(text.utf8).withUnsafeBytes { JSONScanner.members(of: $0, skimContainers: true) { _, _ in } }
            #expect(!strict && skimmed, "\(text)")
        }
        let good = #"{"a":{"b":[true,null,{"c":-1.5e3}],"d":"\"}"},"e":[]}"#
        #expect(Array(good.utf8).withUnsafeBytes { JSONScanner.members(of: $0) { _, _ in } })
    }

    @Test func deepNestingIsRefusedNotACrash() {
        let deep = "{\"a\":" + String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000) + "}"
        #expect(RequestInspector.inspect(Array(deep.utf8)) == nil)
    }

    @Test func onlyChatAndCompletionStreamsAreAskedForUsage() {
        let openai = ConnectionRecord(id: "c1", name: "o", provider: .openai, endpoint: "https://api.openai.com/v1", encryptedAPIKey: [], createdAt: 0, updatedAt: 0)
        #expect(ProviderRouting.streamUsageIsOptIn(path: "/v1/chat/completions", connection: openai, query: nil))
        #expect(ProviderRouting.streamUsageIsOptIn(path: "/v1/completions", connection: openai, query: nil))
        for path in ["/v1/responses", "/v1/messages", "/v1/embeddings", "/v1/chat/completions/x", "/v1/chat"] {
            #expect(!ProviderRouting.streamUsageIsOptIn(path: Substring(path), connection: openai, query: nil), "\(path)")
        }
        var anthropic = openai
        anthropic.provider = .anthropic
        #expect(!ProviderRouting.streamUsageIsOptIn(path: "/v1/chat/completions", connection: anthropic, query: nil))
    }

    @Test func upstreamPathsPerProvider() throws {
        let openai = ConnectionRecord(id: "c1", name: "o", provider: .openai, endpoint: "https://api.openai.com/v1", encryptedAPIKey: [], createdAt: 0, updatedAt: 0)
        #expect(try ProviderRouting.upstreamSuffix(openai, rest: "/chat/completions", query: nil, model: "m") == "/chat/completions")
        #expect(try ProviderRouting.upstreamSuffix(openai, rest: "/models", query: "limit=2", model: nil) == "/models?limit=2")
        let azure = ConnectionRecord(id: "c2", name: "a", provider: .azure, endpoint: "https://r.openai.azure.com/openai", encryptedAPIKey: [],
                                     options: ["api-version": "2024-10-21"], createdAt: 0, updatedAt: 0)
        #expect(try ProviderRouting.upstreamSuffix(azure, rest: "/chat/completions", query: nil, model: "gpt-4o")
                == "/deployments/gpt-4o/chat/completions?api-version=2024-10-21")
        #expect(try ProviderRouting.upstreamSuffix(azure, rest: "/embeddings", query: "x=1", model: "emb 3/small")
                == "/deployments/emb%203%2Fsmall/embeddings?x=1&api-version=2024-10-21")
        // The client's own api-version wins.
        #expect(try ProviderRouting.upstreamSuffix(azure, rest: "/chat/completions", query: "api-version=2025-01-01-preview", model: "m")
                == "/deployments/m/chat/completions?api-version=2025-01-01-preview")
        // Resource-level APIs: the Responses API takes the deployment as `model` in the body, not in the path.
        #expect(try ProviderRouting.upstreamSuffix(azure, rest: "/responses", query: "api-version=2025-04-01-preview", model: "m")
                == "/responses?api-version=2025-04-01-preview")
        #expect(try ProviderRouting.upstreamSuffix(azure, rest: "/models", query: nil, model: nil) == "/models?api-version=2024-10-21")
        #expect(try ProviderRouting.upstreamSuffix(azure, rest: "/files", query: nil, model: nil) == "/files?api-version=2024-10-21")
        #expect(try ProviderRouting.upstreamSuffix(azure, rest: "/deployments/d/chat/completions", query: nil, model: "other")
                == "/deployments/d/chat/completions?api-version=2024-10-21")
        #expect(throws: ProxyError.self) { try ProviderRouting.upstreamSuffix(azure, rest: "/chat/completions", query: nil, model: nil) }
    }

    /// Azure refuses `stream_options` before api-version 2024-09-01-preview; the request's own api-version
    /// wins over the connection's.
    @Test func azureIsAskedForStreamUsageFromTheApiVersionThatKnowsIt() {
        var azure = ConnectionRecord(id: "c1", name: "a", provider: .azure, endpoint: "https://r.openai.azure.com/openai", encryptedAPIKey: [], createdAt: 0, updatedAt: 0)
        for (version, asked) in [("2024-10-21", true), ("2024-09-01-preview", true), ("2025-04-01-preview", true), ("preview", true), ("latest", true),
                                 ("2024-08-01-preview", false), ("2024-06-01", false), ("2023-05-15", false), ("v1", false), ("2024-1-21", false)] {
            azure.options = ["api-version": version]
            #expect(ProviderRouting.streamUsageIsOptIn(path: "/v1/chat/completions", connection: azure, query: nil) == asked, "\(version)")
            azure.options = ["api-version": "2024-10-21"]
            #expect(ProviderRouting.streamUsageIsOptIn(path: "/v1/chat/completions", connection: azure, query: Substring("x=1&api-version=\(version)")) == asked, "\(version)")
        }
        azure.options = [:]
        #expect(ProviderRouting.streamUsageIsOptIn(path: "/v1/chat/completions", connection: azure, query: nil))
    }

    /// Only JSON answers are kept and read for usage: speech audio or an image is relayed without a copy.
    @Test func onlyJSONBodiesAreReadForUsage() {
        for (type, read) in [("application/json", true), ("application/json; charset=utf-8", true), ("Application/JSON", true),
                             ("application/problem+json", true), ("audio/mpeg", false), ("image/png", false), ("text/plain", false),
                             ("application/octet-stream", false), ("", false)] {
            #expect(Array(type.utf8).withUnsafeBufferPointer { Relay.mayCarryUsage(contentType: $0) } == read, "\(type)")
        }
    }

    @Test func includeUsageIsAddedAsTheFirstMember() throws {
        let added = try #require(RequestInspector.addingIncludeUsage(Array(#"  {"model":"m","stream":true}"#.utf8)))
        #expect(String(decoding: added, as: UTF8.self) == #"  {"stream_options":{"include_usage":true},"model":"m","stream":true}"#)
        let empty = try #require(RequestInspector.addingIncludeUsage(Array("{ }".utf8)))
        #expect(RequestInspector.inspect(empty)?.includeUsage == true)
    }

    @Test func usageFromOpenAIAndAnthropicShapes() {
        var u = TokenUsage()
        let usageOnly = Array(#"{"id":"x","choices":[],"usage":{"prompt_tokens":12,"completion_tokens":5,"total_tokens":17}}"#.utf8).withUnsafeBytes { u.absorb(jsonObject: $0) }
        #expect(usageOnly)
        #expect(u.prompt == 12 && u.completion == 5 && u.reported)
        var a = TokenUsage()
        _ = Array(#"{"type":"message_start","message":{"usage":{"input_tokens":21,"output_tokens":1}}}"#.utf8).withUnsafeBytes { a.absorb(jsonObject: $0) }
        _ = Array(#"{"type":"message_delta","usage":{"output_tokens":9}}"#.utf8).withUnsafeBytes { a.absorb(jsonObject: $0) }
        #expect(a.prompt == 21 && a.completion == 9)
        // Anthropic's cache reads and writes are prompt tokens too (OpenAI's prompt_tokens include cached ones),
        // summed per usage object; the stream's later running totals do not add them twice.
        var cache = TokenUsage()
        _ = Array(#"{"type":"message_start","message":{"usage":{"input_tokens":5,"cache_creation_input_tokens":100,"cache_read_input_tokens":2000,"output_tokens":1}}}"#.utf8)
            .withUnsafeBytes { cache.absorb(jsonObject: $0) }
        _ = Array(#"{"type":"message_delta","usage":{"input_tokens":5,"cache_creation_input_tokens":100,"cache_read_input_tokens":2000,"output_tokens":40}}"#.utf8)
            .withUnsafeBytes { cache.absorb(jsonObject: $0) }
        _ = Array(#"{"type":"message_delta","usage":{"output_tokens":41}}"#.utf8).withUnsafeBytes { cache.absorb(jsonObject: $0) }
        #expect(cache.prompt == 2105 && cache.completion == 41 && cache.reported)
        var openAICached = TokenUsage()
        _ = Array(#"{"usage":{"prompt_tokens":2048,"completion_tokens":3,"prompt_tokens_details":{"cached_tokens":1024}}}"#.utf8)
            .withUnsafeBytes { openAICached.absorb(jsonObject: $0) }
        #expect(openAICached.prompt == 2048)
        var r = TokenUsage()
        _ = Array(#"{"type":"response.created","response":{"id":"resp_1","output":[],"usage":null}}"#.utf8).withUnsafeBytes { r.absorb(jsonObject: $0) }
        #expect(!r.reported)
        let completed = #"{"type":"response.completed","response":{"id":"resp_1","output":[{"type":"message","content":[{"type":"output_text","text":"a \"usage\": {}"}]}],"#
            + #""usage":{"input_tokens":14,"input_tokens_details":{"cached_tokens":0},"output_tokens":6,"total_tokens":20}}}"#
        _ = Array(completed.utf8).withUnsafeBytes { r.absorb(jsonObject: $0) }
        #expect(r.prompt == 14 && r.completion == 6 && r.reported)
        var n = TokenUsage()
        let notUsageOnly = Array(#"{"choices":[{"delta":{}}],"usage":null}"#.utf8).withUnsafeBytes { n.absorb(jsonObject: $0) }
        #expect(!notUsageOnly && !n.reported)
    }

    @Test func sseSplitterFindsEventsAcrossChunkBoundaries() {
        let stream = Array("data: {\"a\":1}\n\nevent: x\ndata: {\"b\":2}\r\n\r\ndata: [DONE]\n\n".utf8)
        for step in [1, 2, 5, 100] {
            var s = SSESplitter()
            var events: [[UInt8]] = []
            var i = 0
            while i < stream.count {
                let n = min(step, stream.count - i)
                stream[i..<(i + n)].withUnsafeBytes { events += s.feed($0) }
                i += n
            }
            #expect(events.count == 3, "step \(step)")
            #expect(events.joined().elementsEqual(stream))
            #expect(SSESplitter.dataPayloads(events[1]).map { String(decoding: $0, as: UTF8.self) } == [#"{"b":2}"#])
        }
    }

    @Test func nullUsageFieldsAreRemovedFromHiddenStreams() {
        let chunk = Array(#"data: {"choices":[{"delta":{"content":"x"}}],"usage":null}"#.utf8)
        #expect(String(decoding: Relay.removing(Relay.nullUsage, from: chunk), as: UTF8.self) == #"data: {"choices":[{"delta":{"content":"x"}}]}"#)
    }

    @Test func clientKeyComesFromAnyOfTheThreeHeaders() {
        #expect(ProxyHandler.clientKey(["authorization": "Bearer sk-a"]) == "sk-a")
        #expect(ProxyHandler.clientKey(["authorization": "bearer   sk-b "]) == "sk-b")
        #expect(ProxyHandler.clientKey(["authorization": "Bearer  sk-c\t"]) == "sk-c")
        #expect(ProxyHandler.clientKey(["authorization": "Bearer "]) == nil)
        #expect(ProxyHandler.clientKey(["x-api-key": "sk-c"]) == "sk-c")
        #expect(ProxyHandler.clientKey(["api-key": "sk-d"]) == "sk-d")
        #expect(ProxyHandler.clientKey(["authorization": "Basic xyz"]) == nil)
        #expect(ProxyHandler.clientKey([:]) == nil)
    }

    @Test func overheadIsWrittenAsMillisecondsWithOneDecimal() {
        func text(_ nanos: UInt64) -> String {
            var out: [UInt8] = []
            appendMillis(nanos, to: &out)
            return String(decoding: out, as: UTF8.self)
        }
        #expect(text(0) == "0.0")
        #expect(text(99_999) == "0.0")
        #expect(text(100_000) == "0.1")
        #expect(text(1_000_000) == "1.0")
        #expect(text(123_456_789) == "123.4")
        #expect(text(UInt64.max) == "18446744073709.5")
    }

    /// The provider's nested values are skimmed bracket for bracket: brackets and a `usage` inside strings
    /// or deeper objects are not taken for the top-level one; an answer whose brackets do not balance gives
    /// no usage at all (it is then estimated).
    @Test func usageIsReadFromTheTopLevelPastSkimmedChoices() {
        func usage(_ text: String) -> TokenUsage {
            var u = TokenUsage()
            _ = Array(text.utf8).withUnsafeBytes { u.absorb(jsonObject: $0) }
            return u
        }
        let tricky = #"{"choices":[{"message":{"content":"a } ] [ { \" \\ \"usage\":{\"prompt_tokens\":999}","usage":{"prompt_tokens":7}}}],"#
            + #""usage":{"prompt_tokens":3,"completion_tokens":4}}"#
        let u = usage(tricky)
        #expect(u.prompt == 3 && u.completion == 4 && u.reported)
        #expect(!usage(#"{"choices":[{"message":{"content":"x"}],"usage":{"prompt_tokens":3}}"#).reported)  // one } short
        #expect(!usage(#"{"choices":[{"a":"unterminated}],"usage":{"prompt_tokens":3}}"#).reported)
        #expect(usage(#"{"choices":[[[[]]],{}],"usage":{"prompt_tokens":1,"completion_tokens":2}}"#).completion == 2)
    }
}
