/// The lifecycle of one Redis connection as a value: events in, actions out, no sockets or clocks
/// (`RedisConnection` performs the actions). Tested on its own.
public struct RedisConnectionStateMachine: Sendable, Equatable {
    public enum State: Sendable, Equatable {
        case idle
        case connecting
        case handshaking
        case ready
        case backingOff
        case stopped
    }

    public enum Action: Sendable, Equatable {
        case none
        case openSocket
        case sendHandshake
        /// Close the socket, fail what is in flight, and try again after the delay.
        case closeAndRetry(afterNanos: UInt64)
        case close
    }

    public private(set) var state: State = .idle
    public private(set) var attempt = 0
    /// Commands that missed their deadline since the last reply.
    public private(set) var recentTimeouts = 0
    public let backoff: Backoff

    public init(backoff: Backoff) { self.backoff = backoff }

    public var health: RedisHealth {
        switch state {
        case .ready: recentTimeouts > 0 ? .degraded : .ready
        default: .down
        }
    }

    /// Only a ready connection takes commands; otherwise they fail at once.
    public var acceptsCommands: Bool { state == .ready }

    public mutating func start() -> Action {
        guard state == .idle else { return .none }
        state = .connecting
        return .openSocket
    }

    public mutating func socketConnected() -> Action {
        guard state == .connecting else { return .none }
        state = .handshaking
        return .sendHandshake
    }

    public mutating func handshakeSucceeded() -> Action {
        guard state == .handshaking else { return .none }
        state = .ready
        attempt = 0
        recentTimeouts = 0
        return .none
    }

    /// The socket failed, the server closed, the handshake was refused or timed out.
    public mutating func failed(random: Double) -> Action {
        switch state {
        case .stopped, .backingOff: return .none
        default:
            state = .backingOff
            let delay = backoff.delay(attempt: attempt, random: random)
            attempt += 1
            recentTimeouts = 0
            return .closeAndRetry(afterNanos: delay)
        }
    }

    public mutating func backoffElapsed() -> Action {
        guard state == .backingOff else { return .none }
        state = .connecting
        return .openSocket
    }

    /// A command sent at `sentAt` missed its deadline; `lastReadAt` is when the server last sent anything.
    /// Silence since the command went out means the server (or the link) is stalled: give up on this
    /// connection so new commands fail at once instead of queueing behind it.
    public mutating func commandTimedOut(sentAt: UInt64, lastReadAt: UInt64, random: Double) -> Action {
        guard state == .ready else { return .none }
        recentTimeouts += 1
        return lastReadAt < sentAt ? failed(random: random) : .none
    }

    public mutating func replyReceived() {
        recentTimeouts = 0
    }

    public mutating func stop() -> Action {
        let wasOpen = state == .connecting || state == .handshaking || state == .ready
        state = .stopped
        return wasOpen ? .close : .none
    }
}
