import Glibc

/// A fixed set of threads, each owning one database handle, that run blocking driver calls off the
/// callers' threads. Work waits in a FIFO queue; callers suspend until their job has run.
///
/// `@unchecked Sendable`: the queue and flags are touched only under `mutex`; each handle is touched only
/// by the thread that owns it.
final class WorkerPool<Handle>: @unchecked Sendable {
    typealias Job = (inout Handle?) -> Void

    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let cond = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    private var queue: [Job] = []
    private var head = 0
    private var stopping = false
    private var threads: [pthread_t] = []
    private let name: String
    private let threadName: String
    private let nice: Int32

    /// `threadName` is what `top -H`, perf and /proc show; `nice` is the threads' nice value. The default 5:
    /// store work (key-cache misses, admin calls, usage catching up) gives way to the event loops when they
    /// compete for a core — it halved the multi-millisecond stalls unpaced usage batches put into proxied
    /// requests' p99 (bench/proxy.sh, one core: 8.2 -> 5.2 ms at 16 connections), leaving a writer ~25% of
    /// a saturated core (nice 10 left ~10%).
    init(name: String, threads count: Int, threadName: String = "llmp-store", nice: Int32 = 5) {
        self.name = name
        self.threadName = threadName
        self.nice = nice
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(cond, nil)
        for _ in 0..<max(1, count) {
            threads.append(spawnThread { [self] in workerLoop() })
        }
    }

    deinit {
        pthread_cond_destroy(cond)
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
        cond.deallocate()
    }

    /// Runs `body` on a worker with that worker's handle (nil until the body creates one; set it to nil to
    /// drop a broken handle).
    func run<T: Sendable>(_ body: @escaping @Sendable (inout Handle?) throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { (c: CheckedContinuation<T, any Error>) in
            let job: Job = { handle in
                do { c.resume(returning: try body(&handle)) } catch { c.resume(throwing: error) }
            }
            pthread_mutex_lock(mutex)
            if stopping {
                pthread_mutex_unlock(mutex)
                c.resume(throwing: StoreError(.unavailable, "\(name): the store is closed"))
                return
            }
            queue.append(job)
            pthread_cond_signal(cond)
            pthread_mutex_unlock(mutex)
        }
    }

    private func workerLoop() {
        nameThisThread(threadName)
        // On Linux, who=0 means this thread.
        _ = setpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0, nice)
        var handle: Handle?
        while true {
            pthread_mutex_lock(mutex)
            while head == queue.count && !stopping { pthread_cond_wait(cond, mutex) }
            if head == queue.count && stopping {
                pthread_mutex_unlock(mutex)
                break
            }
            let job = queue[head]
            head += 1
            if head == queue.count {
                queue.removeAll(keepingCapacity: true)
                head = 0
            }
            pthread_mutex_unlock(mutex)
            job(&handle)
        }
        handle = nil
    }

    /// Finishes queued work, then stops the threads (their handles are released on the way out).
    func shutdown() {
        pthread_mutex_lock(mutex)
        stopping = true
        pthread_cond_broadcast(cond)
        let ts = threads
        threads = []
        pthread_mutex_unlock(mutex)
        for t in ts { pthread_join(t, nil) }
    }
}

/// Names the calling thread for `top -H`, perf and /proc — otherwise it carries the name of whichever
/// thread created it. (Through /proc: Glibc's Swift module does not export `pthread_setname_np`.)
private func nameThisThread(_ name: String) {
    let fd = open("/proc/thread-self/comm", O_WRONLY)
    guard fd >= 0 else { return }
    let bytes = Array(name.utf8.prefix(15))
    _ = write(fd, bytes, bytes.count)
    close(fd)
}

/// Unix time in milliseconds.
public func nowMillis() -> Int64 {
    var ts = timespec()
    clock_gettime(CLOCK_REALTIME, &ts)
    return Int64(ts.tv_sec) * 1000 + Int64(ts.tv_nsec / 1_000_000)
}

private final class ThreadBody {
    let body: () -> Void
    init(_ body: @escaping () -> Void) { self.body = body }
}

/// Starts a detached-by-join pthread running `body`.
private func spawnThread(_ body: @escaping () -> Void) -> pthread_t {
    var thread = pthread_t()
    let box = Unmanaged.passRetained(ThreadBody(body)).toOpaque()
    let rc = pthread_create(&thread, nil, { arg in
        Unmanaged<ThreadBody>.fromOpaque(arg!).takeRetainedValue().body()
        return nil
    }, box)
    precondition(rc == 0, "pthread_create failed with \(rc)")
    return thread
}
