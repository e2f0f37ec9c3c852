import CCurl
import Glibc

/// One upstream HTTP call as a curl easy handle, delivering head, body pieces and the end on its loop.
/// Body delivery returns `false` to pause (backpressure): curl then offers the same bytes again after
/// `resume()`.
final class CurlTransfer: UpstreamCall {

    let easy: UnsafeMutableRawPointer
    private unowned let multi: CurlMulti
    private var headerList: UnsafeMutablePointer<curl_slist>?
    private let body: [UInt8]
    private var head = UpstreamHeadReader()
    private var headDelivered = false
    private var finished = false
    private var firstByteTimer: UInt64?
    private var paused = false

    var delegate: (any UpstreamCallDelegate)?

    init(multi: CurlMulti, method: HTTPMethod, url: String, headers: HTTPHeaders, body: [UInt8], timeouts: UpstreamTimeouts) {
        self.multi = multi
        self.body = body
        easy = multi.makeEasyHandle()
        let me = Unmanaged.passUnretained(self).toOpaque()
        // `withCString` and byte buffers: passing a String straight to a C pointer copies it into a new array.
        url.withCString { _ = llmp_easy_setopt_string(easy, CURLOPT_URL, $0) }
        llmp_easy_setopt_long(easy, CURLOPT_NOSIGNAL, 1)
        llmp_easy_setopt_long(easy, CURLOPT_HTTP_VERSION, Int(CURL_HTTP_VERSION_2TLS))
        llmp_easy_setopt_long(easy, CURLOPT_CONNECTTIMEOUT_MS, timeouts.connect)
        llmp_easy_setopt_long(easy, CURLOPT_LOW_SPEED_LIMIT, 1)
        llmp_easy_setopt_long(easy, CURLOPT_LOW_SPEED_TIME, max(1, timeouts.idle / 1000))
        llmp_easy_setopt_long(easy, CURLOPT_SSL_VERIFYPEER, 1)
        llmp_easy_setopt_long(easy, CURLOPT_SSL_VERIFYHOST, 2)
        llmp_easy_setopt_long(easy, CURLOPT_TCP_NODELAY, 1)
        llmp_easy_setopt_pointer(easy, CURLOPT_PRIVATE, me)
        var list: UnsafeMutablePointer<curl_slist>?
        var line: [UInt8] = []
        line.reserveCapacity(256)
        headers.forEachField { _, name, value in
            line.removeAll(keepingCapacity: true)
            line.append(contentsOf: name)
            line.append(0x3A)
            line.append(0x20)
            line.append(contentsOf: value)
            line.append(0)
            line.withUnsafeBytes { list = curl_slist_append(list, $0.baseAddress!.assumingMemoryBound(to: CChar.self)) }  // copied by curl
        }
        list = curl_slist_append(list, "Expect:")  // no 100-continue round trip for large bodies
        headerList = list
        llmp_easy_setopt_slist(easy, CURLOPT_HTTPHEADER, list)
        switch method {
        case .GET: llmp_easy_setopt_long(easy, CURLOPT_HTTPGET, 1)
        case .HEAD: llmp_easy_setopt_long(easy, CURLOPT_NOBODY, 1)
        default:
            if method != .POST { llmp_easy_setopt_string(easy, CURLOPT_CUSTOMREQUEST, method.rawValue) }
            llmp_easy_setopt_long(easy, CURLOPT_POST, 1)
            self.body.withUnsafeBytes { p in
                _ = llmp_easy_setopt_off(easy, CURLOPT_POSTFIELDSIZE_LARGE, curl_off_t(p.count))
                _ = llmp_easy_setopt_pointer(easy, CURLOPT_POSTFIELDS, UnsafeMutableRawPointer(mutating: p.baseAddress))
            }
        }
        llmp_easy_setopt_pointer(easy, CURLOPT_HEADERDATA, me)
        llmp_easy_setopt_data_cb(easy, CURLOPT_HEADERFUNCTION) { ptr, size, count, userdata in
            let t = Unmanaged<CurlTransfer>.fromOpaque(userdata!).takeUnretainedValue()
            if t.head.take(UnsafeRawBufferPointer(start: ptr, count: size * count)) { t.deliverHead() }
            return size * count
        }
        llmp_easy_setopt_pointer(easy, CURLOPT_WRITEDATA, me)
        llmp_easy_setopt_data_cb(easy, CURLOPT_WRITEFUNCTION) { ptr, size, count, userdata in
            let t = Unmanaged<CurlTransfer>.fromOpaque(userdata!).takeUnretainedValue()
            return t.data(UnsafeRawBufferPointer(start: ptr, count: size * count)) ? size * count : Int(llmp_write_pause())
        }
        firstByteTimer = multi.loop.schedule(afterNanos: UInt64(timeouts.firstByte) * 1_000_000) { [weak self] in
            guard let self, !self.headDelivered else { return }
            self.firstByteTimer = nil
            self.multi.remove(self)
            self.finish(.failure(.timeout("no response from upstream within \(timeouts.firstByte / 1000)s")))
        }
    }

    deinit {
        multi.recycle(easy)  // no longer in the multi: every path to the end removes it first
        curl_slist_free_all(headerList)
    }

    /// Starts the transfer; keeps itself alive until it ends.
    func start() {
        guard !finished else { return }  // cancelled before it started: never sent
        retainedSelf = self
        multi.add(self)
    }

    private var retainedSelf: CurlTransfer?

    func cancel() {
        guard !finished else { return }
        multi.remove(self)
        finish(.failure(.cancelled))
    }

    func resume() {
        guard paused, !finished else { return }
        paused = false
        curl_easy_pause(easy, CURLPAUSE_CONT)
    }

    // MARK: curl callbacks

    private func deliverHead() {
        guard !headDelivered else { return }
        headDelivered = true
        if let t = firstByteTimer {
            multi.loop.cancelTimer(t)
            firstByteTimer = nil
        }
        delegate?.upstreamHead(head.head)
    }

    private func data(_ bytes: UnsafeRawBufferPointer) -> Bool {
        if !headDelivered { deliverHead() }
        if finished { return true }
        if delegate?.upstreamData(bytes) ?? true { return true }
        paused = true
        return false
    }

    func curlDone(_ code: CURLcode) {
        if code == CURLE_OK {
            if !headDelivered { deliverHead() }
            finish(.success(()))
            return
        }
        let message = String(cString: curl_easy_strerror(code))
        switch code {
        case CURLE_OPERATION_TIMEDOUT: finish(.failure(.timeout("upstream timed out: \(message)")))
        default: finish(.failure(.unreachable("upstream failed: \(message)")))
        }
    }

    func finish(_ result: UpstreamResult) {
        guard !finished else { return }
        finished = true
        if let t = firstByteTimer {
            multi.loop.cancelTimer(t)
            firstByteTimer = nil
        }
        let receiver = delegate
        delegate = nil
        receiver?.upstreamEnd(result)
        // Release after curl is done with us: curl may still be inside a callback of ours.
        multi.loop.enqueueLocal { [self] in retainedSelf = nil }
    }

    var headWasDelivered: Bool { headDelivered }
}
