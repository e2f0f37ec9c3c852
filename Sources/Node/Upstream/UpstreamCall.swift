/// Receives one upstream call's events on the call's event loop, in order: the response head, body
/// pieces as they arrive, then the end. (A protocol rather than three closures: a call per request
/// allocated a context for each closure and for the state they shared.)
protocol UpstreamCallDelegate: AnyObject {
    func upstreamHead(_ head: UpstreamHead)
    /// A piece of the body. Returns `false` to pause the call (backpressure): the same bytes are offered
    /// again after `resume()`.
    func upstreamData(_ bytes: UnsafeRawBufferPointer) -> Bool
    func upstreamEnd(_ result: UpstreamResult)
}

/// One call to a provider as the proxy sees it, whichever client makes it.
protocol UpstreamCall: AnyObject {
    /// Set before `start()`; held until the end has been delivered to it.
    var delegate: (any UpstreamCallDelegate)? { get set }
    /// True once the head went to the delegate (a failure after it cuts the client's response short).
    var headWasDelivered: Bool { get }
    /// Starts the call; it keeps itself alive until it ends. A call cancelled before it starts stays
    /// unsent.
    func start()
    /// Stops the call (the client went away): the delegate's end gets `.cancelled`, at once.
    func cancel()
    /// Continues a paused call.
    func resume()
}

typealias UpstreamResult = Result<Void, UpstreamError>

/// Why an upstream call did not produce a response.
enum UpstreamError: Error, Equatable {
    /// Could not connect, TLS failed, connection dropped before a response: 502.
    case unreachable(String)
    /// No response (or no progress) in time: 504.
    case timeout(String)
    /// The client went away and the transfer was stopped.
    case cancelled
    case internalError(String)

    var message: String {
        switch self {
        case .unreachable(let m), .timeout(let m), .internalError(let m): m
        case .cancelled: "cancelled"
        }
    }
}

/// The response head from upstream.
public struct UpstreamHead: Sendable {
    public var status: Int
    public var headers: HTTPHeaders
}

/// Timeouts for one upstream call, in milliseconds.
struct UpstreamTimeouts: Sendable {
    var connect: Int = 10_000
    /// Until the response head arrives. 600 s as the official SDKs' own default: a non-streamed answer of a
    /// reasoning model can take minutes, and a gateway stricter than its clients cuts what they would wait for.
    var firstByte: Int = 600_000
    /// Longest silence once the response is flowing (a reasoning model's stream can be silent for minutes
    /// between its first chunk and its answer).
    var idle: Int = 600_000
}

