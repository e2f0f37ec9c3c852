/// The upstream clients of each event loop, created on first use on that loop, and the choice of client
/// for a call: plain `http://` providers get our own HTTP/1.1 client unless `plainHTTPClient` is `.curl`;
/// everything else (HTTPS, HTTP/2, user information in the URL) goes through curl.
///
/// `@unchecked Sendable`: slot `i` is only touched on loop `i`'s thread.
final class UpstreamPool: @unchecked Sendable {
    enum PlainHTTPClientChoice: String, CaseIterable, Sendable {
        case native, curl
    }

    private var multis: [CurlMulti?]
    private var plainClients: [PlainHTTPClient?]
    let timeouts: UpstreamTimeouts
    let plainHTTPClient: PlainHTTPClientChoice
    /// The own client's connection counts, over every loop.
    let plainStats = PlainHTTPStats()

    /// With an HTTP proxy in the environment (`http_proxy`, `HTTP_PROXY` or `ALL_PROXY`, which curl
    /// honours along with `no_proxy`), plain HTTP goes through curl as well, so it keeps using the proxy.
    init(loops: Int, timeouts: UpstreamTimeouts, plainHTTPClient: PlainHTTPClientChoice = .native,
         environment: [String: String] = [:]) {
        multis = Array(repeating: nil, count: loops)
        plainClients = Array(repeating: nil, count: loops)
        self.timeouts = timeouts
        self.plainHTTPClient = Self.proxyVariable(in: environment) == nil ? plainHTTPClient : .curl
    }

    /// The first HTTP proxy variable set in `environment`, if any.
    static func proxyVariable(in environment: [String: String]) -> String? {
        ["http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"].first { !(environment[$0] ?? "").isEmpty }
    }

    /// A call to `endpoint` + `suffix` (path and query) on `loop`, not started yet.
    func call(on loop: EventLoop, method: HTTPMethod, endpoint: UpstreamEndpoint, suffix: Substring, headers: HTTPHeaders,
              body: [UInt8]) -> any UpstreamCall {
        if plainHTTPClient == .native, let base = endpoint.plain {
            return plainClient(for: loop).call(method: method, target: base, suffix: suffix, headers: headers, body: body)
        }
        return CurlTransfer(multi: multi(for: loop), method: method, url: endpoint.url + String(suffix), headers: headers, body: body, timeouts: timeouts)
    }

    func multi(for loop: EventLoop) -> CurlMulti {
        loop.assertInLoop()
        if let m = multis[loop.index] { return m }
        let m = CurlMulti(loop: loop)
        multis[loop.index] = m
        return m
    }

    func plainClient(for loop: EventLoop) -> PlainHTTPClient {
        loop.assertInLoop()
        if let c = plainClients[loop.index] { return c }
        let c = PlainHTTPClient(loop: loop, timeouts: timeouts, stats: plainStats)
        plainClients[loop.index] = c
        return c
    }
}

/// A connection's endpoint as the upstream clients use it, parsed once (when its key is cached) rather
/// than for every request.
struct UpstreamEndpoint: Sendable {
    let url: String
    /// For the own client: an `http://` endpoint without user information or query.
    let plain: PlainHTTPTarget?

    init(_ url: String) {
        self.url = url
        plain = PlainHTTPTarget.endpoint(url)
    }
}
