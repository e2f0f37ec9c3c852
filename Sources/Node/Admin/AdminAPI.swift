import FoundationEssentials
import Storage

/// `/admin/*`: the admin service over HTTP, JSON in and out, guarded by the admin key (compared in
/// constant time). Every change is audited and bumps the store revision (in `Store`), and is announced
/// on Redis so other nodes drop cached keys at once.
struct AdminAPI: Sendable {
    let service: AdminService
    let adminKeyHash: [UInt8]
    let announce: @Sendable () -> Void
    static let maxBody = 64 * 1024

    func install(into router: inout Router) {
        router.addPrefix(nil, "/admin/") { request, response in await handle(request, response) }
    }

    struct NewConnection: Decodable {
        var name: String
        var provider: String
        var endpoint: String?
        var api_key: String
        var api_version: String?
    }

    struct KeyFields: Decodable {
        var name: String?
        var connection_id: String?
        var tps: Double?
        var burst: Double?
        var tokens_per_minute: Int64?
        var max_concurrent: Int?
        var expires_at: String?
        var models: [String]?
        var disabled: Bool?
    }

    struct CreatedKey: Encodable {
        var id: String
        var key: String
        var name: String
        var connection_id: String
    }

    func handle(_ request: HTTPRequest, _ response: HTTPResponseWriter) async {
        guard let key = ProxyHandler.clientKey(request.headers),
              Crypto.constantTimeEquals(Array(Crypto.sha256Hex(key).utf8), adminKeyHash) else {
            return fail(response, 401, "unauthorized", "missing or wrong admin key (Authorization: Bearer <LLM_PROXY_ADMIN_KEY>)")
        }
        if request.body.count > Self.maxBody { return fail(response, 413, "too_large", "admin request bodies are limited to 64 KiB") }
        let parts = request.path.split(separator: "/", omittingEmptySubsequences: true).map(String.init)  // ["admin", …]
        let method = request.method
        let rest = Array(parts.dropFirst())
        let resource = rest.first ?? ""
        let target: String? = rest.count == 2 ? rest[1] : nil
        if rest.count > 2 || rest.isEmpty { return fail(response, 404, "not_found", "no admin route for \(method) \(request.path)") }
        do {
            switch (method, resource, target) {
            case (.GET, "openapi.json", nil):
                response.respond(status: 200, headers: ["content-type": "application/json"], body: Array(AdminOpenAPI.document.utf8))
            case (.GET, "connections", nil):
                try ok(response, 200, try await service.connections())
            case (.POST, "connections", nil):
                let b = try decode(NewConnection.self, request)
                let c = try await service.addConnection(name: b.name, provider: b.provider, endpoint: b.endpoint, apiKey: b.api_key, apiVersion: b.api_version)
                changed()
                try ok(response, 201, c)
            case (.GET, "connections", .some(let id)):
                try ok(response, 200, try await service.connection(id: id))
            case (.DELETE, "connections", .some(let id)):
                var force = false
                for pair in (request.query ?? "").split(separator: "&") where pair.hasPrefix("force=") {
                    switch pair.dropFirst(6) {
                    case "true": force = true
                    case "false": force = false
                    default: throw StoreError(.invalid, "force must be true or false")
                    }
                }
                try await service.removeConnection(id: id, force: force)
                changed()
                response.respond(status: 204)
            case (.GET, "vkeys", nil):
                try ok(response, 200, try await service.keys())
            case (.POST, "vkeys", nil):
                let b = try decode(KeyFields.self, request)
                guard let name = b.name, let conn = b.connection_id else {
                    throw StoreError(.invalid, "name and connection_id are required")
                }
                let (k, secret) = try await service.addKey(name: name, connectionID: conn, limits: try limits(b))
                changed()
                try ok(response, 201, CreatedKey(id: k.id, key: secret, name: k.name, connection_id: k.connection_id))
            case (.GET, "vkeys", .some(let id)):
                try ok(response, 200, try await service.key(id: id))
            case (.PATCH, "vkeys", .some(let id)):
                let b = try decode(KeyFields.self, request)
                if b.name != nil || b.connection_id != nil { throw StoreError(.invalid, "name and connection_id cannot be changed") }
                let l = try limits(b)
                if l == KeyLimits() {
                    try ok(response, 200, try await service.key(id: id))  // nothing to change
                } else {
                    let k = try await service.updateKey(id: id, limits: l)
                    changed()
                    try ok(response, 200, k)
                }
            case (.DELETE, "vkeys", .some(let id)):
                try await service.removeKey(id: id)
                changed()
                response.respond(status: 204)
            case (.GET, "usage", nil):
                try ok(response, 200, try await service.usage(try Self.usageQuery(request.query)))
            case (.GET, "usage", "records"):
                let params = Self.queryParameters(request.query)
                var after: UsageCursor?
                if let text = params["after"] {
                    guard let c = UsageCursor(text: text) else { throw StoreError(.invalid, "after must be a page's next value, got \"\(text)\"") }
                    after = c
                }
                var limit = 1000
                if let text = params["limit"] {
                    guard let n = Int(text) else { throw StoreError(.invalid, "limit must be a number from 1 to \(AdminService.maxPage)") }
                    limit = n
                }
                try ok(response, 200, try await service.usageRecords(try Self.usageQuery(request.query), after: after, limit: limit))
            case (.DELETE, "usage", nil):
                var before: Int64?
                if let text = Self.queryParameters(request.query)["before"] {
                    guard let t = parseTime(text, future: false) else {
                        throw StoreError(.invalid, "before must be a date (2026-12-31, RFC 3339) or a duration ago (90d, 12h)")
                    }
                    before = t
                }
                guard let before else {
                    throw StoreError(.invalid, "before is required (e.g. ?before=90d): usage records that started before it are deleted")
                }
                try ok(response, 200, try await service.pruneUsage(before: before))
            default:
                let allowed: String? = switch (resource, target == nil) {
                case ("connections", true), ("vkeys", true): "GET, POST"
                case ("connections", false): "GET, DELETE"
                case ("vkeys", false): "GET, PATCH, DELETE"
                case ("usage", true): "GET, DELETE"
                case ("usage", false) where target == "records": "GET"
                case ("openapi.json", true): "GET"
                default: nil
                }
                if let allowed {
                    fail(response, 405, "method_not_allowed", "\(method) is not allowed on \(request.path); allowed: \(allowed)", allow: allowed)
                } else {
                    fail(response, 404, "not_found", "no admin route for \(method) \(request.path)")
                }
            }
        } catch let e as StoreError {
            let (status, code): (Int, String) = switch e.code {
            case .invalid: (400, "invalid_request")
            case .notFound: (404, "not_found")
            case .duplicate: (409, "duplicate")
            case .inUse: (409, "in_use")
            case .unavailable: (503, "store_unavailable")
            default: (500, "internal_error")
            }
            fail(response, status, code, e.message)
        } catch let e as DecodingError {
            fail(response, 400, "invalid_json", "malformed JSON body: \(Self.describe(e))")
        } catch {
            fail(response, 400, "invalid_request", "\(error)")
        }
    }

