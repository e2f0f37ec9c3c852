import Storage

/// One request on the proxy path, from the client's head to its usage record: authenticate the virtual
/// key, inspect the body, admit it against the key's limits, forward it with the real key (the `Relay`
/// moves the answer), then account the tokens.
///
/// Runs on the connection's loop as a chain of calls and callbacks. A step that has to wait — a key not in
/// the cache, a Redis round trip for global limits — continues in a task whose continuations run on the
/// same loop; a request that needs neither (a cached key, local limits) starts no task at all.
///
/// `@unchecked Sendable`: only ever touched on its loop (the tasks it starts prefer that loop).
final class ProxyExchange: @unchecked Sendable {
    private let proxy: ProxyHandler
    private let request: HTTPRequest
    private let response: HTTPResponseWriter
    /// The request's path (its target before any `?`), found once.
    private let path: Substring
    private let started = monotonicNanos()
    private let startedAt = nowMillis()
    /// Anthropic paths get errors in Anthropic's shape.
    private let anthropicShape: Bool
    private let requestID: String
    /// The metrics label of the path.
    private let route: Int
    private var facts = RequestFacts()
    /// Prompt estimate plus the completion cap: what admission charges before the real count is known.
    private var estimate: Int64 = 0
    private var admission: Limiter.Admission?
    /// Set when the request goes upstream; the relay calls back with the outcome.
    private var resolvedKey: ResolvedKey?
    private var relay: Relay?
    private var upstreamStart: UInt64 = 0
    /// Where the request goes, kept for a second attempt (`usageOptionRefused`).
    private var suffix: Substring = ""

    init(proxy: ProxyHandler, request: HTTPRequest, response: HTTPResponseWriter) {
        self.proxy = proxy
        self.request = request
        self.response = response
        path = request.path
        // By bytes: `hasPrefix` on a Substring compares Character by Character (~0.5 µs a request).
        anthropicShape = path.hasUTF8Prefix("/v1/messages") || path.hasUTF8Prefix("/v1/complete")
        requestID = request.headers["x-request-id"].flatMap { $0.isEmpty || $0.count > 200 ? nil : $0 } ?? Identifiers.requestID()
        route = proxy.requestMetrics.route(path)
    }

    // MARK: Steps

    /// Authenticate: the key from the cache, or from the store in a task.
    func start() {
        guard let hash = ProxyHandler.clientKeyDigest(request.headers) else {
            return fail(ProxyError(status: 401, type: "invalid_request_error", code: "invalid_api_key",
                                   message: "missing API key: send a virtual key as Authorization: Bearer, x-api-key or api-key"))
        }
        switch proxy.keys.lookup(hash) {
        case .hit(let key): authorized(key)
        case .unknown: failUnknownKey()
        case .miss:
            Task.immediateDetached(executorPreference: response.loop) { [self] in
                let resolved: ResolvedKey?
                do {
                    resolved = try await proxy.keys.resolve(hash)
                } catch {
                    proxy.log.error("key lookup failed", [("request_id", .string(requestID)), ("error", .string("\(error)"))])
                    proxy.keyLookupFailures.withLock { $0 += 1 }
                    return fail(ProxyError(status: 503, type: "server_error", code: "store_unavailable",
                                           message: "the key store is unavailable; retry shortly"))
                }
                guard let resolved else { return failUnknownKey() }
                authorized(resolved)
            }
        }
    }

    private func failUnknownKey() {
        fail(ProxyError(status: 401, type: "invalid_request_error", code: "invalid_api_key", message: "invalid API key"))
    }

