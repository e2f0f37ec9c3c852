import Storage

/// Everything under `/v1/`: authenticate the virtual key, forward to its connection's provider with the
/// real key, relay the answer as it arrives, and account the tokens.
struct ProxyHandler: Sendable {
    let keys: KeyCache
    let upstreams: UpstreamPool
    let usage: UsageWriter
    let limiter: Limiter
    let log: Logger
    let nodeID: String
    let metrics: Metrics
    let accessLog: Bool
    let keyLookupFailures = LockedBox(0)
    /// Each request's count, durations and tokens (published into `metrics` at scrape time).
    let requestMetrics = ProxyMetrics(routes: ProxyHandler.knownRoutes)

    func handle(_ request: HTTPRequest, _ response: HTTPResponseWriter) async {
        let started = monotonicNanos()
        let startedAt = nowMillis()
        let path = request.path
        // By bytes: `hasPrefix` on a Substring compares Character by Character (~0.5 µs a request).
        let anthropicShape = path.utf8.starts(with: "/v1/messages".utf8) || path.utf8.starts(with: "/v1/complete".utf8)
        let requestID = request.headers["x-request-id"].flatMap { $0.isEmpty || $0.count > 200 ? nil : $0 } ?? Identifiers.requestID()

        let route = requestMetrics.route(path)
        /// The access-log line every answer ends with: ids, status, latency, plus what the outcome adds.
        /// (`extra` is only built when the line is written.)
        func logRequest(keyID: String, status: Int, _ extra: @autoclosure () -> [(String, LogValue)]) {
            guard accessLog, log.isEnabled(.info) else { return }
            log.info("request", [("request_id", .string(requestID)), ("method", .string(request.method.rawValue)), ("path", .string(String(path))),
                                 ("vkey", .string(keyID)), ("status", .int(status)),
                                 ("latency_ms", .double(Double(monotonicNanos() - started) / 1e6))] + extra())
        }
        /// Answers with an error in the API's own shape, counted and logged.
        func fail(_ e: ProxyError, keyID: String = "", provider: String = "none", headers extra: [(String, String)] = []) {
            var h = HTTPHeaders(extra)
            h.add("content-type", "application/json")
            h.add("x-request-id", requestID)
            response.respond(status: e.status, headers: h, body: e.body(anthropic: anthropicShape))
            record(route: route, provider: provider, status: e.status, started: started, upstreamNanos: 0)
            logRequest(keyID: keyID, status: e.status, [("error", .string(e.code ?? e.type))])
        }

        // Authenticate.
        guard let secret = Self.clientKey(request.headers) else {
            fail(ProxyError(status: 401, type: "invalid_request_error", code: "invalid_api_key",
                            message: "missing API key: send a virtual key as Authorization: Bearer, x-api-key or api-key"))
            return
        }
        let resolved: ResolvedKey?
        do {
            resolved = try await keys.resolve(Crypto.sha256Digest(secret))
        } catch {
            log.error("key lookup failed", [("request_id", .string(requestID)), ("error", .string("\(error)"))])
            keyLookupFailures.withLock { $0 += 1 }
            fail(ProxyError(status: 503, type: "server_error", code: "store_unavailable",
                            message: "the key store is unavailable; retry shortly"))
            return
        }
        guard let rk = resolved else {
            fail(ProxyError(status: 401, type: "invalid_request_error", code: "invalid_api_key", message: "invalid API key"))
            return
        }
        if rk.key.disabled {
            fail(ProxyError(status: 401, type: "invalid_request_error", code: "key_disabled", message: "this API key is disabled"), keyID: rk.key.id)
            return
        }
        if let exp = rk.key.expiresAt, exp <= startedAt {
            fail(ProxyError(status: 401, type: "invalid_request_error", code: "key_expired", message: "this API key has expired"), keyID: rk.key.id)
            return
        }

        // Inspect only what is needed.
        var body = request.body
        var facts = RequestFacts()
        if !body.isEmpty, let f = RequestInspector.inspect(body) { facts = f }
        facts.estimatedPromptTokens = Int64(body.count / 4)
        if !rk.key.allowedModels.isEmpty, request.method == .POST {
            guard let model = facts.model, rk.key.allowedModels.contains(model) else {
                fail(ProxyError(status: 403, type: "invalid_request_error", code: "model_not_allowed",
                                message: "model \"\(facts.model ?? "(none)")\" is not allowed for this key; allowed: \(rk.key.allowedModels.joined(separator: ", "))"),
                     keyID: rk.key.id)
                return
            }
        }
        // Admit: one request and the token estimate, from both buckets at once, or a refusal.
        let limits = rk.limits
        let estimate = facts.estimatedPromptTokens + (facts.maxTokens ?? 0)
        var rateHeaders: [(String, String)] = []
        var admission: Limiter.Admission?
        if !limits.isUnlimited {
            let a = await limiter.admit(on: response.loop, key: rk.key.id, limits: limits, estimatedTokens: estimate)
            let decision = a.decision
            guard decision.allowed else {
                let (headers, error) = RateLimitResponse.refusal(decision, limits: limits, estimate: estimate)
                metrics.add("llmp_rate_limited_total", [Self.denialKind(decision.denied)])
                fail(error, keyID: rk.key.id, provider: rk.connection.provider.rawValue, headers: headers)
                return
            }
            rateHeaders = RateLimitResponse.headers(decision)
            admission = a
        }

        // OpenAI-style streams report usage only when asked: ask, and hide the extra chunk from the client.
        var hideUsageChunk = false
        if facts.stream, !facts.hasStreamOptions, rk.connection.provider != .anthropic, let injected = RequestInspector.addingIncludeUsage(body) {
            body = injected
            hideUsageChunk = true
        }

        // Build the upstream call.
        let rest = path.dropFirst(3)  // "/v1/chat/completions" → "/chat/completions"
        let suffix: Substring
        do {
            suffix = try ProviderRouting.upstreamSuffix(rk.connection, rest: rest, query: request.query, model: facts.model)
        } catch {
            fail(error)
            return
        }
        var headers: [(String, String)] = []
        headers.reserveCapacity(request.headers.count + 3)
        let fields = request.headers.fields
        for i in fields.indices where !ProviderRouting.droppedRequestHeaders.contains(fields[i].name) && fields[i].name != "x-request-id" {
            headers.append((fields[i].name, fields[i].value))
        }
        headers.append(rk.upstreamAuth)
        headers.append(("x-request-id", requestID))
        if rk.connection.provider == .anthropic, request.headers["anthropic-version"] == nil {
            headers.append(("anthropic-version", "2023-06-01"))
        }

        let loop = response.loop
        let transfer = upstreams.call(on: loop, method: request.method, endpoint: rk.endpoint, suffix: suffix, headers: headers, body: body)
        let relay = Relay(response: response, transfer: transfer, hideUsageChunk: hideUsageChunk, requestID: requestID,
                          anthropic: anthropicShape, started: started, extraHeaders: rateHeaders)
        let upstreamStart = monotonicNanos()
        let outcome = await relay.run()
        let upstreamNanos = monotonicNanos() - upstreamStart

        // Account.
        var tokens = relay.tokens
        var estimated = false
        if !tokens.reported {
            estimated = true
            tokens.prompt = facts.estimatedPromptTokens
            tokens.completion = Int64(relay.bodyBytes / 4)
        }
        if let admission {
            await limiter.settle(on: response.loop, admission, key: rk.key.id, limits: limits, estimatedTokens: estimate,
                                 actualTokens: tokens.prompt + tokens.completion)
        }
        let provider = rk.connection.provider.rawValue
        record(route: route, provider: provider, status: relay.status == 0 ? 499 : relay.status, started: started, upstreamNanos: upstreamNanos,
               tokens: (rk.key.id, facts.model ?? "", tokens))
        logRequest(keyID: rk.key.id, status: relay.status, [("model", .string(facts.model ?? "")), ("stream", .bool(facts.stream)),
                                                            ("prompt_tokens", .int(Int(tokens.prompt))), ("completion_tokens", .int(Int(tokens.completion))),
                                                            ("estimated", .bool(estimated))])
        if outcome != .cancelledBeforeHead || relay.bodyBytes > 0 {
            let ended = nowMillis()
            usage.record(UsageRecord(id: Identifiers.makeTimeOrdered("u", millis: ended), virtualKeyID: rk.key.id, connectionID: rk.connection.id,
                                     model: facts.model ?? "", promptTokens: tokens.prompt, completionTokens: tokens.completion,
                                     estimated: estimated, statusCode: relay.status, latencyMillis: Int64((monotonicNanos() - started) / 1_000_000),
                                     stream: facts.stream, startedAt: startedAt, endedAt: ended, nodeID: nodeID))
        }
    }

