import Testing
import TestSupport
@testable import Node

/// Exact routes win over prefixes, also beneath one; a prefix with no exact route beneath it takes every
/// path under it; unknown paths are 404 and known paths with another method 405.
@Suite struct RouterTests {
    static func answer(_ text: String) -> Router.Handler {
        { _, response in response.respond(status: 200, body: Array(text.utf8)) }
    }

    @Test func exactRoutesWinOverPrefixesAndEachPrefixTakesTheRest() async throws {
        var router = Router()
        router.addPrefix(nil, "/v1/", Self.answer("v1 prefix"))
        router.add(.GET, "/v1/special", Self.answer("exact under v1"))
        router.add(.GET, "/admin/status", Self.answer("exact before its prefix"))
        router.addPrefix(nil, "/admin/", Self.answer("admin prefix"))
        router.add(.GET, "/healthz", Self.answer("health"))
        router.addPrefix(.POST, "/other/", Self.answer("other prefix"))
        let s = try TestServer(handler: router)
        let c = try RawHTTPClient(port: s.port)
        func get(_ path: String, _ method: String = "GET") throws -> (Int, String) {
            try c.send("\(method) \(path) HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n")
            let r = try c.readResponse()
            return (r.status, r.bodyText)
        }
        #expect(try get("/v1/chat/completions") == (200, "v1 prefix"))
        #expect(try get("/v1/special") == (200, "exact under v1"))
        #expect(try get("/v1/special?x=1") == (200, "exact under v1"))
        #expect(try get("/v1/specialx") == (200, "v1 prefix"))
        #expect(try get("/admin/vkeys") == (200, "admin prefix"))
        #expect(try get("/admin/status") == (200, "exact before its prefix"))
        #expect(try get("/healthz") == (200, "health"))
        #expect(try get("/nowhere").0 == 404)
        #expect(try get("/healthz", "POST").0 == 405)
        #expect(try get("/other/x", "GET").0 == 405)
        #expect(try get("/other/x", "POST") == (200, "other prefix"))
        await s.stop()
    }
}
