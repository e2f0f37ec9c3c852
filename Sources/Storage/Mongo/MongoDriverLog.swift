import CMongo
import Glibc
import Synchronization

/// What libmongoc says about itself. Left alone it prints plain-text lines — debug ones (server monitor
/// retries, every few hundred milliseconds while a server is down) on standard output — which breaks a
/// node's one-JSON-object-per-line log and a CLI's `--output json`. The process routes them instead.
public enum MongoDriverLog {
    public enum Level: Sendable { case error, warning, info, debug }
    public typealias Handler = @Sendable (_ level: Level, _ domain: String, _ message: String) -> Void

    private static let handler = Mutex<Handler?>(nil)

    /// Sends every later libmongoc message to `handler` (process-wide; replaces the previous one).
    public static func route(to handler: @escaping Handler) {
        self.handler.withLock { $0 = handler }
        mongoc_log_set_handler({ level, domain, message, _ in
            MongoDriverLog.deliver(level, domain.map { String(cString: $0) } ?? "", message.map { String(cString: $0) } ?? "")
        }, nil)
    }

    private static func deliver(_ level: mongoc_log_level_t, _ domain: String, _ message: String) {
        let mapped: Level = switch level {
        case MONGOC_LOG_LEVEL_ERROR, MONGOC_LOG_LEVEL_CRITICAL: .error
        case MONGOC_LOG_LEVEL_WARNING: .warning
        case MONGOC_LOG_LEVEL_MESSAGE, MONGOC_LOG_LEVEL_INFO: .info
        default: .debug
        }
        let h = handler.withLock { $0 }
        h?(mapped, domain, message)
    }

    /// libmongoc initialises itself before `main` and keeps its counters in a shared-memory segment named
    /// after the process id (`/dev/shm/mongoc-PID`), removed only by a clean `mongoc_cleanup`. A process
    /// that is killed, or exits without it, leaves the segment behind; a later process that gets the same
    /// id then finds the name taken and prints "Falling back to malloc for counters" on standard error,
    /// before any handler can be installed. Unlinking the name at start keeps the mapping (the counters
    /// still work) and leaves nothing behind, whatever way the process ends.
    public static func releaseSharedCounters() {
        _ = shm_unlink("/mongoc-\(getpid())")
    }
}
