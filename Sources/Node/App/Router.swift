import Storage
/// Routes requests by method and path. Built once at start-up; lookups do not allocate.
///
/// A route is either an async closure (run as a task on the connection's loop; what most routes need) or
/// an `HTTPHandler` called on the loop directly (the proxy path, which waits on callbacks and starts a
/// task only when it has to).
public struct Router: HTTPHandler {
    public typealias Handler = @Sendable (HTTPRequest, HTTPResponseWriter) async -> Void

    enum Target {
        case task(Handler)
        case onLoop(any HTTPHandler)
    }

    struct Route {
        var method: HTTPMethod?
        var path: String
        var isPrefix: Bool
        var target: Target
    }

    /// Keyed by `Substring` so that a request's path (a slice of its head) is looked up as it is: a
    /// `String` key would mean a `String(path)`, a heap copy for any path over 15 bytes.
    private var exact: [Substring: [Route]] = [:]
    /// Routes under each prefix, longest prefix first, and whether an exact route lies beneath it.
    private var prefixes: [(path: String, routes: [Route], exactBeneath: Bool)] = []

    public init() {}

    /// `method` nil matches any method; `HEAD` is served by `GET` routes.
    public mutating func add(_ method: HTTPMethod?, _ path: String, _ handler: @escaping Handler) {
        exact[Substring(path), default: []].append(Route(method: method, path: path, isPrefix: false, target: .task(handler)))
        for i in prefixes.indices where path.utf8.starts(with: prefixes[i].path.utf8) { prefixes[i].exactBeneath = true }
    }

    /// Everything under `prefix` (which should end in `/`).
    public mutating func addPrefix(_ method: HTTPMethod?, _ prefix: String, _ handler: @escaping Handler) {
        addPrefix(Route(method: method, path: prefix, isPrefix: true, target: .task(handler)))
    }

    /// Everything under `prefix`, handed to `handler` on the connection's loop.
    public mutating func addPrefix(_ method: HTTPMethod?, _ prefix: String, onLoop handler: any HTTPHandler) {
        addPrefix(Route(method: method, path: prefix, isPrefix: true, target: .onLoop(handler)))
    }

    private mutating func addPrefix(_ route: Route) {
        if let i = prefixes.firstIndex(where: { $0.path == route.path }) {
            prefixes[i].routes.append(route)
        } else {
            prefixes.append((route.path, [route], exact.keys.contains { $0.utf8.starts(with: route.path.utf8) }))
            prefixes.sort { $0.path.utf8.count > $1.path.utf8.count }
        }
    }

    public func handle(_ request: HTTPRequest, _ response: HTTPResponseWriter) {
        let path = request.path
        // Exact routes first, but a path under a prefix no exact route shares (every `/v1/` request) skips
        // the hashed lookup.
        let group = prefixes.first(where: { path.hasUTF8Prefix($0.path) })
        var candidates: [Route] = group?.exactBeneath == false ? [] : exact[path] ?? []
        if candidates.isEmpty, let group { candidates = group.routes }
        guard !candidates.isEmpty else {
            response.respond(status: 404, headers: ["content-type": "application/json"],
                             body: APIErrorBody.openAI(message: "no route for \(request.method) \(path)", type: "invalid_request_error", code: "not_found"))
            return
        }
        let method = request.method == .HEAD ? HTTPMethod.GET : request.method
        if let route = candidates.first(where: { $0.method == nil || $0.method == method }) {
            switch route.target {
            case .task(let handler): response.runTask { await handler(request, response) }
            case .onLoop(let handler): handler.handle(request, response)
            }
            return
        }
        let allowed = Set(candidates.compactMap { $0.method?.rawValue }).sorted().joined(separator: ", ")
        response.respond(status: 405, headers: ["content-type": "application/json", "allow": allowed],
                         body: APIErrorBody.openAI(message: "method \(request.method) not allowed on \(path); allowed: \(allowed)", type: "invalid_request_error", code: "method_not_allowed"))
    }
}

/// Error bodies in each API's own shape.
public enum APIErrorBody {
    /// `{"error":{"message","type","param","code"}}`
    public static func openAI(message: String, type: String, code: String?, param: String? = nil) -> [UInt8] {
        let c = code.map { "\"\(jsonEscape($0))\"" } ?? "null"
        let p = param.map { "\"\(jsonEscape($0))\"" } ?? "null"
        return Array("{\"error\":{\"message\":\"\(jsonEscape(message))\",\"type\":\"\(jsonEscape(type))\",\"param\":\(p),\"code\":\(c)}}".utf8)
    }

    /// `{"type":"error","error":{"type","message"}}`
    public static func anthropic(message: String, type: String) -> [UInt8] {
        Array("{\"type\":\"error\",\"error\":{\"type\":\"\(jsonEscape(type))\",\"message\":\"\(jsonEscape(message))\"}}".utf8)
    }
}
