import CCurl
import CLinux
import Glibc

private let curlGlobalInit: Void = { curl_global_init(Int(CURL_GLOBAL_ALL)) }()

/// One libcurl multi handle driven by one event loop (the multi_socket API): curl tells us which sockets
/// to watch and when to wake it; we tell it what became ready. Everything happens on the loop thread.
///
/// Connection sockets stay registered with epoll between transfers ("parked" when curl stops watching a
/// kept-alive connection), so a reused connection costs no epoll_ctl calls; this works because curl opens
/// and closes them through our callbacks, so we learn of every close. A parked socket that wakes (the
/// provider closed it) is unregistered then. Other sockets curl watches (its resolver's) are unregistered
/// as soon as curl lets go of them. Easy handles are reset and reused.
final class CurlMulti {
    let loop: EventLoop
    let multi: UnsafeMutableRawPointer
    private var watchers: [Int32: CurlSocketWatcher] = [:]
    /// Sockets curl opened through `openSocket`: their close is reported to `closeSocket`.
    private var connectionSockets = Set<Int32>()
    private var timer: UInt64?
    private var transfers: [UnsafeMutableRawPointer: CurlTransfer] = [:]
    private var idleEasyHandles: [UnsafeMutableRawPointer] = []
    private static let maxIdleEasyHandles = 64
    private var cleaningUp = false

    init(loop: EventLoop) {
        _ = curlGlobalInit
        self.loop = loop
        multi = curl_multi_init()!
        let me = Unmanaged.passUnretained(self).toOpaque()
        llmp_multi_setopt_socket_cb(multi) { _, socket, what, userp, _ in
            Unmanaged<CurlMulti>.fromOpaque(userp!).takeUnretainedValue().socketChanged(socket, what)
            return 0
        }
        llmp_multi_setopt_pointer(multi, CURLMOPT_SOCKETDATA, me)
        llmp_multi_setopt_timer_cb(multi) { _, timeoutMillis, userp in
            Unmanaged<CurlMulti>.fromOpaque(userp!).takeUnretainedValue().timerChanged(timeoutMillis)
            return 0
        }
        llmp_multi_setopt_pointer(multi, CURLMOPT_TIMERDATA, me)
        // Reuse connections to a provider across requests on this loop.
        llmp_multi_setopt_long(multi, CURLMOPT_MAXCONNECTS, 256)
        llmp_multi_setopt_long(multi, CURLMOPT_PIPELINING, Int(CURLPIPE_MULTIPLEX))
    }

    deinit {
        cleaningUp = true
        curl_multi_cleanup(multi)
        for easy in idleEasyHandles { curl_easy_cleanup(easy) }
    }

    var activeTransfers: Int { transfers.count }

    /// An easy handle with default options plus the socket callbacks this multi relies on.
    func makeEasyHandle() -> UnsafeMutableRawPointer {
        let easy = idleEasyHandles.popLast() ?? curl_easy_init()!
        let me = Unmanaged.passUnretained(self).toOpaque()
        llmp_easy_setopt_opensocket_cb(easy) { clientp, purpose, address in
            guard purpose == CURLSOCKTYPE_IPCXN, let address else { return CURL_SOCKET_BAD }
            return Unmanaged<CurlMulti>.fromOpaque(clientp!).takeUnretainedValue().openSocket(address.pointee)
        }
        llmp_easy_setopt_pointer(easy, CURLOPT_OPENSOCKETDATA, me)
        llmp_easy_setopt_closesocket_cb(easy) { clientp, socket in
            Unmanaged<CurlMulti>.fromOpaque(clientp!).takeUnretainedValue().closeSocket(socket)
        }
        llmp_easy_setopt_pointer(easy, CURLOPT_CLOSESOCKETDATA, me)
        return easy
    }

    /// Takes back a handle no longer in the multi: reset for the next transfer (its connection stays
    /// in the multi's cache).
    func recycle(_ easy: UnsafeMutableRawPointer) {
        guard loop.inEventLoop, idleEasyHandles.count < Self.maxIdleEasyHandles else {
            curl_easy_cleanup(easy)
            return
        }
        curl_easy_reset(easy)
        idleEasyHandles.append(easy)
    }

    func add(_ transfer: CurlTransfer) {
        loop.assertInLoop()
        transfers[transfer.easy] = transfer
        let rc = curl_multi_add_handle(multi, transfer.easy)
        if rc != CURLM_OK {
            transfers[transfer.easy] = nil
            transfer.finish(.failure(.internalError("curl_multi_add_handle: \(String(cString: curl_multi_strerror(rc)))")))
        }
    }