    private func changed() { announce() }

    /// A query string's parameters, percent-decoded (the last of a repeated name wins).
    static func queryParameters(_ query: Substring?) -> [String: String] {
        var out: [String: String] = [:]
        for pair in (query ?? "").split(separator: "&") {
            let kv = pair.split(separator: "=", maxSplits: 1).map(String.init)
            guard kv.count == 2 else { continue }
            out[kv[0]] = kv[1].removingPercentEncodingLite()
        }
        return out
    }

    /// `vkey`, `since` and `until` from a query string.
    static func usageQuery(_ query: Substring?) throws -> UsageQuery {
        let params = queryParameters(query)
        return try UsageQuery.parsing(vkey: params["vkey"], since: params["since"], until: params["until"]) { name in
            StoreError(.invalid, "\(name) must be a date (2026-12-31, RFC 3339) or a duration ago (24h, 7d)")
        }
    }

    private func limits(_ b: KeyFields) throws -> KeyLimits {
        var l = KeyLimits(tps: b.tps, burst: b.burst, tokensPerMinute: b.tokens_per_minute, maxConcurrent: b.max_concurrent)
        if let e = b.expires_at {
            guard let t = parseExpiry(e) else { throw StoreError(.invalid, "expires_at must be a date, a duration (30d) or never") }
            l.expiresAt = t
        }
        l.models = b.models
        l.disabled = b.disabled
        return l
    }

    private func decode<T: Decodable>(_ type: T.Type, _ request: HTTPRequest) throws -> T {
        guard !request.body.isEmpty else { throw StoreError(.invalid, "a JSON body is required") }
        return try JSONDecoder().decode(type, from: Data(request.body))
    }

    private func ok<T: Encodable>(_ response: HTTPResponseWriter, _ status: Int, _ value: T) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        response.respond(status: status, headers: ["content-type": "application/json"], body: Array(try encoder.encode(value)))
    }

    private func fail(_ response: HTTPResponseWriter, _ status: Int, _ code: String, _ message: String, allow: String? = nil) {
        var headers: HTTPHeaders = ["content-type": "application/json"]
        if let allow { headers.add("allow", allow) }
        response.respond(status: status, headers: headers,
                         body: Array("{\"error\":{\"message\":\"\(jsonEscape(message))\",\"type\":\"admin_error\",\"code\":\"\(code)\"}}".utf8))
    }

    static func describe(_ e: DecodingError) -> String {
        switch e {
        case .keyNotFound(let k, _): "missing field \"\(k.stringValue)\""
        case .typeMismatch(_, let c): "wrong type at \(c.codingPath.map(\.stringValue).joined(separator: "."))"
        case .valueNotFound(_, let c): "missing value at \(c.codingPath.map(\.stringValue).joined(separator: "."))"
        case .dataCorrupted(let c): c.codingPath.isEmpty ? "not valid JSON" : "invalid value at \(c.codingPath.map(\.stringValue).joined(separator: "."))"
        @unknown default: "invalid"
        }
    }
}

extension String {
    /// `%XX` and `+` decoding for query values.
    func removingPercentEncodingLite() -> String {
        var out: [UInt8] = []
        let b = Array(utf8)
        var i = 0
        while i < b.count {
            if b[i] == UInt8(ascii: "%"), i + 2 < b.count, let v = UInt8(String(decoding: b[(i + 1)...(i + 2)], as: UTF8.self), radix: 16) {
                out.append(v)
                i += 3
            } else {
                out.append(b[i] == UInt8(ascii: "+") ? UInt8(ascii: " ") : b[i])
                i += 1
            }
        }
        return String(decoding: out, as: UTF8.self)
    }
}