    /// Check the key and the body, then admit: at once with local limits, in a task with global ones.
    private func authorized(_ rk: ResolvedKey) {
        if rk.key.disabled {
            return fail(ProxyError(status: 401, type: "invalid_request_error", code: "key_disabled", message: "this API key is disabled"), keyID: rk.key.id)
        }
        if let exp = rk.key.expiresAt, exp <= startedAt {
            return fail(ProxyError(status: 401, type: "invalid_request_error", code: "key_expired", message: "this API key has expired"), keyID: rk.key.id)
        }
        // Inspect only what is needed. Only a JSON body's size estimates its prompt: an audio upload's
        // megabytes are no prompt (and would not fit a token limit).
        let body = request.body
        if !body.isEmpty {
            if let f = RequestInspector.inspect(body) {
                facts = f
            } else if let type = request.headers["content-type"], let boundary = MultipartForm.boundary(contentType: type[...]) {
                // An upload (audio transcription): its model is a form field.
                facts.model = MultipartForm.field(named: "model", in: body, boundary: boundary)
            }
        }
        if !rk.key.allowedModels.isEmpty, request.method == .POST {
            guard let model = facts.model, rk.key.allowedModels.contains(model) else {
                return fail(ProxyError(status: 403, type: "invalid_request_error", code: "model_not_allowed",
                                       message: "model \"\(facts.model ?? "(none)")\" is not allowed for this key; allowed: \(rk.key.allowedModels.joined(separator: ", "))"),
                            keyID: rk.key.id)
            }
        }
        // Where it goes, before anything is charged: a request that cannot be sent takes no limit with it.
        let suffix: Substring
        do {
            suffix = try ProviderRouting.upstreamSuffix(rk.connection, rest: path.dropFirst(3), query: request.query, model: facts.model)
        } catch {
            return fail(error, keyID: rk.key.id)
        }
        let limits = rk.limits
        if limits.isUnlimited { return forward(rk, suffix: suffix, rateHeaders: []) }
        // Admit: one request and the token estimate, from both buckets at once, or a refusal.
        estimate = facts.estimatedPromptTokens + (facts.maxTokens ?? 0)
        if let now = proxy.limiter.admitWithoutWaiting(key: rk.key.id, limits: limits, estimatedTokens: estimate) {
            return admitted(now, rk, suffix: suffix)
        }
        Task.immediateDetached(executorPreference: response.loop) { [self] in
            let a = await proxy.limiter.admit(on: response.loop, key: rk.key.id, limits: limits, estimatedTokens: estimate)
            admitted(a, rk, suffix: suffix)
        }
    }

    private func admitted(_ a: Limiter.Admission, _ rk: ResolvedKey, suffix: Substring) {
        let decision = a.decision
        guard decision.allowed else {
            let (headers, error) = RateLimitResponse.refusal(decision, limits: rk.limits, estimate: estimate)
            proxy.metrics.add("llmp_rate_limited_total", [ProxyHandler.denialKind(decision.denied)])
            return fail(error, keyID: rk.key.id, provider: rk.connection.provider, headers: headers)
        }
        admission = a
        forward(rk, suffix: suffix, rateHeaders: RateLimitResponse.headers(decision))
    }

    /// Send it upstream with the provider's own key; the relay moves the answer and calls back.
    private func forward(_ rk: ResolvedKey, suffix: Substring, rateHeaders: [(String, String)], askForUsage: Bool = true) {
        // OpenAI chat and completion streams report usage only when asked: ask where the API knows how, and
        // hide the extra chunk from the client.
        var body = request.body
        var hideUsageChunk = false
        if askForUsage, facts.stream, !facts.hasStreamOptions,
           ProviderRouting.streamUsageIsOptIn(path: path, connection: rk.connection, query: request.query),
           !proxy.refusedStreamUsageOption.withLock({ $0.contains(rk.connection.id) }),
           let injected = RequestInspector.addingIncludeUsage(body) {
            body = injected
            hideUsageChunk = true
        }
        // The client's fields, byte for byte, less the hop's own and its key; then the provider's key.
        var headers = HTTPHeaders(capacity: request.headers.count + 3)
        request.headers.appendFields(to: &headers) { name in
            ProviderRouting.droppedRequestHeaders.contains(name) || HTTPHeaders.isName(name, "x-request-id")
        }
        headers.add(rk.upstreamAuth.0, rk.upstreamAuth.1)
        headers.add("x-request-id", requestID)
        if rk.connection.provider == .anthropic, request.headers.index(of: "anthropic-version") == nil {
            headers.add("anthropic-version", "2023-06-01")
        }
        let transfer = proxy.upstreams.call(on: response.loop, method: request.method, endpoint: rk.endpoint, suffix: suffix, headers: headers, body: body)
        let relay = Relay(response: response, transfer: transfer, hideUsageChunk: hideUsageChunk, requestID: requestID,
                          anthropic: anthropicShape, started: started, extraHeaders: rateHeaders)
        self.relay = relay
        resolvedKey = rk
        self.suffix = suffix
        upstreamStart = monotonicNanos()
        relay.start(for: self)
    }

