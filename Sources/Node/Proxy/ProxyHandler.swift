import Glibc
import Storage

/// Everything under `/v1/`: authenticate the virtual key, forward to its connection's provider with the
/// real key, relay the answer as it arrives, and account the tokens — one `ProxyExchange` per request,
/// sharing what this holds. (A class: each exchange keeps a reference, not a copy of every field.)
final class ProxyHandler: HTTPHandler {
    let keys: KeyCache
    let upstreams: UpstreamPool
    let usage: UsageWriter
    let limiter: Limiter
    let log: Logger
    let nodeID: String
    let metrics: Metrics
    let accessLog: Bool
    let keyLookupFailures = LockedBox(0)
    /// Connections whose provider refused the `stream_options.include_usage` the proxy adds to streams (a
    /// strict OpenAI-compatible API, such as Mistral's): on this node their streams go as the client wrote
    /// them from then on, and count the usage the provider reports by itself, or an estimate.
    let refusedStreamUsageOption = LockedBox(Set<String>())
    /// Each request's count, durations and tokens (published into `metrics` at scrape time).
    let requestMetrics = ProxyMetrics(routes: ProxyHandler.knownRoutes)

    init(keys: KeyCache, upstreams: UpstreamPool, usage: UsageWriter, limiter: Limiter, log: Logger, nodeID: String, metrics: Metrics,
         accessLog: Bool) {
        self.keys = keys
        self.upstreams = upstreams
        self.usage = usage
        self.limiter = limiter
        self.log = log
        self.nodeID = nodeID
        self.metrics = metrics
        self.accessLog = accessLog
    }

    /// Called on the connection's loop; the exchange answers on every path.
    func handle(_ request: HTTPRequest, _ response: HTTPResponseWriter) {
        ProxyExchange(proxy: self, request: request, response: response).start()
    }

    /// A request's metrics: count, duration and (when it reached a provider) upstream time and tokens.
    func record(route: Int, provider: Provider?, status: Int, seconds: Double, upstreamNanos: UInt64,
                tokens: (keyID: String, model: String, usage: TokenUsage)? = nil) {
        requestMetrics.record(route: route, provider: provider, status: status, seconds: seconds,
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
            // What every SDK sends — `Bearer ` and a token without blanks — checked on the bytes.
            if isPlainBearer(auth) { return Substring(auth.utf8.dropFirst(7)) }
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

    /// The SHA-256 of the client's key (what the key cache is keyed by), hashed straight from the header's
    /// bytes in the usual case — `Authorization: Bearer <key>` — with no string made.
    static func clientKeyDigest(_ h: HTTPHeaders) -> SHA256Digest? {
        if let digest = h.withValue(of: "authorization", { v -> SHA256Digest? in
            guard isPlainBearer(v) else { return nil }
            return Crypto.sha256Digest(UnsafeBufferPointer(rebasing: v[7...]))
        }), let digest {
            return digest
        }
        return clientKey(h).map(Crypto.sha256Digest)
    }

    /// `Bearer ` followed by at least one byte and no space or tab.
    private static func isPlainBearer(_ b: UnsafeBufferPointer<UInt8>) -> Bool {
        guard b.count > 7, let base = b.baseAddress, memcmp(base, "Bearer ", 7) == 0 else { return false }
        return memchr(base + 7, 0x20, b.count - 7) == nil && memchr(base + 7, 0x09, b.count - 7) == nil
    }

    private static func isPlainBearer(_ auth: String) -> Bool {
        var auth = auth
        return auth.withUTF8 { isPlainBearer($0) }
    }
}

extension Identifiers {
    static func requestID() -> String { makeUnique("req") }
}
