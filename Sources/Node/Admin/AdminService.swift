import FoundationEssentials
import Storage

/// A connection as shown to administrators: never the provider key.
struct ConnectionView: Codable, Sendable, Equatable {
    var id: String
    var name: String
    var provider: String
    var endpoint: String
    var options: [String: String]
    var created_at: String
    var updated_at: String

    init(_ c: ConnectionRecord) {
        id = c.id; name = c.name; provider = c.provider.rawValue; endpoint = c.endpoint; options = c.options
        created_at = isoTime(c.createdAt); updated_at = isoTime(c.updatedAt)
    }
}

/// A virtual key as shown to administrators: its prefix, never the key or its hash.
struct VirtualKeyView: Codable, Sendable, Equatable {
    var id: String
    var name: String
    var key_prefix: String
    var connection_id: String
    var tps: Double
    var burst: Double
    var tokens_per_minute: Int64
    var max_concurrent: Int
    var models: [String]
    var expires_at: String?
    var disabled: Bool
    var created_at: String
    var updated_at: String
    var usage: [UsageView]?

    init(_ k: VirtualKeyRecord, usage: [UsageTotal]? = nil) {
        id = k.id; name = k.name; key_prefix = k.displayPrefix; connection_id = k.connectionID; tps = k.requestsPerSecond
        burst = k.burst; tokens_per_minute = k.tokensPerMinute; max_concurrent = k.maxConcurrent; models = k.allowedModels
        expires_at = k.expiresAt.map(isoTime); disabled = k.disabled; created_at = isoTime(k.createdAt); updated_at = isoTime(k.updatedAt)
        self.usage = usage.map { $0.map(UsageView.init) }
    }
}

/// One usage record as exported (`usage export`, `GET /admin/usage/records`); times in RFC 3339 with
/// milliseconds (UTC).
struct UsageRecordView: Codable, Sendable, Equatable {
    var id: String
    var vkey_id: String
    var connection_id: String
    var model: String
    var prompt_tokens: Int64
    var completion_tokens: Int64
    var total_tokens: Int64
    var estimated: Bool
    var status: Int
    var latency_ms: Int64
    var stream: Bool
    var started_at: String
    var ended_at: String
    var node_id: String

    init(_ r: UsageRecord) {
        id = r.id; vkey_id = r.virtualKeyID; connection_id = r.connectionID; model = r.model
        prompt_tokens = r.promptTokens; completion_tokens = r.completionTokens; total_tokens = r.promptTokens + r.completionTokens
        estimated = r.estimated; status = r.statusCode; latency_ms = r.latencyMillis; stream = r.stream
        started_at = isoTimeMillis(r.startedAt); ended_at = isoTimeMillis(r.endedAt); node_id = r.nodeID
    }
}

/// A page of exported records, oldest first, and where the next one starts (absent on the last page).
struct UsageRecordsPage: Codable, Sendable, Equatable {
    var records: [UsageRecordView]
    var next: String?
}

/// What `usage prune` / `DELETE /admin/usage` report.
struct UsagePruned: Codable, Sendable, Equatable {
    var deleted: Int
    var before: String
}

struct UsageView: Codable, Sendable, Equatable {
    var vkey_id: String
    var model: String
    var requests: Int64
    var prompt_tokens: Int64
    var completion_tokens: Int64
    var total_tokens: Int64

    init(_ u: UsageTotal) {
        vkey_id = u.virtualKeyID; model = u.model; requests = u.requests; prompt_tokens = u.promptTokens
        completion_tokens = u.completionTokens; total_tokens = u.promptTokens + u.completionTokens
    }
}

/// What an admin asks for when creating or changing a key's limits; nil = leave as is.
struct KeyLimits: Sendable, Equatable {
    var tps: Double?
    var burst: Double?
    var tokensPerMinute: Int64?
    var maxConcurrent: Int?
    var expiresAt: Int64??
    var models: [String]?
    var disabled: Bool?
}

/// Admin operations, shared by the CLI (on the store) and the admin API: validation, key generation,
/// encryption of provider keys. Errors are `StoreError`s with messages meant for the admin.
struct AdminService: Sendable {
    let store: any Store
    let box: SecretBox
    let actor: AuditActor

