import Testing
import RedisClient

/// The connection lifecycle without sockets: connect, ready, failing, backoff.
@Suite struct RedisConnectionStateMachineTests {
    let backoff = Backoff(baseNanos: 100, maxNanos: 1000)

    @Test func connectsThroughTheHandshakeToReady() {
        var m = RedisConnectionStateMachine(backoff: backoff)
        #expect(m.health == .down && !m.acceptsCommands)
        #expect(m.start() == .openSocket)
        #expect(m.start() == .none)
        #expect(m.socketConnected() == .sendHandshake)
        #expect(!m.acceptsCommands)
        #expect(m.handshakeSucceeded() == .none)
        #expect(m.state == .ready && m.health == .ready && m.acceptsCommands)
    }

    @Test func failuresBackOffExponentiallyAndResetWhenReady() {
        var m = RedisConnectionStateMachine(backoff: backoff)
        _ = m.start()
        #expect(m.failed(random: 1) == .closeAndRetry(afterNanos: 100))
        #expect(m.failed(random: 1) == .none)  // already backing off
        #expect(m.backoffElapsed() == .openSocket)
        #expect(m.failed(random: 1) == .closeAndRetry(afterNanos: 200))
        _ = m.backoffElapsed()
        #expect(m.failed(random: 1) == .closeAndRetry(afterNanos: 400))
        _ = m.backoffElapsed()
        #expect(m.failed(random: 1) == .closeAndRetry(afterNanos: 800))
        _ = m.backoffElapsed()
        #expect(m.failed(random: 1) == .closeAndRetry(afterNanos: 1000))  // capped
        _ = m.backoffElapsed()
        _ = m.socketConnected()
        _ = m.handshakeSucceeded()
        #expect(m.attempt == 0)
        #expect(m.failed(random: 1) == .closeAndRetry(afterNanos: 100))
    }

    @Test func aTimeoutWithRepliesStillFlowingOnlyDegrades() {
        var m = ready()
        #expect(m.commandTimedOut(sentAt: 10, lastReadAt: 20, random: 1) == .none)
        #expect(m.health == .degraded && m.acceptsCommands)
        m.replyReceived()
        #expect(m.health == .ready)
    }

    @Test func silenceSinceTheCommandWentOutDropsTheConnection() {
        var m = ready()
        #expect(m.commandTimedOut(sentAt: 30, lastReadAt: 20, random: 1) == .closeAndRetry(afterNanos: 100))
        #expect(m.state == .backingOff && m.health == .down && !m.acceptsCommands)
    }

    @Test func stopIsFinal() {
        var m = ready()
        #expect(m.stop() == .close)
        #expect(m.backoffElapsed() == .none)
        #expect(m.failed(random: 1) == .none)
        #expect(m.start() == .none)
    }

    func ready() -> RedisConnectionStateMachine {
        var m = RedisConnectionStateMachine(backoff: backoff)
        _ = m.start()
        _ = m.socketConnected()
        _ = m.handshakeSucceeded()
        return m
    }
}
