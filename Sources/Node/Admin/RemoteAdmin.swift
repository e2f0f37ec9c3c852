import FoundationEssentials
import Storage

/// What the admin CLI needs, whether it works on the store or on a node's admin API.
protocol AdminBackend: Sendable {
    func addConnection(name: String, provider: String, endpoint: String?, apiKey: String, apiVersion: String?) async throws -> ConnectionView
    func connections() async throws -> [ConnectionView]
    func connection(id: String) async throws -> ConnectionView
    func removeConnection(id: String, force: Bool) async throws
    func addKey(name: String, connectionID: String, limits: KeyLimits) async throws -> (VirtualKeyView, String)
    func keys() async throws -> [VirtualKeyView]
    func key(id: String) async throws -> VirtualKeyView
    func updateKey(id: String, limits: KeyLimits) async throws -> VirtualKeyView
    func removeKey(id: String) async throws
    func usage(_ query: UsageQuery) async throws -> [UsageView]
    func usageRecords(_ query: UsageQuery, after: UsageCursor?, limit: Int) async throws -> UsageRecordsPage
    func pruneUsage(before: Int64) async throws -> UsagePruned
}

extension AdminService: AdminBackend {}

/// The admin CLI against a running node (`--server URL --admin-key KEY`), over `/admin/*`. A CLI process
/// makes one blocking call at a time, so a plain curl easy handle serves.
struct RemoteAdmin: AdminBackend {
    let baseURL: String
    let adminKey: String

    struct Created: Decodable { var id: String; var key: String; var name: String; var connection_id: String }
    struct ErrorBody: Decodable { struct E: Decodable { var message: String; var code: String? }; var error: E }

    func addConnection(name: String, provider: String, endpoint: String?, apiKey: String, apiVersion: String?) async throws -> ConnectionView {
        var body: [String: String] = ["name": name, "provider": provider, "api_key": apiKey]
        body["endpoint"] = endpoint
        body["api_version"] = apiVersion
        return try call("POST", "/admin/connections", body: Array(try JSONEncoder().encode(body)))
    }

    func connections() async throws -> [ConnectionView] { try call("GET", "/admin/connections") }
    func connection(id: String) async throws -> ConnectionView { try call("GET", "/admin/connections/\(escape(id))") }

    func removeConnection(id: String, force: Bool) async throws {
        let _: Empty = try call("DELETE", "/admin/connections/\(escape(id))" + (force ? "?force=true" : ""))
    }

    func addKey(name: String, connectionID: String, limits: KeyLimits) async throws -> (VirtualKeyView, String) {
        var body = Self.fields(limits)
        body["name"] = .string(name)
        body["connection_id"] = .string(connectionID)
        let created: Created = try call("POST", "/admin/vkeys", body: Array(JSONValueText.object(body).utf8))
        let view: VirtualKeyView = try call("GET", "/admin/vkeys/\(escape(created.id))")
        return (view, created.key)
    }

    func keys() async throws -> [VirtualKeyView] { try call("GET", "/admin/vkeys") }
    func key(id: String) async throws -> VirtualKeyView { try call("GET", "/admin/vkeys/\(escape(id))") }

    func updateKey(id: String, limits: KeyLimits) async throws -> VirtualKeyView {
        try call("PATCH", "/admin/vkeys/\(escape(id))", body: Array(JSONValueText.object(Self.fields(limits)).utf8))
    }

    func removeKey(id: String) async throws { let _: Empty = try call("DELETE", "/admin/vkeys/\(escape(id))") }

    func usage(_ q: UsageQuery) async throws -> [UsageView] {
        let params = Self.parameters(q)
        return try call("GET", "/admin/usage" + (params.isEmpty ? "" : "?" + params.joined(separator: "&")))
    }

    func usageRecords(_ q: UsageQuery, after: UsageCursor?, limit: Int) async throws -> UsageRecordsPage {
        var params = Self.parameters(q) + ["limit=\(limit)"]
        if let after { params.append("after=\(escape(after.text))") }
        return try call("GET", "/admin/usage/records?" + params.joined(separator: "&"))
    }

