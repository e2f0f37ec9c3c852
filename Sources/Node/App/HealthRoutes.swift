import Storage

/// What `/readyz` reports on.
struct ReadinessSources: Sendable {
    var server: @Sendable () -> HTTPServer?
    var limiter: @Sendable () -> Limiter? = { nil }
    /// Seconds since the store last answered, nil if never.
    var storeSilence: @Sendable () -> Double? = { 0 }
    var cachedKeys: @Sendable () -> Int = { 0 }
    var redisHealth: @Sendable () -> String = { "off" }
    /// The admin key's SHA-256 (hex), if the node has one: detail is shown only to its holder.
    var adminKeyHash: String?
}

/// `/healthz` (the process answers) and `/readyz` (ready for traffic: not draining, and the store
/// reachable or keys already cached; 503 otherwise). Detail (store, Redis, limiter mode) is for holders
/// of the admin key.
enum HealthRoutes {
    static let storeSilenceLimit = 5.0

    static func install(into router: inout Router, _ sources: ReadinessSources) {
        router.add(.GET, "/healthz") { _, response in
            response.respond(status: 200, headers: ["content-type": "application/json"], body: Array(#"{"status":"ok"}"#.utf8))
        }
        router.add(.GET, "/readyz") { request, response in
            let draining = sources.server()?.isDraining ?? true
            let silence = sources.storeSilence()
            let storeOK = (silence ?? .infinity) <= storeSilenceLimit
            let ready = !draining && (storeOK || sources.cachedKeys() > 0)
            let status = draining ? "draining" : (ready ? "ready" : "store_unreachable")
            var body = "{\"status\":\"\(status)\""
            if let hash = sources.adminKeyHash, let key = ProxyHandler.clientKey(request.headers),
               Crypto.constantTimeEquals(Array(Crypto.sha256Hex(key).utf8), Array(hash.utf8)) {
                body += ",\"store\":\"\(storeOK ? "ok" : "unreachable")\",\"cached_keys\":\(sources.cachedKeys())"
                body += ",\"redis\":\"\(sources.redisHealth())\",\"limiter\":\"\(sources.limiter()?.currentMode ?? "local")\""
            }
            body += "}"
            response.respond(status: ready ? 200 : 503, headers: ["content-type": "application/json"], body: Array(body.utf8))
        }
    }
}
