/// `/healthz` (the process answers) and `/readyz` (ready to take traffic; 503 while draining).
enum HealthRoutes {
    static func install(into router: inout Router, server: @escaping @Sendable () -> HTTPServer?,
                        limiter: @escaping @Sendable () -> Limiter? = { nil }) {
        router.add(.GET, "/healthz") { _, response in
            response.respond(status: 200, headers: ["content-type": "application/json"], body: Array(#"{"status":"ok"}"#.utf8))
        }
        router.add(.GET, "/readyz") { _, response in
            let draining = server()?.isDraining ?? true
            let mode = limiter()?.currentMode ?? "local"
            response.respond(status: draining ? 503 : 200, headers: ["content-type": "application/json"],
                             body: Array("{\"status\":\"\(draining ? "draining" : "ready")\",\"limiter\":\"\(mode)\"}".utf8))
        }
    }
}
