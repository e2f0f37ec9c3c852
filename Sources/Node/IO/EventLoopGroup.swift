import CLinux
import Glibc
import Synchronization

/// A fixed set of event loops, each on its own thread (default: one per core).
public final class EventLoopGroup: Sendable {
    public let loops: [EventLoop]
    private let threads: Mutex<[pthread_t]>
    private let next = Atomic<Int>(0)

    public init(loopCount: Int = EventLoopGroup.defaultLoopCount) throws(SystemError) {
        var loops: [EventLoop] = []
        for i in 0..<max(1, loopCount) { loops.append(try EventLoop(index: i)) }
        self.loops = loops
        var threads: [pthread_t] = []
        for loop in loops {
            threads.append(try Self.startThread(name: "llmp-loop-\(loop.index)") { loop.run() })
        }
        self.threads = Mutex(threads)
        // Wait until every loop knows its thread, so `inEventLoop` is right from the first submission.
        for loop in loops {
            let ready = Atomic<Bool>(false)
            loop.execute { ready.store(true, ordering: .releasing) }
            while !ready.load(ordering: .acquiring) { sched_yield() }
        }
    }

    public static var defaultLoopCount: Int {
        Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))
    }

    /// Round-robin choice of a loop.
    public func nextLoop() -> EventLoop {
        loops[next.add(1, ordering: .relaxed).oldValue % loops.count]
    }

    /// Stops every loop and waits for their threads to end.
    public func shutdown() {
        for loop in loops { loop.stop() }
        let ts = threads.withLock { t -> [pthread_t] in
            let copy = t
            t = []
            return copy
        }
        for t in ts where t != pthread_self() { pthread_join(t, nil) }
    }

    private final class ThreadBody {
        let body: () -> Void
        init(_ body: @escaping () -> Void) { self.body = body }
    }

    static func startThread(name: String, _ body: @escaping () -> Void) throws(SystemError) -> pthread_t {
        var thread = pthread_t()
        let box = Unmanaged.passRetained(ThreadBody(body)).toOpaque()
        let rc = pthread_create(&thread, nil, { arg in
            let body = Unmanaged<ThreadBody>.fromOpaque(arg!).takeRetainedValue()
            body.body()
            return nil
        }, box)
        if rc != 0 {
            Unmanaged<ThreadBody>.fromOpaque(box).release()
            throw SystemError("pthread_create", errno: rc)
        }
        _ = pthread_setname_np(thread, String(name.prefix(15)))
        return thread
    }
}
