import CLinux
import Glibc

/// A host and port as given by the user (`0.0.0.0:8132`, `[::1]:0`, `localhost:8132`).
public struct HostPort: Sendable, Equatable, CustomStringConvertible {
    public var host: String
    public var port: UInt16

    public init(host: String, port: UInt16) {
        self.host = host
        self.port = port
    }

    /// Parses `HOST:PORT`; an IPv6 host goes in brackets.
    public init?(parsing text: String) {
        var hostPart: Substring
        var portPart: Substring
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else { return nil }
            hostPart = text[text.index(after: text.startIndex)..<close]
            let rest = text[text.index(after: close)...]
            guard rest.hasPrefix(":") else { return nil }
            portPart = rest.dropFirst()
        } else {
            guard let colon = text.lastIndex(of: ":") else { return nil }
            hostPart = text[..<colon]
            portPart = text[text.index(after: colon)...]
            if hostPart.contains(":") { return nil }
        }
        guard !hostPart.isEmpty, let port = UInt16(portPart) else { return nil }
        self.host = String(hostPart)
        self.port = port
    }

    public var description: String {
        host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
    }
}

/// Resolved socket addresses for binding (start-up only: name resolution blocks).
enum SocketAddress {
    struct Resolved {
        var family: Int32
        var storage: sockaddr_storage
        var length: socklen_t

        /// A copy of one `getaddrinfo` result's address.
        init(_ info: addrinfo) {
            var storage = sockaddr_storage()
            withUnsafeMutableBytes(of: &storage) { dst in
                dst.copyMemory(from: UnsafeRawBufferPointer(start: info.ai_addr, count: Int(info.ai_addrlen)))
            }
            self.init(family: info.ai_family, storage: storage, length: info.ai_addrlen)
        }

        /// A copy of a `sockaddr_in` or `sockaddr_in6`.
        init<Address>(copying address: Address, family: Int32) {
            var storage = sockaddr_storage()
            withUnsafeMutableBytes(of: &storage) { dst in withUnsafeBytes(of: address) { dst.copyMemory(from: $0) } }
            self.init(family: family, storage: storage, length: socklen_t(MemoryLayout<Address>.size))
        }

        init(family: Int32, storage: sockaddr_storage, length: socklen_t) {
            self.family = family
            self.storage = storage
            self.length = length
        }
    }

    static func resolve(_ hp: HostPort) throws(SystemError) -> Resolved {
        var hints = addrinfo()
        hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var result: UnsafeMutablePointer<addrinfo>?
        let rc = getaddrinfo(hp.host, String(hp.port), &hints, &result)
        guard rc == 0, let first = result else {
            throw SystemError("getaddrinfo(\(hp.host))", errno: rc == EAI_SYSTEM ? Glibc.errno : EINVAL)
        }
        defer { freeaddrinfo(result) }
        return Resolved(first.pointee)
    }

    /// The port a bound socket actually got (for port 0).
    static func localPort(of fd: Int32) throws(SystemError) -> UInt16 {
        var storage = sockaddr_storage()
        var len = socklen_t(MemoryLayout<sockaddr_storage>.size)
        _ = try withUnsafeMutablePointer(to: &storage) { p throws(SystemError) in
            try p.withMemoryRebound(to: sockaddr.self, capacity: 1) { sa throws(SystemError) in
                try Sys.call("getsockname") { getsockname(fd, sa, &len) }
            }
        }
        // sin_port and sin6_port both sit at offset 2.
        return withUnsafeBytes(of: storage) { UInt16(bigEndian: $0.load(fromByteOffset: 2, as: UInt16.self)) }
    }

    /// A non-blocking listening socket with `SO_REUSEADDR` and `SO_REUSEPORT`.
    static func listen(_ hp: HostPort, backlog: Int32 = 4096) throws(SystemError) -> Int32 {
        var resolved = try resolve(hp)
        let fd = try Sys.call("socket") {
            socket(resolved.family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        }
        do {
            try Sys.setOption(fd, SOL_SOCKET, SO_REUSEADDR, 1)
            try Sys.setOption(fd, SOL_SOCKET, SO_REUSEPORT, 1)
            let len = resolved.length
            _ = try withUnsafePointer(to: &resolved.storage) { p throws(SystemError) in
                try p.withMemoryRebound(to: sockaddr.self, capacity: 1) { sa throws(SystemError) in
                    try Sys.call("bind") { bind(fd, sa, len) }
                }
            }
            _ = try Sys.call("listen") { Glibc.listen(fd, backlog) }
        } catch {
            Sys.close(fd)
            throw error
        }
        return fd
    }
}
