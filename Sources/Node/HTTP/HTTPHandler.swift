/// Application code behind the HTTP server.
///
/// `handle` is called on the connection's event loop, straight from the parser. It answers through
/// `response` — at once, later from callbacks on that loop, or from a task started with
/// `HTTPResponseWriter.runTask` — and must finish it on every path: the connection reads its next request
/// only once this response is complete. (Callback-style so that a request that needs no waiting costs no
/// task: a task per request was five allocations and a tenth of the loop's time.)
public protocol HTTPHandler: Sendable {
    func handle(_ request: HTTPRequest, _ response: HTTPResponseWriter)
}

/// Errors from writing a response body.
public enum HTTPWriteError: Error, Equatable {
    /// The client went away; stop producing the body.
    case connectionClosed
    /// `write` before `writeHead`, or after `end`.
    case invalidState(String)
}
