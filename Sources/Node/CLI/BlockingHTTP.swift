import CCurl
import Storage

/// One blocking HTTP call with a curl easy handle, for short-lived CLI commands only (never a node's
/// event loop): the admin CLI's `--server` mode and `healthcheck`.
enum BlockingHTTP {
    final class Sink { var bytes: [UInt8] = [] }

    static func request(_ method: String, _ url: String, headers: [String] = [], body: [UInt8]? = nil,
                        timeoutMillis: Int = 30_000) throws -> (status: Int, body: [UInt8]) {
        guard let easy = curl_easy_init() else { throw StoreError(.unavailable, "cannot start an HTTP client") }
        defer { curl_easy_cleanup(easy) }
        var list: UnsafeMutablePointer<curl_slist>?
        for h in headers + ["Expect:"] { list = curl_slist_append(list, h) }
        defer { curl_slist_free_all(list) }
        llmp_easy_setopt_string(easy, CURLOPT_URL, url)
        llmp_easy_setopt_string(easy, CURLOPT_CUSTOMREQUEST, method)
        llmp_easy_setopt_slist(easy, CURLOPT_HTTPHEADER, list)
        llmp_easy_setopt_long(easy, CURLOPT_NOSIGNAL, 1)
        llmp_easy_setopt_long(easy, CURLOPT_CONNECTTIMEOUT_MS, min(5000, timeoutMillis))
        llmp_easy_setopt_long(easy, CURLOPT_TIMEOUT_MS, timeoutMillis)
        let sink = Sink()
        llmp_easy_setopt_pointer(easy, CURLOPT_WRITEDATA, Unmanaged.passUnretained(sink).toOpaque())
        llmp_easy_setopt_data_cb(easy, CURLOPT_WRITEFUNCTION) { ptr, size, count, userdata in
            Unmanaged<Sink>.fromOpaque(userdata!).takeUnretainedValue().bytes.append(contentsOf: UnsafeRawBufferPointer(start: ptr, count: size * count))
            return size * count
        }
        let payload = body ?? []
        let rc: CURLcode = payload.withUnsafeBytes { p in
            if body != nil {
                llmp_easy_setopt_off(easy, CURLOPT_POSTFIELDSIZE_LARGE, curl_off_t(p.count))
                llmp_easy_setopt_pointer(easy, CURLOPT_POSTFIELDS, UnsafeMutableRawPointer(mutating: p.baseAddress ?? UnsafeRawPointer(bitPattern: 1)!))
            }
            return curl_easy_perform(easy)
        }
        guard rc == CURLE_OK else { throw StoreError(.unavailable, "cannot reach \(url): \(String(cString: curl_easy_strerror(rc)))") }
        var status = 0
        llmp_easy_getinfo_long(easy, CURLINFO_RESPONSE_CODE, &status)
        return (status, sink.bytes)
    }
}

/// `llm-proxy healthcheck`: exit 0 if the local node answers `/healthz` (the image's HEALTHCHECK).
enum HealthcheckCommand {
    static let spec = CommandSpec(
        name: "healthcheck", summary: "Exit 0 if a node answers /healthz (for container health checks).",
        options: [OptionSpec("url", value: "url", help: "What to check (default: /healthz on the port of LLM_PROXY_LISTEN, or 8132).")],
        run: { p in
            let url = p.string("url") ?? {
                let port = p.environment["LLM_PROXY_LISTEN"].flatMap { HostPort(parsing: $0)?.port } ?? 8132
                return "http://127.0.0.1:\(port)/healthz"
            }()
            do {
                let (status, _) = try BlockingHTTP.request("GET", url, timeoutMillis: 3000)
                if status == 200 { return 0 }
                writeStderr("unhealthy: \(url) answered \(status)\n")
            } catch {
                writeStderr("unhealthy: \(error)\n")
            }
            return 1
        })
}