    func addConnection(name: String, provider providerName: String, endpoint: String?, apiKey: String,
                       apiVersion: String?) async throws -> ConnectionView {
        let name = try Self.validName(name, what: "connection")
        guard let provider = Provider(rawValue: providerName.lowercased()) else {
            throw StoreError(.invalid, "unknown provider \"\(providerName)\": use openai, azure or anthropic")
        }
        guard let endpoint = endpoint ?? provider.defaultEndpoint else {
            throw StoreError(.invalid, "--endpoint is required for \(provider.rawValue) (e.g. https://RESOURCE.openai.azure.com/openai)")
        }
        let normalized = try Self.validEndpoint(endpoint)
        guard !apiKey.isEmpty, !apiKey.contains(where: { $0.isWhitespace }) else {
            throw StoreError(.invalid, "the provider API key must be non-empty and contain no spaces")
        }
        var options: [String: String] = [:]
        if provider == .azure {
            options["api-version"] = apiVersion ?? "2024-10-21"
        } else if let v = apiVersion {
            options["api-version"] = v
        }
        let id = Identifiers.make("conn")
        let now = nowMillis()
        let record = ConnectionRecord(id: id, name: name, provider: provider, endpoint: normalized,
                                      encryptedAPIKey: box.sealString(apiKey, context: id), options: options, createdAt: now, updatedAt: now)
        try await store.createConnection(record, actor: actor)
        return ConnectionView(record)
    }

    func connections() async throws -> [ConnectionView] { try await store.connections().map(ConnectionView.init) }

    func connection(id: String) async throws -> ConnectionView {
        guard let c = try await store.connection(id: id) else { throw StoreError(.notFound, "no connection with id \(id)") }
        return ConnectionView(c)
    }

    func removeConnection(id: String, force: Bool) async throws {
        try await store.deleteConnection(id: id, force: force, actor: actor)
    }

    func addKey(name: String, connectionID: String, limits: KeyLimits) async throws -> (VirtualKeyView, String) {
        let name = try Self.validName(name, what: "virtual key")
        try Self.validate(limits)
        guard try await store.connection(id: connectionID) != nil else { throw StoreError(.notFound, "no connection with id \(connectionID)") }
        let secret = Identifiers.newVirtualKey()
        let now = nowMillis()
        var record = VirtualKeyRecord(id: Identifiers.make("vk"), name: name, keyHash: Crypto.sha256Hex(secret),
                                      displayPrefix: Identifiers.displayPrefix(of: secret), connectionID: connectionID,
                                      createdAt: now, updatedAt: now)
        Self.apply(limits, to: &record)
        try await store.createVirtualKey(record, actor: actor)
        return (VirtualKeyView(record), secret)
    }

    func keys() async throws -> [VirtualKeyView] { try await store.virtualKeys().map { VirtualKeyView($0) } }

    func key(id: String) async throws -> VirtualKeyView {
        guard let k = try await store.virtualKey(id: id) else { throw StoreError(.notFound, "no virtual key with id \(id)") }
        return VirtualKeyView(k, usage: try await store.usageTotals(UsageQuery(virtualKeyID: id)))
    }

    func updateKey(id: String, limits: KeyLimits) async throws -> VirtualKeyView {
        try Self.validate(limits)
        guard var k = try await store.virtualKey(id: id) else { throw StoreError(.notFound, "no virtual key with id \(id)") }
        Self.apply(limits, to: &k)
        k.updatedAt = nowMillis()
        try await store.updateVirtualKey(k, actor: actor)
        return VirtualKeyView(k)
    }

    func removeKey(id: String) async throws { try await store.deleteVirtualKey(id: id, actor: actor) }

    func usage(_ query: UsageQuery) async throws -> [UsageView] { try await store.usageTotals(query).map(UsageView.init) }

    /// Records `query` selects, oldest first, after `after`; `next` is set when the page is full.
    func usageRecords(_ query: UsageQuery, after: UsageCursor?, limit: Int) async throws -> UsageRecordsPage {
        guard (1...Self.maxPage).contains(limit) else { throw StoreError(.invalid, "limit must be 1 to \(Self.maxPage), got \(limit)") }
        let records = try await store.usagePage(query, after: after, limit: limit)
        return UsageRecordsPage(records: records.map(UsageRecordView.init),
                                next: records.count == limit ? records.last.map { UsageCursor(after: $0).text } : nil)
    }

    static let maxPage = 10_000

    /// Deletes every usage record that started before `before` (Unix ms, not in the future), in short
    /// batches, and audits how many went.
    func pruneUsage(before: Int64) async throws -> UsagePruned {
        guard before <= nowMillis() else {
            throw StoreError(.invalid, "before must not be in the future (\(isoTime(before))): records still being written would go")
        }
        let deleted = try await store.pruneUsage(startedBefore: before, batch: 5000, lane: .normal)
        try await store.recordAudit(actor, action: "prune", objectType: "usage", objectID: "usage_records",
                                    detail: "\(deleted) record(s) that started before \(isoTimeMillis(before))")
        return UsagePruned(deleted: deleted, before: isoTimeMillis(before))
    }

