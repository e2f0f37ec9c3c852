/// What the proxy reads from a request body: only these fields, never the prompt itself.
public struct RequestFacts: Sendable, Equatable {
    public var model: String?
    public var stream = false
    public var maxTokens: Int64?
    public var hasStreamOptions = false
    public var includeUsage: Bool?
    /// Rough prompt size in tokens (a JSON body's bytes / 4), for estimates; 0 for other bodies.
    public var estimatedPromptTokens: Int64 = 0
}

public enum RequestInspector {
    /// Facts from a JSON request body; nil if the body's top level is not a JSON object (the provider will
    /// say why). The messages and other nested values are matched bracket for bracket, not validated: the
    /// provider checks them, and the proxy reads none of them.
    public static func inspect(_ body: [UInt8]) -> RequestFacts? {
        var facts = RequestFacts()
        facts.estimatedPromptTokens = Int64(body.count / 4)
        let ok = body.withUnsafeBytes { all in
            JSONScanner.members(of: all, skimContainers: true) { key, range in
                let value = UnsafeRawBufferPointer(rebasing: all[range])
                if JSONValueReader.isKey(key, "model") {
                    facts.model = JSONValueReader.string(value)
                } else if JSONValueReader.isKey(key, "stream") {
                    facts.stream = JSONValueReader.bool(value) ?? false
                } else if JSONValueReader.isKey(key, "max_tokens") || JSONValueReader.isKey(key, "max_completion_tokens")
                            || JSONValueReader.isKey(key, "max_output_tokens") {
                    facts.maxTokens = JSONValueReader.int(value)
                } else if JSONValueReader.isKey(key, "stream_options") {
                    facts.hasStreamOptions = true
                    _ = JSONScanner.members(of: value) { k, r in
                        if JSONValueReader.isKey(k, "include_usage") {
                            facts.includeUsage = JSONValueReader.bool(UnsafeRawBufferPointer(rebasing: value[r]))
                        }
                    }
                }
            }
        }
        return ok ? facts : nil
    }

    /// The body with `"stream_options":{"include_usage":true}` added as the first member: the only change
    /// the proxy ever makes to a body, and only for OpenAI-style streams that did not ask for usage.
    public static func addingIncludeUsage(_ body: [UInt8]) -> [UInt8]? {
        guard let brace = body.firstIndex(of: UInt8(ascii: "{")) else { return nil }
        var out = [UInt8]()
        out.reserveCapacity(body.count + 40)
        out.append(contentsOf: body[...brace])
        out.append(contentsOf: #""stream_options":{"include_usage":true}"#.utf8)
        // An empty object gets no comma.
        let rest = body[(brace + 1)...]
        if rest.first(where: { $0 != 0x20 && $0 != 0x0A && $0 != 0x0D && $0 != 0x09 }) != UInt8(ascii: "}") {
            out.append(UInt8(ascii: ","))
        }
        out.append(contentsOf: rest)
        return out
    }
}

/// Tokens a response reported.
public struct TokenUsage: Sendable, Equatable {
    public var prompt: Int64 = 0
    public var completion: Int64 = 0
    public var reported = false

    public init() {}

    /// Folds in one `usage` object (OpenAI or Anthropic names); Anthropic streams report running totals.
    /// Anthropic counts prompt tokens read from or written to its cache apart from `input_tokens`; they are
    /// added, so prompt tokens mean what OpenAI's `prompt_tokens` (cached ones included) mean.
    mutating func absorb(usageObject value: UnsafeRawBufferPointer) {
        var input: Int64?
        var cached: Int64 = 0
        _ = JSONScanner.members(of: value) { k, r in
            let v = UnsafeRawBufferPointer(rebasing: value[r])
            guard let n = JSONValueReader.int(v) else { return }
            if JSONValueReader.isKey(k, "prompt_tokens") || JSONValueReader.isKey(k, "input_tokens") {
                input = n
            } else if JSONValueReader.isKey(k, "cache_creation_input_tokens") || JSONValueReader.isKey(k, "cache_read_input_tokens") {
                cached += n
            } else if JSONValueReader.isKey(k, "completion_tokens") || JSONValueReader.isKey(k, "output_tokens") {
                completion = max(completion, n)
                reported = true
            }
        }
        if let input {
            prompt = max(prompt, input + cached)
            reported = true
        }
    }