    /// Stops a transfer early (client gone, timeout). Its completion is not reported by curl afterwards.
    func remove(_ transfer: CurlTransfer) {
        loop.assertInLoop()
        guard transfers.removeValue(forKey: transfer.easy) != nil else { return }
        curl_multi_remove_handle(multi, transfer.easy)
    }

    // MARK: Callbacks from curl (inside curl calls, on the loop)

    private func openSocket(_ address: curl_sockaddr) -> curl_socket_t {
        let fd = socket(address.family, address.socktype | Int32(SOCK_CLOEXEC.rawValue), address.protocol)
        guard fd >= 0 else { return CURL_SOCKET_BAD }
        connectionSockets.insert(fd)
        return fd
    }

    private func closeSocket(_ socket: curl_socket_t) -> Int32 {
        if !cleaningUp {
            connectionSockets.remove(socket)
            if let w = watchers.removeValue(forKey: socket), w.registered {
                loop.forgetClosing(socket)  // closing it takes it out of the epoll set
            }
        }
        return Glibc.close(socket)
    }

    private func socketChanged(_ socket: curl_socket_t, _ what: Int32) {
        if what == CURL_POLL_REMOVE {
            guard let w = watchers[socket] else { return }
            if connectionSockets.contains(socket) {
                w.curlWatches = false  // parked: stays registered until it wakes or curl closes it
            } else {
                watchers[socket] = nil
                if w.registered { loop.unregister(socket) }
            }
            return
        }
        var interest = Interest(rawValue: 0)
        if what == CURL_POLL_IN || what == CURL_POLL_INOUT { interest.formUnion(Interest(rawValue: EPOLLIN.rawValue)) }
        if what == CURL_POLL_OUT || what == CURL_POLL_INOUT { interest.formUnion(.write) }
        let w: CurlSocketWatcher
        if let existing = watchers[socket] {
            w = existing
        } else {
            w = CurlSocketWatcher(fd: socket, multi: self)
            watchers[socket] = w
        }
        w.curlWatches = true
        do {
            if !w.registered {
                try loop.register(socket, interest: interest, handler: w)
                w.registered = true
            } else if w.interest != interest {
                try loop.modify(socket, interest: interest)
            }
            w.interest = interest
        } catch {
            // A registration gone stale (closes are reported, so this should not happen): start over once.
            if w.registered { loop.unregister(socket) }
            w.registered = (try? loop.register(socket, interest: interest, handler: w)) != nil
            if w.registered { w.interest = interest } else { watchers[socket] = nil }
        }
    }

    /// A parked socket became readable or hung up while no transfer uses it: stop watching it (curl finds
    /// the connection dead when it next checks it, and closes it).
    fileprivate func parkedSocketWoke(_ w: CurlSocketWatcher) {
        loop.unregister(w.fd)
        w.registered = false
    }

    /// Only schedules: calling curl back from inside its own callback is not allowed.
    private func timerChanged(_ timeoutMillis: Int) {
        if let t = timer {
            loop.cancelTimer(t)
            timer = nil
        }
        guard timeoutMillis >= 0 else { return }
        timer = loop.schedule(afterNanos: UInt64(timeoutMillis) * 1_000_000) { [weak self] in
            guard let self else { return }
            timer = nil
            action(socket: CURL_SOCKET_TIMEOUT, events: 0)
        }
    }

    // MARK: Driving curl

    func action(socket: curl_socket_t, events: Int32) {
        var running: Int32 = 0
        curl_multi_socket_action(multi, socket, events, &running)
        drainCompleted()
    }

    private func drainCompleted() {
        var left: Int32 = 0
        while let msg = curl_multi_info_read(multi, &left) {
            guard llmp_msg_is_done(msg) != 0, let easy = llmp_msg_easy(msg) else { continue }
            let result = llmp_msg_result(msg)
            guard let transfer = transfers.removeValue(forKey: easy) else { continue }
            curl_multi_remove_handle(multi, easy)
            transfer.curlDone(result)
        }
    }
}

/// Readiness of one curl socket, forwarded to curl while curl watches it.
final class CurlSocketWatcher: EventHandler {
    let fd: Int32
    unowned let multi: CurlMulti
    var registered = false
    var interest = Interest(rawValue: 0)
    var curlWatches = false

    init(fd: Int32, multi: CurlMulti) {
        self.fd = fd
        self.multi = multi
    }

    func handleEvents(_ events: UInt32) {
        guard curlWatches else {
            multi.parkedSocketWoke(self)
            return
        }
        var flags: Int32 = 0
        if events & (EpollEvents.readable | EpollEvents.hangup) != 0 { flags |= CURL_CSELECT_IN }
        if events & EpollEvents.writable != 0 { flags |= CURL_CSELECT_OUT }
        if events & EpollEvents.error != 0 { flags |= CURL_CSELECT_ERR }
        multi.action(socket: fd, events: flags)
    }
}
