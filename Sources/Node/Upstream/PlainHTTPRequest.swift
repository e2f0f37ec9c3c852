/// Where a plain `http://` URL points, split for a request of our own: the address to connect to, the
/// `host` header and the request target.
public struct PlainHTTPTarget: Equatable, Sendable {
    /// Host name or address, without IPv6 brackets.
    public var host: String
    public var port: UInt16
    /// As written in the URL (`host`, `host:port`, `[::1]:8000`): the `host` header and the pool key.
    public var authority: String
    /// Path and query, `/` when the URL has none.
    public var requestTarget: String

    /// Nil unless `url` is `http://` without user information (those go to curl).
    public init?(_ url: String) {
        guard let (target, rest) = Self.split(url) else { return nil }
        // The address with an empty target, then the rest of the URL as its suffix (fragment dropped,
        // `/` when empty): the same rule as an endpoint's requests.
        self = target.appending(Substring(rest))
    }

    /// A connection's endpoint (`http://host:port/v1`), parsed once and then `appending` each request's
    /// path: nil where `init?(_:)` is, and for an endpoint with a query or fragment.
    public static func endpoint(_ url: String) -> PlainHTTPTarget? {
        guard let (parsed, path) = split(url), !path.contains(0x3F), !path.contains(0x23) else { return nil }
        var target = parsed
        target.requestTarget = String(Substring(path))  // as written, possibly empty
        return target
    }

    /// An endpoint's target with `suffix` (path and query) after its path; what `init?(endpoint + suffix)`
    /// gives, without building and splitting the URL again.
    public func appending(_ suffix: Substring) -> PlainHTTPTarget {
        var t = self
        var bytes: [UInt8] = []
        appendRequestTarget(to: &bytes, suffix: suffix)
        t.requestTarget = String(decoding: bytes, as: UTF8.self)
        return t
    }

    /// Appends this target's request target followed by `suffix` (without its fragment) as `appending`
    /// makes it — `/` when empty, `/?q` when it starts with its query — straight into a request head.
    func appendRequestTarget(to out: inout [UInt8], suffix: Substring) {
        var s = suffix.utf8[...]
        if let hash = suffix.utf8Index(of: 0x23) { s = s[s.startIndex..<hash] }
        if requestTarget.isEmpty && (s.isEmpty || s.first == 0x3F) { out.append(0x2F) }
        out.appendUTF8(requestTarget)
        if s.withContiguousStorageIfAvailable({ out.append(contentsOf: $0) }) == nil { out.append(contentsOf: s) }
    }

    /// The address part of an `http://` URL, and what follows the authority (path, query, fragment).
    private static func split(_ url: String) -> (PlainHTTPTarget, Substring.UTF8View)? {
        let u = Substring(url).utf8
        guard u.count > 7, u.prefix(7).elementsEqual("http://".utf8, by: { ($0 | 0x20) == $1 }) else { return nil }
        let rest = u.dropFirst(7)
        let authorityEnd = rest.firstIndex { $0 == 0x2F || $0 == 0x3F || $0 == 0x23 } ?? rest.endIndex
        let authority = rest[rest.startIndex..<authorityEnd]
        guard !authority.isEmpty, !authority.contains(0x40) else { return nil }  // '@'
        var hostPart = authority[...]
        var portPart: Substring.UTF8View.SubSequence?
        if authority.first == 0x5B {  // "[v6]" or "[v6]:port"
            guard let close = authority.firstIndex(of: 0x5D) else { return nil }
            hostPart = authority[authority.index(after: authority.startIndex)..<close]
            let after = authority[authority.index(after: close)...]
            if !after.isEmpty {
                guard after.first == 0x3A else { return nil }
                portPart = after.dropFirst()
            }
        } else if let colon = authority.firstIndex(of: 0x3A) {
            hostPart = authority[authority.startIndex..<colon]
            portPart = authority[authority.index(after: colon)...]
        }
        guard !hostPart.isEmpty, let host = String(hostPart) else { return nil }
        var port: UInt16 = 80
        if let portPart, !portPart.isEmpty {
            guard portPart.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }), let text = String(portPart), let p = UInt16(text), p > 0 else { return nil }
            port = p
        }
        return (PlainHTTPTarget(host: host, port: port, authority: String(authority)!, requestTarget: ""), rest[authorityEnd...])
    }

    init(host: String, port: UInt16, authority: String, requestTarget: String) {
        self.host = host
        self.port = port
        self.authority = authority
        self.requestTarget = requestTarget
    }
}

/// The bytes of a request head for an upstream HTTP/1.1 connection.
enum PlainHTTPRequest {
    struct InvalidHeader: Error {
        let name: String
    }

    /// `METHOD target HTTP/1.1` (the target's request target, then `suffix`), `host`, the given fields, and
    /// `content-length` when a body is sent or the method normally has one. A field whose name or value
    /// could break the head is refused, not sent.
    static func head(method: HTTPMethod, target: PlainHTTPTarget, suffix: Substring = "", headers: HTTPHeaders,
                     bodyCount: Int) throws(InvalidHeader) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(64 + target.requestTarget.utf8.count + suffix.utf8.count + target.authority.utf8.count + headers.lineBytes)
        out.appendUTF8(method.rawValue)
        out.append(0x20)
        target.appendRequestTarget(to: &out, suffix: suffix)
        out.append(contentsOf: " HTTP/1.1\r\nhost: ".utf8)
        out.appendUTF8(target.authority)
        out.append(0x0D)
        out.append(0x0A)
        // Each field checked as it is copied: a name of token characters, a value without control characters.
        var invalid: Int?
        headers.forEachField { i, name, value in
            guard invalid == nil else { return }
            guard HeadBytes.isToken(name), HeadBytes.isFieldValue(value) else {
                invalid = i
                return
            }
            out.appendField(name, value)
        }
        if let invalid { throw InvalidHeader(name: headers.withField(invalid) { name, _ in String(decoding: name, as: UTF8.self) }) }
        if bodyCount > 0 || method == .POST || method == .PUT || method == .PATCH {
            out.append(contentsOf: "content-length: ".utf8)
            out.append(contentsOf: String(bodyCount).utf8)
            out.append(0x0D)
            out.append(0x0A)
        }
        out.append(0x0D)
        out.append(0x0A)
        return out
    }
}
