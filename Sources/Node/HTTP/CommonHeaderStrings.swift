/// Header names, header values and request paths that recur in nearly every request and response, kept as
/// string literals. A `String` made from more than 15 bytes is a heap allocation (and then reference
/// counting) every time; a literal is immortal — no allocation, no counting. What is short enough to be a
/// small string (15 bytes or fewer) needs no table. The parsers look their bytes up here first.
enum CommonHeaderStrings {
    /// Long lower-case header names: what the OpenAI and Anthropic SDKs send, and what the providers answer.
    static let names = LiteralTable([
        "x-stainless-lang", "x-stainless-package-version", "x-stainless-arch", "x-stainless-runtime",
        "x-stainless-runtime-version", "x-stainless-async", "x-stainless-retry-count", "x-stainless-read-timeout",
        "x-stainless-timeout", "x-stainless-helper-method", "openai-organization", "openai-project", "openai-beta",
        "anthropic-version", "anthropic-beta", "anthropic-dangerous-direct-browser-access", "idempotency-key",
        "proxy-authorization", "proxy-connection", "transfer-encoding", "x-forwarded-for", "x-forwarded-proto",
        "openai-processing-ms", "openai-version", "openai-model",
        "x-ratelimit-limit-requests", "x-ratelimit-limit-tokens", "x-ratelimit-remaining-requests",
        "x-ratelimit-remaining-tokens", "x-ratelimit-reset-requests", "x-ratelimit-reset-tokens",
        "access-control-expose-headers", "access-control-allow-origin", "strict-transport-security",
        "x-content-type-options", "anthropic-organization-id",
        "anthropic-ratelimit-requests-limit", "anthropic-ratelimit-requests-remaining", "anthropic-ratelimit-requests-reset",
        "anthropic-ratelimit-tokens-limit", "anthropic-ratelimit-tokens-remaining", "anthropic-ratelimit-tokens-reset",
        "anthropic-ratelimit-input-tokens-limit", "anthropic-ratelimit-input-tokens-remaining",
        "anthropic-ratelimit-input-tokens-reset", "anthropic-ratelimit-output-tokens-limit",
        "anthropic-ratelimit-output-tokens-remaining", "anthropic-ratelimit-output-tokens-reset",
    ])

    /// Long values that come back in nearly every message (exact bytes).
    static let values = LiteralTable([
        "application/json", "application/json; charset=utf-8", "application/json;charset=utf-8",
        "text/event-stream", "text/event-stream; charset=utf-8", "text/event-stream;charset=utf-8",
        "gzip, deflate, br", "gzip, deflate, br, zstd", "no-cache, must-revalidate",
        "max-age=31536000; includeSubDomains", "max-age=31536000; includeSubDomains; preload",
        "X-Request-ID, OpenAI-Organization, OpenAI-Processing-MS, OpenAI-Version",
    ])

    /// Request targets of the API routes.
    static let paths = LiteralTable([
        "/v1/chat/completions", "/v1/completions", "/v1/embeddings", "/v1/messages", "/v1/messages/count_tokens",
        "/v1/responses", "/v1/moderations", "/v1/images/generations", "/v1/audio/transcriptions", "/v1/audio/speech",
    ])

    /// A header name as the parsers keep it: lower-case, and the literal when it is a common long one.
    static func name(_ bytes: UnsafeBufferPointer<UInt8>) -> String {
        if bytes.count > 15, let common = names.lookup(bytes, foldingCase: true) { return common }
        return String(unsafeUninitializedCapacity: bytes.count) { out in
            for i in 0..<bytes.count { out[i] = bytes[i] >= 0x41 && bytes[i] <= 0x5A ? bytes[i] | 0x20 : bytes[i] }
            return bytes.count
        }
    }

    /// A header value as sent, and the literal when it is a common long one.
    static func value(_ bytes: UnsafeBufferPointer<UInt8>) -> String {
        if bytes.count > 15, let common = values.lookup(bytes) { return common }
        return String(decoding: bytes, as: UTF8.self)
    }
}
