import Storage

/// A virtual key resolved for the proxy: the key's record, its connection, and what the upstream call needs
/// (the parsed endpoint, the provider's auth header with the decrypted key).
///
/// A class, made once per cache fill: every request holds it, and a struct of two records would cost a
/// retain and a release of each of their ~20 fields per copy.
final class ResolvedKey: Sendable {
    let key: VirtualKeyRecord
    let connection: ConnectionRecord
    /// The connection's endpoint, parsed.
    let endpoint: UpstreamEndpoint
    /// The provider's authentication header with the real key, made once.
    let upstreamAuth: (String, String)
    /// The key's limits, as the limiter takes them.
    let limits: KeyLimitsConfig

    init(key: VirtualKeyRecord, connection: ConnectionRecord, providerKey: String) {
        self.key = key
        self.connection = connection
        endpoint = UpstreamEndpoint(connection.endpoint)
        upstreamAuth = ProviderRouting.authHeader(connection, secret: providerKey)
        limits = KeyLimitsConfig(tps: key.requestsPerSecond, burst: key.burst, tokensPerMinute: key.tokensPerMinute,
                                 maxConcurrent: key.maxConcurrent)
    }
}

/// Key hash (SHA-256 of the virtual key) → resolved key, in memory. Unknown hashes are remembered briefly
/// in a bounded map so random keys cannot flood the store. Everything is dropped when the store's revision
/// moves.
///
/// `@unchecked Sendable`: all state is behind `state`'s lock.
final class KeyCache: @unchecked Sendable {
    struct State {
        var known: [SHA256Digest: ResolvedKey] = [:]
        var unknown: [SHA256Digest: UInt64] = [:]
        var revision: Int64 = -1
    }

    enum Lookup {
        case hit(ResolvedKey)
        case unknown
        case miss
    }

    private let state = LockedBox(State())
    let store: any Store
    let box: SecretBox
    var metrics: Metrics?
    static let unknownTTLNanos: UInt64 = 5_000_000_000
    static let maxUnknown = 10_000
    static let maxKnown = 100_000

    init(store: any Store, box: SecretBox) {
        self.store = store
        self.box = box
    }

    func lookup(_ hash: SHA256Digest) -> Lookup {
        state.withLock { s in
            if let r = s.known[hash] { return .hit(r) }
            if let until = s.unknown[hash] {
                if until > monotonicNanos() { return .unknown }
                s.unknown[hash] = nil
            }
            return .miss
        }
    }

    /// The key whose hash is `hash`, from memory or the store; nil if no such key exists. (Kept by digest:
    /// the hex text the store knows keys by is made only on a miss.)
    func resolve(_ hash: SHA256Digest) async throws -> ResolvedKey? {
        switch lookup(hash) {
        case .hit(let r): return r
        case .unknown: return nil
        case .miss: break
        }
        let revisionBefore = state.withLock { $0.revision }
        let t0 = monotonicNanos()
        defer { metrics?.observe("llmp_store_duration_seconds", ["key_lookup"], Double(monotonicNanos() - t0) / 1e9) }
        guard let key = try await store.virtualKey(hash: hash.hex) else {
            state.withLock { s in
                if s.unknown.count >= Self.maxUnknown { s.unknown.removeAll(keepingCapacity: true) }
                s.unknown[hash] = monotonicNanos() &+ Self.unknownTTLNanos
            }
            return nil
        }
        guard let connection = try await store.connection(id: key.connectionID) else { return nil }
        let secret = try box.openString(connection.encryptedAPIKey, context: connection.id)
        let resolved = ResolvedKey(key: key, connection: connection, providerKey: secret)
        state.withLock { s in
            // A revision change while we were reading may have made this stale: do not cache it then.
            guard s.revision == revisionBefore else { return }
            if s.known.count >= Self.maxKnown { s.known.removeAll(keepingCapacity: true) }
            s.known[hash] = resolved
        }
        return resolved
    }

    /// Drops everything if `revision` differs from the one the cache was filled under.
    @discardableResult
    func observe(revision: Int64) -> Bool {
        state.withLock { s in
            guard s.revision != revision else { return false }
            s.revision = revision
            s.known.removeAll(keepingCapacity: true)
            s.unknown.removeAll(keepingCapacity: true)
            return true
        }
    }

    /// Drops everything now (an admin change was announced); the next revision poll re-arms caching.
    func invalidateAll() {
        state.withLock { s in
            s.known.removeAll(keepingCapacity: true)
            s.unknown.removeAll(keepingCapacity: true)
            s.revision = -1
        }
    }

    var count: Int { state.withLock { $0.known.count } }
}

/// The Redis channel on which admin changes are announced (payload: the announcing node's id).
enum KeyInvalidation {
    static let channel = "llmp:changes"
}
