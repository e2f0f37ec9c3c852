/// Where and how to connect: from `redis://[user:password@]host:port[/db]`.
public struct RedisConfiguration: Sendable, Equatable {
    public var host: String
    public var port: Int
    public var username: String?
    public var password: String?
    public var database: Int
    /// Connecting plus AUTH/SELECT must finish within this.
    public var connectTimeoutNanos: UInt64 = 1_000_000_000
    /// Default per-command deadline.
    public var commandTimeoutNanos: UInt64 = 50_000_000
    /// Reconnect backoff: first delay and ceiling (with jitter).
    public var backoffBaseNanos: UInt64 = 50_000_000
    public var backoffMaxNanos: UInt64 = 2_000_000_000
    /// Send the commands issued in one pass of the event loop in one write, instead of each at once.
    /// Fewer system calls when many independent callers share the connection (the node's limiter);
    /// less overlap with the server when a few callers each wait for their reply before the next.
    public var coalesceWrites = false

    public init(host: String = "127.0.0.1", port: Int = 6379, username: String? = nil, password: String? = nil, database: Int = 0) {
        self.host = host
        self.port = port
        self.username = username
        self.password = password
        self.database = database
    }

    public init(url: String) throws(RedisError) {
        guard url.hasPrefix("redis://") else { throw RedisError(.invalidURL, "Redis URL must start with redis:// (rediss:// is not supported)") }
        var rest = Substring(url.dropFirst("redis://".count))
        var username: String?, password: String?
        if let at = rest.lastIndex(of: "@") {
            let userinfo = rest[..<at]
            rest = rest[rest.index(after: at)...]
            if let colon = userinfo.firstIndex(of: ":") {
                let u = userinfo[..<colon]
                username = u.isEmpty ? nil : String(u)
                password = String(userinfo[userinfo.index(after: colon)...])
            } else {
                password = String(userinfo)
            }
        }
        var database = 0
        if let slash = rest.firstIndex(of: "/") {
            let db = rest[rest.index(after: slash)...]
            rest = rest[..<slash]
            if !db.isEmpty {
                guard let d = Int(db), d >= 0 else { throw RedisError(.invalidURL, "Redis database must be a number, got \"\(db)\"") }
                database = d
            }
        }
        var host = String(rest), port = 6379
        if let colon = rest.lastIndex(of: ":"), !rest.hasPrefix("[") || rest[..<colon].hasSuffix("]") {
            guard let p = Int(rest[rest.index(after: colon)...]), p > 0, p < 65536 else {
                throw RedisError(.invalidURL, "invalid port in Redis URL")
            }
            port = p
            host = String(rest[..<colon])
        }
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        guard !host.isEmpty else { throw RedisError(.invalidURL, "Redis URL has no host") }
        self.init(host: host, port: port, username: username, password: password, database: database)
    }

    /// For logs: never the password.
    public var redacted: String {
        "redis://\(username.map { $0 + ":***@" } ?? (password == nil ? "" : ":***@"))\(host):\(port)/\(database)"
    }
}