    /// A usage query as `/admin/usage` parameters; times to the millisecond, so nothing shifts on the way.
    private static func parameters(_ q: UsageQuery) -> [String] {
        var params: [String] = []
        if let k = q.virtualKeyID { params.append("vkey=\(escape(k))") }
        if let s = q.since { params.append("since=\(escape(isoTimeMillis(s)))") }
        if let u = q.until { params.append("until=\(escape(isoTimeMillis(u)))") }
        return params
    }

    func pruneUsage(before: Int64) async throws -> UsagePruned {
        // A large prune runs for a while on the node: wait up to an hour rather than the usual 30 s.
        try call("DELETE", "/admin/usage?before=\(escape(isoTimeMillis(before)))", timeoutMillis: 3_600_000)
    }

    // MARK: HTTP

    struct Empty: Decodable {}

    static func fields(_ l: KeyLimits) -> [String: JSONValueText] {
        var f: [String: JSONValueText] = [:]
        if let v = l.tps { f["tps"] = .number(v) }
        if let v = l.burst { f["burst"] = .number(v) }
        if let v = l.tokensPerMinute { f["tokens_per_minute"] = .number(Double(v)) }
        if let v = l.maxConcurrent { f["max_concurrent"] = .number(Double(v)) }
        if let e = l.expiresAt { f["expires_at"] = .string(e.map(isoTime) ?? "never") }
        if let m = l.models { f["models"] = .array(m.map { .string($0) }) }
        if let d = l.disabled { f["disabled"] = .bool(d) }
        return f
    }

    private func escape(_ s: String) -> String { Self.escape(s) }
    private static func escape(_ s: String) -> String { ProviderRouting.percentEncodePathSegment(s) }

    private func call<T: Decodable>(_ method: String, _ path: String, body: [UInt8]? = nil, timeoutMillis: Int = 30_000) throws -> T {
        let (status, data) = try perform(method, path, body: body, timeoutMillis: timeoutMillis)
        if (200..<300).contains(status) {
            if status == 204 || data.isEmpty, let empty = Empty() as? T { return empty }
            return try JSONDecoder().decode(T.self, from: Data(data))
        }
        let message = (try? JSONDecoder().decode(ErrorBody.self, from: Data(data)))?.error.message ?? "HTTP \(status) from \(baseURL)"
        let code: StoreError.Code = switch status {
        case 400, 413: .invalid
        case 404: .notFound
        case 409: message.contains("used by") ? .inUse : .duplicate
        case 401: .invalid
        default: .unavailable
        }
        throw StoreError(code, status == 401 ? "the node refused the admin key: \(message)" : message)
    }

    private func perform(_ method: String, _ path: String, body: [UInt8]?, timeoutMillis: Int) throws -> (Int, [UInt8]) {
        let base = baseURL.hasSuffix("/") ? String(baseURL.dropLast()) : baseURL
        return try BlockingHTTP.request(method, base + path, headers: ["Authorization: Bearer \(adminKey)", "Content-Type: application/json"], body: body,
                                        timeoutMillis: timeoutMillis)
    }
}

/// A JSON value written in key order as given (dictionary keys sorted), for request bodies.
enum JSONValueText {
    case string(String)
    case number(Double)
    case bool(Bool)
    case array([JSONValueText])

    var text: String {
        switch self {
        case .string(let s): "\"\(jsonEscape(s))\""
        case .number(let d): d == d.rounded() && abs(d) < 1e15 ? String(Int64(d)) : String(d)
        case .bool(let b): b ? "true" : "false"
        case .array(let a): "[" + a.map(\.text).joined(separator: ",") + "]"
        }
    }

    static func object(_ fields: [String: JSONValueText]) -> String {
        "{" + fields.sorted { $0.key < $1.key }.map { "\"\(jsonEscape($0.key))\":\($0.value.text)" }.joined(separator: ",") + "}"
    }
}