    // MARK: Validation

    /// Refuses impossible limits, before anything is looked up or written.
    static func validate(_ l: KeyLimits) throws {
        if let v = l.tps, !(v >= 0 && v.isFinite) { throw StoreError(.invalid, "tps must be 0 (unlimited) or more, got \(v)") }
        if let v = l.burst, !(v >= 0 && v.isFinite) { throw StoreError(.invalid, "burst must be 0 (default) or more, got \(v)") }
        if let v = l.tokensPerMinute, v < 0 { throw StoreError(.invalid, "tokens must be 0 (unlimited) or more, got \(v)") }
        if let v = l.maxConcurrent, v < 0 { throw StoreError(.invalid, "max-concurrent must be 0 (unlimited) or more, got \(v)") }
    }

    /// Sets the limits given (validated) on `k`; nil fields leave it as it is.
    static func apply(_ l: KeyLimits, to k: inout VirtualKeyRecord) {
        if let v = l.tps { k.requestsPerSecond = v }
        if let v = l.burst { k.burst = v }
        if let v = l.tokensPerMinute { k.tokensPerMinute = v }
        if let v = l.maxConcurrent { k.maxConcurrent = v }
        if let v = l.expiresAt { k.expiresAt = v }
        if let v = l.models { k.allowedModels = v }
        if let v = l.disabled { k.disabled = v }
    }

    static func validName(_ name: String, what: String) throws -> String {
        let trimmed = name.trimmingSpaces()
        guard !trimmed.isEmpty, trimmed.count <= 200, !trimmed.contains(where: { $0.isNewline }) else {
            throw StoreError(.invalid, "a \(what) name must be 1 to 200 characters on one line")
        }
        return trimmed
    }

    static func validEndpoint(_ text: String) throws -> String {
        var e = text.trimmingSpaces()
        while e.hasSuffix("/") { e.removeLast() }
        let lower = e.lowercased()
        let rest: Substring
        if lower.hasPrefix("https://") { rest = e.dropFirst(8) } else if lower.hasPrefix("http://") { rest = e.dropFirst(7) } else {
            throw StoreError(.invalid, "endpoint must be an http:// or https:// URL, got \"\(text)\"")
        }
        let host = rest.prefix(while: { $0 != "/" && $0 != "?" })
        guard !host.isEmpty, !host.contains(where: { $0.isWhitespace }), !host.contains("@"), !rest.contains("?"), !rest.contains("#") else {
            throw StoreError(.invalid, "endpoint must be a URL like https://api.openai.com/v1 (no credentials, query or fragment), got \"\(text)\"")
        }
        return e
    }
}

extension UsageQuery {
    /// A usage filter as given on the CLI (`--vkey`, `--since`, `--until`) or in the admin API's query:
    /// times are dates or durations ago; `invalid` makes the caller's own error for a time that is neither,
    /// from the field's name.
    static func parsing(vkey: String?, since: String?, until: String?, invalid: (String) -> any Error) throws -> UsageQuery {
        var q = UsageQuery(virtualKeyID: vkey)
        for (name, text) in [("since", since), ("until", until)] {
            guard let text else { continue }
            guard let t = parseTime(text, future: false) else { throw invalid(name) }
            if name == "since" { q.since = t } else { q.until = t }
        }
        return q
    }
}

/// Unix milliseconds as RFC 3339 UTC.
func isoTime(_ ms: Int64) -> String {
    Date(timeIntervalSince1970: Double(ms) / 1000).formatted(.iso8601)
}

/// Unix milliseconds as RFC 3339 UTC with the milliseconds (`2026-11-29T15:04:05.123Z`), exact for any
/// whole millisecond.
func isoTimeMillis(_ ms: Int64) -> String {
    let seconds = ms >= 0 ? ms / 1000 : (ms - 999) / 1000
    let base = isoTime(seconds * 1000)  // "…:05Z"
    let frac = ms - seconds * 1000
    return base.dropLast() + "." + String(String(frac + 1000).dropFirst()) + "Z"
}

extension String {
    func trimmingSpaces() -> String {
        var s = Substring(self)
        while let f = s.first, f.isWhitespace { s = s.dropFirst() }
        while let l = s.last, l.isWhitespace { s = s.dropLast() }
        return String(s)
    }
}

/// An expiry as given on the CLI or in the admin API: `never` (`.some(nil)`), a date, or a duration from
/// now; nil if it is none of these.
func parseExpiry(_ text: String) -> Int64?? {
    if text == "never" { return .some(nil) }
    return parseTime(text, future: true).map { .some($0) }
}
