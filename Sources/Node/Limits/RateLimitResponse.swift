/// OpenAI's rate-limit headers and 429 bodies, from an admission decision.
enum RateLimitResponse {
    /// `x-ratelimit-{limit,remaining,reset}-{requests,tokens}` for every proxied response.
    static func headers(_ d: AdmissionDecision) -> [(String, String)] {
        var h: [(String, String)] = []
        if let l = d.requestLimit {
            h.append(("x-ratelimit-limit-requests", formatCount(l)))
            h.append(("x-ratelimit-remaining-requests", formatCount((d.requestsRemaining ?? 0).rounded(.down))))
            h.append(("x-ratelimit-reset-requests", formatDuration(d.requestsReset ?? 0)))
        }
        if let l = d.tokenLimit {
            h.append(("x-ratelimit-limit-tokens", formatCount(l)))
            h.append(("x-ratelimit-remaining-tokens", formatCount((d.tokensRemaining ?? 0).rounded(.down))))
            h.append(("x-ratelimit-reset-tokens", formatDuration(d.tokensReset ?? 0)))
        }
        return h
    }

    /// The refusal for a denied admission: headers and the error (which carries the status).
    static func refusal(_ d: AdmissionDecision, limits: KeyLimitsConfig, estimate: Int64) -> (headers: [(String, String)], error: ProxyError) {
        var headers = Self.headers(d)
        switch d.denied {
        case .limiterUnavailable:
            headers.append(("retry-after", "1"))
            return (headers, ProxyError(status: 503, type: "server_error", code: "rate_limiter_unavailable",
                                             message: "the rate limiter (Redis) is unavailable and this gateway refuses requests until it is back; retry shortly"))
        case .tooLarge:
            let cap = Int64(limits.tokens?.capacity ?? 0)
            return (headers, ProxyError(status: 400, type: "tokens", code: "request_too_large",
                                             message: "this request needs about \(estimate) tokens, more than this key's limit of \(cap) tokens per minute allows at once; send a smaller request or raise the key's --tokens"))
        default:
            let wait = max(0.001, d.retryAfter)
            headers.append(("retry-after", String(Int(wait.rounded(.up)))))
            headers.append(("retry-after-ms", String(Int((wait * 1000).rounded(.up)))))
            let (type, what): (String, String) = switch d.denied {
            case .tokens: ("tokens", "tokens per minute (limit \(formatCount(limits.tokens?.capacity ?? 0)))")
            case .concurrency: ("requests", "concurrent requests (limit \(limits.maxConcurrent))")
            default: ("requests", "requests per second (limit \(formatCount(limits.requests?.perSecond ?? 0))/s, burst \(formatCount(limits.requests?.capacity ?? 0)))")
            }
            return (headers, ProxyError(status: 429, type: type, code: "rate_limit_exceeded",
                                             message: "rate limit reached for \(what) on this key; retry in \(formatDuration(wait))"))
        }
    }

    static func formatCount(_ v: Double) -> String {
        v == v.rounded() && abs(v) < 1e15 ? String(Int64(v)) : String(v)
    }

    /// `250ms`, `1.5s`, `6m0s`, `1h2m3s`, as OpenAI writes reset times.
    static func formatDuration(_ seconds: Double) -> String {
        if seconds < 1 { return "\(Int((seconds * 1000).rounded(.up)))ms" }
        if seconds < 60 {
            let ms = Int((seconds * 1000).rounded(.up))
            return ms % 1000 == 0 ? "\(ms / 1000)s" : "\(Double(ms) / 1000)s"
        }
        let total = Int(seconds.rounded(.up))
        let h = total / 3600, m = (total % 3600) / 60, s = total % 60
        return h > 0 ? "\(h)h\(m)m\(s)s" : "\(m)m\(s)s"
    }
}
