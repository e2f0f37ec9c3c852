import Node

/// An HTTP server on 127.0.0.1 with a port chosen by the kernel, for live tests.
public final class TestServer: Sendable {
    public let group: EventLoopGroup
    public let server: HTTPServer
    public var port: UInt16 { server.port }

    public init(loops: Int = 2, configure: (inout HTTPServerConfiguration) -> Void = { _ in }, handler: any HTTPHandler) throws {
        var config = HTTPServerConfiguration(listen: HostPort(host: "127.0.0.1", port: 0))
        configure(&config)
        group = try EventLoopGroup(loopCount: loops)
        server = HTTPServer(group: group, configuration: config, handler: handler)
        try server.start()
    }

    public func stop(graceNanos: UInt64 = 1_000_000_000) async {
        await server.shutdown(graceNanos: graceNanos)
        group.shutdown()
    }
}

/// A handler made from a closure.
public struct ClosureHandler: HTTPHandler {
    let body: @Sendable (HTTPRequest, HTTPResponseWriter) async -> Void
    public init(_ body: @escaping @Sendable (HTTPRequest, HTTPResponseWriter) async -> Void) { self.body = body }
    public func handle(_ request: HTTPRequest, _ response: HTTPResponseWriter) {
        let body = self.body
        response.runTask { await body(request, response) }
    }
}