    /// A request's metrics: count, durations and (when it reached a provider) tokens.
    private func record(route: Int, provider: String, status: Int, started: UInt64, upstreamNanos: UInt64,
                        tokens: (keyID: String, model: String, usage: TokenUsage)? = nil) {
        requestMetrics.record(route: route, provider: provider, status: status, seconds: Double(monotonicNanos() - started) / 1e9,
                              upstreamSeconds: upstreamNanos > 0 ? Double(upstreamNanos) / 1e9 : nil,
                              tokens: tokens.map { ($0.keyID, $0.model, $0.usage.prompt, $0.usage.completion) })
    }

    /// The API routes that keep their path as the metrics label; anything else is `other` (bounded labels).
    static let knownRoutes = ["/v1/chat/completions", "/v1/completions", "/v1/embeddings", "/v1/models", "/v1/messages",
                              "/v1/responses", "/v1/moderations", "/v1/images/generations", "/v1/audio/transcriptions",
                              "/v1/audio/speech", "/v1/messages/count_tokens"]

    static func denialKind(_ d: AdmissionDecision.Denial?) -> String {
        switch d {
        case .tokens, .tooLarge: "tokens"
        case .concurrency: "concurrency"
        case .limiterUnavailable: "unavailable"
        default: "requests"
        }
    }

    /// The virtual key from `Authorization: Bearer`, `x-api-key` or `api-key`.
    /// The client's key, as part of the header it came in (only hashed, so never copied).
    static func clientKey(_ h: HTTPHeaders) -> Substring? {
        if let auth = h["authorization"] {
            // What every SDK sends, without splitting strings.
            if auth.hasPrefix("Bearer "), auth.utf8.count > 7, !auth.utf8.dropFirst(7).contains(where: { $0 == 0x20 || $0 == 0x09 }) {
                return Substring(auth.utf8.dropFirst(7))
            }
            let parts = auth.split(separator: " ", maxSplits: 1)
            if parts.count == 2, parts[0].asciiCaseInsensitiveEquals("bearer") {
                let k = parts[1].trimmingOWS()
                if !k.isEmpty { return k }
            }
        }
        if let k = h["x-api-key"], !k.isEmpty { return k[...] }
        if let k = h["api-key"], !k.isEmpty { return k[...] }
        return nil
    }
}

extension Identifiers {
    static func requestID() -> String { makeUnique("req") }
}
