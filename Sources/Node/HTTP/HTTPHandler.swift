/// Application code behind the HTTP server.
///
/// `handle` runs as a task whose executor is the connection's event loop, so it stays on the loop thread
/// between awaits. It must finish the response (`respond`, or `writeHead` … `end`) before returning; a
/// handler that returns without a response gets a 500, one that returns mid-stream has the stream ended.
public protocol HTTPHandler: Sendable {
    func handle(_ request: HTTPRequest, _ response: HTTPResponseWriter) async
}

/// Errors from writing a response body.
public enum HTTPWriteError: Error, Equatable {
    /// The client went away; stop producing the body.
    case connectionClosed
    /// `write` before `writeHead`, or after `end`.
    case invalidState(String)
}
