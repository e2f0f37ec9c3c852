import Storage

/// Polls the store's revision every second and drops cached keys when it moves, so an admin change made
/// anywhere (another node, the CLI on the store) takes effect here within about a second.
final class RevisionWatcher: @unchecked Sendable {
    private let store: any Store
    private let keys: KeyCache
    private let log: Logger
    private var task: Task<Void, Never>?
    /// Monotonic time of the last successful read, for readiness.
    let lastSuccess = LockedBox<UInt64>(0)

    /// Created right after the store answered (migration, key check): that counts as the first success.
    init(store: any Store, keys: KeyCache, log: Logger) {
        lastSuccess.withLock { $0 = monotonicNanos() }
        self.store = store
        self.keys = keys
        self.log = log
    }

    func start() {
        task = Task.detached { [self] in
            var failing = false
            while !Task.isCancelled {
                do {
                    let r = try await store.revision()
                    if keys.observe(revision: r) { log.debug("store revision changed; key cache dropped", [("revision", .int(Int(r)))]) }
                    lastSuccess.withLock { $0 = monotonicNanos() }
                    if failing { log.info("store reachable again") }
                    failing = false
                } catch {
                    if !failing { log.warning("store unreachable; serving cached keys", [("error", .string("\(error)"))]) }
                    failing = true
                }
                try? await Task.sleep(for: .seconds(1))
            }
        }
    }

    func stop() { task?.cancel() }
}
