/// One curl multi handle per event loop, created on first use on that loop.
///
/// `@unchecked Sendable`: slot `i` is only touched on loop `i`'s thread.
final class UpstreamPool: @unchecked Sendable {
    private var multis: [CurlMulti?]
    let timeouts: UpstreamTimeouts

    init(loops: Int, timeouts: UpstreamTimeouts) {
        multis = Array(repeating: nil, count: loops)
        self.timeouts = timeouts
    }

    func multi(for loop: EventLoop) -> CurlMulti {
        loop.assertInLoop()
        if let m = multis[loop.index] { return m }
        let m = CurlMulti(loop: loop)
        multis[loop.index] = m
        return m
    }
}
