import Glibc
import Synchronization

/// Writes log lines from a thread of its own, so that a slow reader of the node's output (a pipe to a log
/// collector, a full terminal) never blocks an event loop, and lines logged together leave in one write.
/// Lines wait in a bounded buffer; past `capacity` bytes they are dropped and counted, and one warning
/// line with the count goes out once there is room again. `flush` waits until everything queued is written.
///
/// `@unchecked Sendable`: `pending`, `dropped` and `writing` are touched only under `mutex`.
final class LogSink: @unchecked Sendable {
    static let capacity = 8 << 20
    private let fd: Int32
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let cond = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    private var pending: [UInt8] = []
    private var dropped = 0
    private var writing = false

    private static let sinks = Mutex<[Int32: LogSink]>([:])

    /// The one sink of descriptor `fd` in this process.
    static func shared(fd: Int32) -> LogSink {
        sinks.withLock { all in
            if let s = all[fd] { return s }
            let s = LogSink(fd: fd)
            all[fd] = s
            return s
        }
    }

    /// Writes out what every sink holds (at exit), waiting at most `timeoutMillis` for each.
    static func flushAll(timeoutMillis: Int = 2000) {
        for s in sinks.withLock({ Array($0.values) }) { s.flush(timeoutMillis: timeoutMillis) }
    }

    private init(fd: Int32) {
        self.fd = fd
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(cond, nil)
        // Lives as long as the process.
        _ = try? EventLoopGroup.startThread(name: "llmp-log-\(fd)") { [self] in run() }
    }

    func append(_ line: String) {
        pthread_mutex_lock(mutex)
        // The writer waits only while nothing is queued: wake it on the first line, not on every line.
        let wasIdle = pending.isEmpty && dropped == 0
        if pending.count + line.utf8.count > Self.capacity {
            dropped += 1
        } else {
            if pending.isEmpty { pending.reserveCapacity(4096) }
            pending.append(contentsOf: line.utf8)
        }
        if wasIdle { pthread_cond_broadcast(cond) }
        pthread_mutex_unlock(mutex)
    }

    func flush(timeoutMillis: Int) {
        var deadline = timespec()
        clock_gettime(CLOCK_REALTIME, &deadline)
        let ns = Int(deadline.tv_nsec) + (timeoutMillis % 1000) * 1_000_000
        deadline.tv_sec += timeoutMillis / 1000 + ns / 1_000_000_000
        deadline.tv_nsec = ns % 1_000_000_000
        pthread_mutex_lock(mutex)
        while !pending.isEmpty || dropped > 0 || writing {
            if pthread_cond_timedwait(cond, mutex, &deadline) == ETIMEDOUT { break }
        }
        pthread_mutex_unlock(mutex)
    }

    private func run() {
        var batch: [UInt8] = []
        while true {
            pthread_mutex_lock(mutex)
            while pending.isEmpty && dropped == 0 { pthread_cond_wait(cond, mutex) }
            pthread_mutex_unlock(mutex)
            // Let a busy node's lines gather for a moment: one write per couple of milliseconds, not per line.
            usleep(2000)
            pthread_mutex_lock(mutex)
            swap(&batch, &pending)
            let lost = dropped
            dropped = 0
            writing = true
            pthread_mutex_unlock(mutex)

            if lost > 0 {
                batch.append(contentsOf: ("{\"time\":\"\(Logger.timestamp())\",\"level\":\"warning\",\"msg\":\"log lines dropped: "
                    + "the output is not being read fast enough\",\"count\":\(lost)}\n").utf8)
            }
            writeAll(batch)
            batch.removeAll(keepingCapacity: batch.capacity <= 1 << 20)

            pthread_mutex_lock(mutex)
            writing = false
            pthread_cond_broadcast(cond)
            pthread_mutex_unlock(mutex)
        }
    }

    private func writeAll(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { p in
            var off = 0
            while off < p.count {
                let n = Glibc.write(fd, p.baseAddress! + off, p.count - off)
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { return }  // the output is gone (closed pipe): nothing to do but drop
                off += n
            }
        }
    }
}
