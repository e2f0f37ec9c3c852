/// A Redis client failure callers can switch on.
public struct RedisError: Error, Equatable, CustomStringConvertible {
    public enum Code: String, Sendable, Equatable {
        /// Not connected (connecting, backing off, or refused): failed at once, nothing was sent.
        case unavailable
        /// No reply within the command's deadline (the server may be hung).
        case timeout
        /// The connection broke with the command in flight.
        case connectionLost
        /// The server answered with an error reply where a value was needed.
        case serverError
        /// AUTH or SELECT was refused.
        case authenticationFailed
        case protocolError
        case invalidURL
    }

    public var code: Code
    public var message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }
}
