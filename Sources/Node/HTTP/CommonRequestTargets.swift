/// The request targets of the API routes, kept as string literals: a `String` made from more than 15 bytes
/// is a heap allocation (and then reference counting) every time; a literal is immortal. The request
/// parser looks a target's bytes up here first. (Header fields need no such table: `HTTPHeaders` keeps
/// them as bytes.)
enum CommonRequestTargets {
    static let paths = LiteralTable([
        "/v1/chat/completions", "/v1/completions", "/v1/embeddings", "/v1/messages", "/v1/messages/count_tokens",
        "/v1/responses", "/v1/moderations", "/v1/images/generations", "/v1/audio/transcriptions", "/v1/audio/speech",
    ])
}
