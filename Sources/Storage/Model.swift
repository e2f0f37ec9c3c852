/// Which API a connection speaks upstream.
public enum Provider: String, Sendable, CaseIterable, Codable {
    case openai, azure, anthropic

    /// The endpoint used when a connection does not name one (azure has none: it is per resource).
    public var defaultEndpoint: String? {
        switch self {
        case .openai: "https://api.openai.com/v1"
        case .anthropic: "https://api.anthropic.com/v1"
        case .azure: nil
        }
    }
}

/// A provider connection as stored: the API key only in encrypted form.
public struct ConnectionRecord: Sendable, Equatable {
    public var id: String
    public var name: String
    public var provider: Provider
    public var endpoint: String
    /// AES-256-GCM sealed provider key (see `SecretBox`).
    public var encryptedAPIKey: [UInt8]
    /// Provider options, e.g. Azure `api-version`.
    public var options: [String: String]
    public var createdAt: Int64
    public var updatedAt: Int64

    public init(id: String, name: String, provider: Provider, endpoint: String, encryptedAPIKey: [UInt8],
                options: [String: String] = [:], createdAt: Int64, updatedAt: Int64) {
        self.id = id
        self.name = name
        self.provider = provider
        self.endpoint = endpoint
        self.encryptedAPIKey = encryptedAPIKey
        self.options = options
        self.createdAt = createdAt
        self.updatedAt = updatedAt
    }
}

/// A virtual key as stored: only the SHA-256 of the key and a short prefix for display.
public struct VirtualKeyRecord: Sendable, Equatable {
    public var id: String
    public var name: String
    /// Lower-case hex SHA-256 of the full key.
    public var keyHash: String
    /// The first characters of the key, for people to recognise it (`sk-llmp-AbCd`).
    public var displayPrefix: String
    public var connectionID: String
    /// Requests per second (0 = unlimited); fractional allowed.
    public var requestsPerSecond: Double
    /// Request burst (bucket capacity); 0 = default `max(1, requestsPerSecond)`.
    public var burst: Double
    /// Tokens per minute (0 = unlimited).
    public var tokensPerMinute: Int64
    /// Unix milliseconds after which the key stops working; nil = never.
    public var expiresAt: Int64?
    /// Models the key may use; empty = any.
    public var allowedModels: [String]
    /// In-flight requests at most; 0 = unlimited.
    public var maxConcurrent: Int
    public var disabled: Bool
    public var createdAt: Int64
    public var updatedAt: Int64

    public init(id: String, name: String, keyHash: String, displayPrefix: String, connectionID: String,
                requestsPerSecond: Double = 0, burst: Double = 0, tokensPerMinute: Int64 = 0, expiresAt: Int64? = nil,
                allowedModels: [String] = [], maxConcurrent: Int = 0, disabled: Bool = false,
                createdAt: Int64, updatedAt: Int64) {
        self.id = id
        self.name = name
        self.keyHash = keyHash
        self.displayPrefix = displayPrefix
        self.connectionID = connectionID
        self.requestsPerSecond = requestsPerSecond
        self.burst = burst
        self.tokensPerMinute = tokensPerMinute
        self.expiresAt = expiresAt
        self.allowedModels = allowedModels
        self.maxConcurrent = maxConcurrent
        self.disabled = disabled
        self.createdAt = createdAt
        self.updatedAt = updatedAt
    }
}

/// One proxied request, as accounted.
public struct UsageRecord: Sendable, Equatable {
    /// The id: as given, or a new time-ordered one kept as its two numbers and written out
    /// (`Identifiers.timeOrdered`) only when read. A 30-character id is a heap string; made for every
    /// request on the event loop and freed, cold, when its batch had been written, it cost an allocation
    /// there and the writer ~60 µs a batch of 500 to free (which it paced with sleeps, waking threads on the
    /// loop's core). Read once, on a store thread, it is allocated and freed there while hot.
    public var id: String {
        get {
            switch idParts {
            case .text(let s): s
            case .timeOrdered(let millis, let unique): Identifiers.timeOrdered(Self.idPrefix, millis: millis, unique: unique)
            }
        }
        set { idParts = .text(newValue) }
    }
    private var idParts: IDParts
    public var virtualKeyID: String
    public var connectionID: String
    public var model: String
    public var promptTokens: Int64
    public var completionTokens: Int64
    /// True when the provider reported no usage and the counts were estimated.
    public var estimated: Bool
    public var statusCode: Int
    public var latencyMillis: Int64
    public var stream: Bool
    public var startedAt: Int64
    public var endedAt: Int64
    public var nodeID: String

