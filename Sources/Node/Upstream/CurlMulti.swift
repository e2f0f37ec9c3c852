import CCurl
import CLinux
import Glibc

private let curlGlobalInit: Void = { curl_global_init(Int(CURL_GLOBAL_ALL)) }()

/// One libcurl multi handle driven by one event loop (the multi_socket API): curl tells us which sockets
/// to watch and when to wake it; we tell it what became ready. Everything happens on the loop thread.
final class CurlMulti {
    let loop: EventLoop
    let multi: UnsafeMutableRawPointer
    private var watchers: [Int32: CurlSocketWatcher] = [:]
    private var timer: UInt64?
    private var transfers: [UnsafeMutableRawPointer: UpstreamTransfer] = [:]

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

    deinit { curl_multi_cleanup(multi) }

    var activeTransfers: Int { transfers.count }

    func add(_ transfer: UpstreamTransfer) {
        loop.assertInLoop()
        transfers[transfer.easy] = transfer
        let rc = curl_multi_add_handle(multi, transfer.easy)
        if rc != CURLM_OK {
            transfers[transfer.easy] = nil
            transfer.finish(.failure(.internalError("curl_multi_add_handle: \(String(cString: curl_multi_strerror(rc)))")))
        }
    }

    /// Stops a transfer early (client gone, timeout). Its completion is not reported by curl afterwards.
    func remove(_ transfer: UpstreamTransfer) {
        loop.assertInLoop()
        guard transfers.removeValue(forKey: transfer.easy) != nil else { return }
        curl_multi_remove_handle(multi, transfer.easy)
    }

    // MARK: Callbacks from curl (inside curl calls, on the loop)

    private func socketChanged(_ socket: curl_socket_t, _ what: Int32) {
        if what == CURL_POLL_REMOVE {
            if let w = watchers.removeValue(forKey: socket) { loop.unregister(w.fd) }
            return
        }
        var interest = Interest(rawValue: 0)
        if what == CURL_POLL_IN || what == CURL_POLL_INOUT { interest.formUnion(Interest(rawValue: EPOLLIN.rawValue)) }
        if what == CURL_POLL_OUT || what == CURL_POLL_INOUT { interest.formUnion(.write) }
        if let w = watchers[socket] {
            try? loop.modify(socket, interest: interest)
            _ = w
        } else {
            let w = CurlSocketWatcher(fd: socket, multi: self)
            watchers[socket] = w
            do { try loop.register(socket, interest: interest, handler: w) } catch { watchers[socket] = nil }
        }
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

/// Readiness of one curl socket, forwarded to curl.
final class CurlSocketWatcher: EventHandler {
    let fd: Int32
    unowned let multi: CurlMulti

    init(fd: Int32, multi: CurlMulti) {
        self.fd = fd
        self.multi = multi
    }

    func handleEvents(_ events: UInt32) {
        var flags: Int32 = 0
        if events & (EpollEvents.readable | EpollEvents.hangup) != 0 { flags |= CURL_CSELECT_IN }
        if events & EpollEvents.writable != 0 { flags |= CURL_CSELECT_OUT }
        if events & EpollEvents.error != 0 { flags |= CURL_CSELECT_ERR }
        multi.action(socket: fd, events: flags)
    }
}