    /// Looks for `usage` (top level: OpenAI chat, completions, embeddings, a whole Responses answer),
    /// `message.usage` (Anthropic `message_start`) or `response.usage` (the Responses API's
    /// `response.completed`, `response.incomplete` and `response.failed` events) in one JSON object.
    /// Returns whether the object is an OpenAI usage-only chunk (`choices` empty, `usage` set). The
    /// provider's nested values are skimmed, not validated: only the usage numbers are read from them.
    @discardableResult
    public mutating func absorb(jsonObject bytes: UnsafeRawBufferPointer) -> Bool {
        var usageOnly = false
        var emptyChoices = false
        var hasUsage = false
        _ = JSONScanner.members(of: bytes, skimContainers: true) { k, r in
            let v = UnsafeRawBufferPointer(rebasing: bytes[r])
            if JSONValueReader.isKey(k, "usage") {
                if !v.elementsEqual("null".utf8) {
                    hasUsage = true
                    absorb(usageObject: v)
                }
            } else if JSONValueReader.isKey(k, "message") || JSONValueReader.isKey(k, "response") {
                // (A `usage` of null is no object: absorbing it reads nothing.)
                _ = JSONScanner.members(of: v, skimContainers: true) { k2, r2 in
                    if JSONValueReader.isKey(k2, "usage") { absorb(usageObject: UnsafeRawBufferPointer(rebasing: v[r2])) }
                }
            } else if JSONValueReader.isKey(k, "choices") {
                emptyChoices = Self.isEmptyArray(v)
            }
        }
        usageOnly = hasUsage && emptyChoices
        return usageOnly
    }

    /// `[]` with any JSON whitespace around or inside, read in place.
    static func isEmptyArray(_ v: UnsafeRawBufferPointer) -> Bool {
        var next = 0
        for b in v where b != 0x20 && b != 0x0A && b != 0x0D && b != 0x09 {
            guard next < 2, b == (next == 0 ? 0x5B : 0x5D) else { return false }  // "[" then "]"
            next += 1
        }
        return next == 2
    }
}

/// Splits a server-sent-event stream into events (each ending in a blank line), across chunk boundaries.
public struct SSESplitter {
    public init() {}
    private var pending: [UInt8] = []
    static let maxEventBytes = 1 << 20

    /// Appends `chunk` and returns the complete events it finished, each with its terminating blank line.
    public mutating func feed(_ chunk: UnsafeRawBufferPointer) -> [[UInt8]] {
        pending.append(contentsOf: chunk)
        var events: [[UInt8]] = []
        var start = 0
        var i = 0
        while i < pending.count {
            if pending[i] == 0x0A {
                // "\n\n" or "\n\r\n" ends an event.
                if i + 1 < pending.count, pending[i + 1] == 0x0A {
                    events.append(Array(pending[start...(i + 1)]))
                    start = i + 2
                    i += 2
                    continue
                }
                if i + 2 < pending.count, pending[i + 1] == 0x0D, pending[i + 2] == 0x0A {
                    events.append(Array(pending[start...(i + 2)]))
                    start = i + 3
                    i += 3
                    continue
                }
            }
            i += 1
        }
        pending.removeFirst(start)
        if pending.count > Self.maxEventBytes {
            // Not SSE after all (or a runaway event): hand it on as is rather than hold it.
            events.append(pending)
            pending = []
        }
        return events
    }

    /// Whatever is left when the stream ends.
    public mutating func flush() -> [UInt8] {
        defer { pending = [] }
        return pending
    }

    /// The JSON payloads of an event's `data:` lines.
    public static func dataPayloads(_ event: [UInt8]) -> [ArraySlice<UInt8>] {
        var out: [ArraySlice<UInt8>] = []
        var lineStart = 0
        for (i, b) in event.enumerated() where b == 0x0A {
            var line = event[lineStart..<i]
            if line.last == 0x0D { line = line.dropLast() }
            if line.starts(with: "data:".utf8) {
                var payload = line.dropFirst(5)
                if payload.first == 0x20 { payload = payload.dropFirst() }
                out.append(payload)
            }
            lineStart = i + 1
        }
        return out
    }
}
