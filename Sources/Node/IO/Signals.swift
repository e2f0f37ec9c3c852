import CLinux
import Glibc

/// The process owns its signal mask: termination signals are blocked in every thread and read from a
/// signalfd on an event loop (or by a waiting thread for short-lived commands). This also undoes a mask
/// inherited from a parent such as a test runner.
public enum Signals {
    static let termination: [Int32] = [SIGTERM, SIGINT, SIGHUP]

    static func terminationSet() -> sigset_t {
        var set = sigset_t()
        sigemptyset(&set)
        for s in termination { sigaddset(&set, s) }
        return set
    }

    /// Call first in `main`, before any thread starts, so every thread inherits the mask.
    public static func takeOverAtStartup() {
        var set = terminationSet()
        pthread_sigmask(SIG_SETMASK, &set, nil)
        signal(SIGPIPE, SIG_IGN)
    }

    /// For commands that do not serve: a thread waits for a termination signal and exits with 128+signal.
    public static func exitOnTermination() {
        _ = try? EventLoopGroup.startThread(name: "llmp-signals") {
            var set = terminationSet()
            var sig: Int32 = 0
            while sigwait(&set, &sig) != 0 {}
            Logger.flushAll()
            exit(128 + sig)
        }
    }

    public static func name(_ signo: Int32) -> String {
        switch signo {
        case SIGTERM: "SIGTERM"
        case SIGINT: "SIGINT"
        case SIGHUP: "SIGHUP"
        default: "signal \(signo)"
        }
    }
}

/// Reads termination signals from a signalfd on one loop and reports each to `onSignal` on that loop.
public final class SignalWatcher: EventHandler {
    private let fd: Int32
    private let loop: EventLoop
    private let onSignal: (Int32) -> Void
    private var closed = false

    /// Must be called on `loop`.
    public init(loop: EventLoop, onSignal: @escaping (Int32) -> Void) throws(SystemError) {
        var set = Signals.terminationSet()
        fd = try Sys.call("signalfd") { signalfd(-1, &set, Int32(SFD_NONBLOCK | SFD_CLOEXEC)) }
        self.loop = loop
        self.onSignal = onSignal
        try loop.register(fd, interest: .read, handler: self)
    }

    public func handleEvents(_ events: UInt32) {
        var info = signalfd_siginfo()
        let size = MemoryLayout<signalfd_siginfo>.size
        // `onSignal` may close this watcher: its descriptor's number can then belong to anything at once
        // (another thread's file), so nothing is read after that.
        while !closed {
            let n = withUnsafeMutableBytes(of: &info) { Glibc.read(fd, $0.baseAddress, size) }
            guard n == size else { return }
            onSignal(Int32(info.ssi_signo))
        }
    }

    public func close() {
        guard !closed else { return }
        closed = true
        loop.unregister(fd)
        Sys.close(fd)
    }
}
