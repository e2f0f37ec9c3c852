import CLinux
import Dispatch
import Glibc

/// Provider host names to addresses without blocking an event loop: an address literal is parsed on the
/// spot, a name is looked up with `getaddrinfo` on a background queue (one lookup per name at a time,
/// however many calls wait for it) and kept for `ttl`. Failed lookups are not kept.
final class HostResolver: @unchecked Sendable {
    typealias Addresses = [SocketAddress.Resolved]

    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    private struct Entry {
        var addresses: Addresses
        var expires: UInt64
    }

    private struct State {
        var cache: [String: Entry] = [:]
        var waiting: [String: [(EventLoop, UncheckedSendableBox<(Result<Addresses, Failure>) -> Void>)]] = [:]
    }

    static let shared = HostResolver()
    let ttlNanos: UInt64
    private let state = LockedBox(State())
    private let queue = DispatchQueue(label: "llm-proxy.resolver", attributes: .concurrent)

    init(ttlNanos: UInt64 = 60_000_000_000) {
        self.ttlNanos = ttlNanos
    }

    /// The addresses of `host:port`, from the literal or the cache at once (on the calling thread), or
    /// later on `loop`.
    func resolve(_ host: String, port: UInt16, on loop: EventLoop, _ done: @escaping (Result<Addresses, Failure>) -> Void) {
        if let literal = Self.literal(host, port: port) {
            done(.success([literal]))
            return
        }
        let key = host + ":" + String(port)
        let now = monotonicNanos()
        let box = UncheckedSendableBox(done)
        enum Found { case cached(Addresses), queued, mustLookUp }
        let found = state.withLock { s -> Found in
            if let e = s.cache[key], e.expires > now { return .cached(e.addresses) }
            if s.waiting[key] != nil {
                s.waiting[key]!.append((loop, box))
                return .queued
            }
            s.waiting[key] = [(loop, box)]
            return .mustLookUp
        }
        switch found {
        case .cached(let a): return done(.success(a))
        case .queued: return
        case .mustLookUp: break
        }
        queue.async { [self] in
            let result = Self.lookUp(host, port: port)
            let waiters = state.withLock { s in
                if case .success(let a) = result { s.cache[key] = Entry(addresses: a, expires: monotonicNanos() + ttlNanos) }
                return s.waiting.removeValue(forKey: key) ?? []
            }
            for (loop, callback) in waiters { loop.execute { callback.value(result) } }
        }
    }

    /// An IPv4 or IPv6 address literal as a socket address, or nil for a name.
    static func literal(_ host: String, port: UInt16) -> SocketAddress.Resolved? {
        var v4 = in_addr()
        if inet_pton(AF_INET, host, &v4) == 1 {
            var sin = sockaddr_in()
            sin.sin_family = sa_family_t(AF_INET)
            sin.sin_port = port.bigEndian
            sin.sin_addr = v4
            return SocketAddress.Resolved(copying: sin, family: AF_INET)
        }
        var v6 = in6_addr()
        guard inet_pton(AF_INET6, host, &v6) == 1 else { return nil }
        var sin6 = sockaddr_in6()
        sin6.sin6_family = sa_family_t(AF_INET6)
        sin6.sin6_port = port.bigEndian
        sin6.sin6_addr = v6
        return SocketAddress.Resolved(copying: sin6, family: AF_INET6)
    }

    /// Blocking: background queue only.
    private static func lookUp(_ host: String, port: UInt16) -> Result<Addresses, Failure> {
        var hints = addrinfo()
        hints.ai_flags = AI_NUMERICSERV | AI_ADDRCONFIG
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = llmp_sock_stream
        var list: UnsafeMutablePointer<addrinfo>?
        let rc = getaddrinfo(host, String(port), &hints, &list)
        guard rc == 0, let list else {
            return .failure(Failure(description: "could not resolve \(host): \(String(cString: gai_strerror(rc)))"))
        }
        defer { freeaddrinfo(list) }
        var out: Addresses = []
        var p: UnsafeMutablePointer<addrinfo>? = list
        while let a = p {
            out.append(SocketAddress.Resolved(a.pointee))
            p = a.pointee.ai_next
        }
        return out.isEmpty ? .failure(Failure(description: "no addresses for \(host)")) : .success(out)
    }
}

/// A value handed between threads where the code guarantees it is used by one thread at a time.
struct UncheckedSendableBox<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}