    public init(id: String, virtualKeyID: String, connectionID: String, model: String, promptTokens: Int64,
                completionTokens: Int64, estimated: Bool = false, statusCode: Int, latencyMillis: Int64,
                stream: Bool, startedAt: Int64, endedAt: Int64, nodeID: String) {
        self.idParts = .text(id)
        self.virtualKeyID = virtualKeyID
        self.connectionID = connectionID
        self.model = model
        self.promptTokens = promptTokens
        self.completionTokens = completionTokens
        self.estimated = estimated
        self.statusCode = statusCode
        self.latencyMillis = latencyMillis
        self.stream = stream
        self.startedAt = startedAt
        self.endedAt = endedAt
        self.nodeID = nodeID
    }

    /// A record with a new id, `u_` + the milliseconds it ended at + a `UniqueNumbers` value
    /// (`Identifiers.makeTimeOrdered`), written out when `id` is read.
    public init(newIDEndingAt endedAt: Int64, virtualKeyID: String, connectionID: String, model: String, promptTokens: Int64,
                completionTokens: Int64, estimated: Bool = false, statusCode: Int, latencyMillis: Int64,
                stream: Bool, startedAt: Int64, nodeID: String) {
        self.init(id: "", virtualKeyID: virtualKeyID, connectionID: connectionID, model: model, promptTokens: promptTokens,
                  completionTokens: completionTokens, estimated: estimated, statusCode: statusCode, latencyMillis: latencyMillis,
                  stream: stream, startedAt: startedAt, endedAt: endedAt, nodeID: nodeID)
        idParts = .timeOrdered(millis: endedAt, unique: UniqueNumbers.next())
    }

    static let idPrefix = "u"

    private enum IDParts: Sendable {
        case text(String)
        case timeOrdered(millis: Int64, unique: UInt64)
    }

    /// Equal when every field is, the id by its text (a new id and the same id read back are equal).
    public static func == (a: UsageRecord, b: UsageRecord) -> Bool {
        a.id == b.id && a.virtualKeyID == b.virtualKeyID && a.connectionID == b.connectionID && a.model == b.model
            && a.promptTokens == b.promptTokens && a.completionTokens == b.completionTokens && a.estimated == b.estimated
            && a.statusCode == b.statusCode && a.latencyMillis == b.latencyMillis && a.stream == b.stream
            && a.startedAt == b.startedAt && a.endedAt == b.endedAt && a.nodeID == b.nodeID
    }
}

/// Usage summed per key and model.
public struct UsageTotal: Sendable, Equatable {
    public var virtualKeyID: String
    public var model: String
    public var requests: Int64
    public var promptTokens: Int64
    public var completionTokens: Int64

    public init(virtualKeyID: String, model: String, requests: Int64, promptTokens: Int64, completionTokens: Int64) {
        self.virtualKeyID = virtualKeyID
        self.model = model
        self.requests = requests
        self.promptTokens = promptTokens
        self.completionTokens = completionTokens
    }
}

/// A filter on usage: key and half-open time range [since, until) in Unix milliseconds.
public struct UsageQuery: Sendable, Equatable {
    public var virtualKeyID: String?
    public var since: Int64?
    public var until: Int64?

    public init(virtualKeyID: String? = nil, since: Int64? = nil, until: Int64? = nil) {
        self.virtualKeyID = virtualKeyID
        self.since = since
        self.until = until
    }
}

/// Where a page of usage records ended: the last record's start time and id. Pages are ordered by
/// (`startedAt`, `id`), so the next page starts strictly after it. Its text form, `<startedAt>.<id>`, is
/// what the admin API hands out as `next`.
public struct UsageCursor: Sendable, Equatable {
    public var startedAt: Int64
    public var id: String

    public init(startedAt: Int64, id: String) {
        self.startedAt = startedAt
        self.id = id
    }

    public init(after record: UsageRecord) { self.init(startedAt: record.startedAt, id: record.id) }

    /// Parses `<startedAt>.<id>`; nil for anything else.
    public init?(text: String) {
        guard let dot = text.firstIndex(of: "."), let t = Int64(text[..<dot]), t >= 0 else { return nil }
        let id = String(text[text.index(after: dot)...])
        guard !id.isEmpty, id.utf8.count <= 200 else { return nil }
        self.init(startedAt: t, id: id)
    }

    public var text: String { "\(startedAt).\(id)" }
}

/// Who did what to which object, and when. Never holds a secret.
public struct AuditEvent: Sendable, Equatable {
    public var id: Int64
    public var at: Int64
    public var actor: String
    public var action: String
    public var objectType: String
    public var objectID: String
    public var detail: String

    public init(id: Int64 = 0, at: Int64, actor: String, action: String, objectType: String, objectID: String, detail: String = "") {
        self.id = id
        self.at = at
        self.actor = actor
        self.action = action
        self.objectType = objectType
        self.objectID = objectID
        self.detail = detail
    }
}

/// Who is making an admin change (for the audit trail).
public struct AuditActor: Sendable, Equatable {
    public var name: String
    public init(_ name: String) { self.name = name }
    public static let cli = AuditActor("cli")
}
