/// The upstream clients of each event loop, created on first use on that loop, and the choice of client
/// for a call.
///
/// `@unchecked Sendable`: slot `i` is only touched on loop `i`'s thread.
final class UpstreamPool: @unchecked Sendable {
    private var multis: [CurlMulti?]
    let timeouts: UpstreamTimeouts

    init(loops: Int, timeouts: UpstreamTimeouts) {
        multis = Array(repeating: nil, count: loops)
        self.timeouts = timeouts
    }

    /// A call to `url` on `loop`, not started yet.
    func call(on loop: EventLoop, method: HTTPMethod, url: String, headers: [(String, String)], body: [UInt8]) -> any UpstreamCall {
        CurlTransfer(multi: multi(for: loop), method: method, url: url, headers: headers, body: body, timeouts: timeouts)
    }

    func multi(for loop: EventLoop) -> CurlMulti {
        loop.assertInLoop()
        if let m = multis[loop.index] { return m }
        let m = CurlMulti(loop: loop)
        multis[loop.index] = m
        return m
    }
}