    /// The provider refused the `stream_options` the proxy added (its answer named it): nothing ran
    /// upstream, so the request goes again as the client wrote it, and the connection's streams are sent
    /// that way from now on (on this node). The client sees one answer, the second.
    func usageOptionRefused() {
        guard let rk = resolvedKey, let relay else { return }
        self.relay = nil
        if proxy.refusedStreamUsageOption.withLock({ $0.insert(rk.connection.id).inserted }) {
            proxy.log.warning("the provider refused stream_options.include_usage: this connection's streams are sent as the client wrote them",
                              [("connection", .string(rk.connection.id)), ("request_id", .string(requestID))])
        }
        forward(rk, suffix: suffix, rateHeaders: relay.extraHeaders, askForUsage: false)
    }

    /// The answer is complete (or cut short): settle the limits, count, log, and record the usage.
    func relayFinished(_ outcome: Relay.Outcome) {
        guard let relay, let rk = resolvedKey else { return }
        self.relay = nil
        let ended = monotonicNanos()
        let upstreamNanos = ended - upstreamStart
        var tokens = relay.tokens
        var estimated = false
        if !tokens.reported {
            estimated = true
            tokens.prompt = facts.estimatedPromptTokens
            // Only generated text says something about tokens by its size (not a model list, an image's
            // base64 or speech audio).
            tokens.completion = ProviderRouting.generatesText(path: path) ? Int64(relay.bodyBytes / 4) : 0
        }
        if let admission {
            let limiter = proxy.limiter, limits = rk.limits, estimate = estimate, actual = tokens.prompt + tokens.completion
            if !limiter.settleWithoutWaiting(admission, key: rk.key.id, limits: limits, estimatedTokens: estimate, actualTokens: actual) {
                // The answer has gone out: settling with Redis holds nothing up.
                let loop = response.loop
                Task.immediateDetached(executorPreference: loop) {
                    await limiter.settle(on: loop, admission, key: rk.key.id, limits: limits, estimatedTokens: estimate, actualTokens: actual)
                }
            }
        }
        let status = relay.status == 0 ? 499 : relay.status
        proxy.record(route: route, provider: rk.connection.provider, status: status, seconds: Double(ended - started) / 1e9,
                     upstreamNanos: upstreamNanos, tokens: (rk.key.id, facts.model ?? "", tokens))
        logRequest(keyID: rk.key.id, status: relay.status, ended: ended, [("model", .string(facts.model ?? "")), ("stream", .bool(facts.stream)),
                                                            ("prompt_tokens", .int(Int(tokens.prompt))), ("completion_tokens", .int(Int(tokens.completion))),
                                                            ("estimated", .bool(estimated))])
        if outcome != .cancelledBeforeHead || relay.bodyBytes > 0 {
            let endedAt = startedAt + Int64((ended - started) / 1_000_000)  // one wall-clock read a request
            proxy.usage.record(UsageRecord(newIDEndingAt: endedAt, virtualKeyID: rk.key.id, connectionID: rk.connection.id,
                                           model: facts.model ?? "", promptTokens: tokens.prompt, completionTokens: tokens.completion,
                                           estimated: estimated, statusCode: relay.status, latencyMillis: Int64((ended - started) / 1_000_000),
                                           stream: facts.stream, startedAt: startedAt, nodeID: proxy.nodeID))
        }
    }

    // MARK: Answers of our own

    /// Answers with an error in the API's own shape, counted and logged.
    private func fail(_ e: ProxyError, keyID: String = "", provider: Provider? = nil, headers extra: [(String, String)] = []) {
        var h = HTTPHeaders(extra)
        h.add("content-type", "application/json")
        h.add("x-request-id", requestID)
        response.respond(status: e.status, headers: h, body: e.body(anthropic: anthropicShape))
        let ended = monotonicNanos()
        proxy.record(route: route, provider: provider, status: e.status, seconds: Double(ended - started) / 1e9, upstreamNanos: 0)
        logRequest(keyID: keyID, status: e.status, ended: ended, [("error", .string(e.code ?? e.type))])
    }

    /// The access-log line every answer ends with: ids, status, latency, plus what the outcome adds.
    /// (`extra` is only built when the line is written.)
    private func logRequest(keyID: String, status: Int, ended: UInt64, _ extra: @autoclosure () -> [(String, LogValue)]) {
        guard proxy.accessLog, proxy.log.isEnabled(.info) else { return }
        proxy.log.info("request", [("request_id", .string(requestID)), ("method", .string(request.method.rawValue)), ("path", .string(String(path))),
                                   ("vkey", .string(keyID)), ("status", .int(status)),
                                   ("latency_ms", .double(Double(ended - started) / 1e6))] + extra())
    }
}
