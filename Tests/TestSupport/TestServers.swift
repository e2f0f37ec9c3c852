import Foundation
import Glibc

/// Throwaway servers for integration tests: each starts once per test process on a free loopback port
/// and is stopped when the process exits. A missing binary is an error, never a skip.
public enum TestServers {
    /// The package root, from this file's path.
    public static let packageRoot: String = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return url.path
    }()

    /// A SQLite URL in a fresh temporary directory (removed at exit).
    public static func tempSQLiteURL() -> String {
        let dir = "/tmp/llmp-test-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        onExit("rm -rf \(dir)")
        return "sqlite:\(dir)/llm-proxy.db"
    }

    public static func freePort() -> UInt16 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr)
        _ = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
        return UInt16(bigEndian: addr.sin_port)
    }

    public static func waitForPort(_ port: UInt16, timeout: TimeInterval = 15) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if (try? RawHTTPClient(port: port, timeoutSeconds: 1)) != nil { return true }
            usleep(20_000)
        }
        return false
    }

    /// Runs a shell command to completion, failing with its output if it exits non-zero. Output goes to a
    /// file, not a pipe, so daemons the command starts (pg_ctl) do not hold our descriptors open.
    @discardableResult
    public static func shell(_ command: String) throws -> String {
        let out = "/tmp/llmp-sh-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).out"
        defer { unlink(out) }
        let status = system("(\(command)) > \(out) 2>&1 < /dev/null")
        let output = (try? String(contentsOfFile: out, encoding: .utf8)) ?? ""
        guard status == 0 else { throw ChildError(description: "`\(command)` failed (status \(status)):\n\(output)") }
        return output
    }

    static let cleanups = NSLock()
    nonisolated(unsafe) static var cleanupCommands: [String] = []
    nonisolated(unsafe) static var atexitRegistered = false

    public static func onExit(_ command: String) {
        cleanups.lock()
        defer { cleanups.unlock() }
        cleanupCommands.append(command)
        if !atexitRegistered {
            atexitRegistered = true
            atexit {
                for c in TestServers.cleanupCommands.reversed() { _ = system(c + " >/dev/null 2>&1") }
            }
        }
    }

    public static func which(_ name: String, extra: [String] = []) -> String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        for dir in extra + path.split(separator: ":").map(String.init) {
            let candidate = dir + "/" + name
            if access(candidate, X_OK) == 0 { return candidate }
        }
        return nil
    }
}

/// PostgreSQL 15 via initdb/pg_ctl (as the postgres user when running as root).
public final class PostgresTestServer: @unchecked Sendable {
    public let port: UInt16
    public let dataDir: String
    private let pgBin: String
    private let asUser: String

    private static let lock = NSLock()
    nonisolated(unsafe) private static var instance: PostgresTestServer?

    public static func shared() throws -> PostgresTestServer {
        lock.lock()
        defer { lock.unlock() }
        if let i = instance { return i }
        let i = try PostgresTestServer()
        instance = i
        return i
    }

    /// A server of its own, for tests that stop or restart it.
    public static func dedicated() throws -> PostgresTestServer { try PostgresTestServer() }

    private init() throws {
        guard let initdb = TestServers.which("initdb", extra: ["/usr/lib/postgresql/15/bin"]) else {
            throw ChildError(description: "PostgreSQL 15 (initdb) not found: run scripts/install-deps.sh test")
        }
        pgBin = (initdb as NSString).deletingLastPathComponent
        port = TestServers.freePort()
        dataDir = "/tmp/llmp-pg-\(getpid())-\(port)"
        asUser = getuid() == 0 ? "runuser -u postgres -- " : ""
        try TestServers.shell("rm -rf \(dataDir) && mkdir -p \(dataDir) && chmod 700 \(dataDir)" + (getuid() == 0 ? " && chown postgres:postgres \(dataDir)" : ""))
        try TestServers.shell("\(asUser)\(pgBin)/initdb -D \(dataDir)/data -A trust -U postgres --no-sync")
        TestServers.onExit("\(asUser)\(pgBin)/pg_ctl -D \(dataDir)/data -m immediate stop; rm -rf \(dataDir)")
        try start()
    }

    public func start() throws {
        try TestServers.shell("\(asUser)\(pgBin)/pg_ctl -D \(dataDir)/data -w -t 30 -l \(dataDir)/log -o \"-p \(port) -k \(dataDir) -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=300\" start")
    }

    public func stop() throws {
        try TestServers.shell("\(asUser)\(pgBin)/pg_ctl -D \(dataDir)/data -w -m fast stop")
    }

    public func restart() throws {
        try stop()
        try start()
    }

    /// A fresh, empty database; returns its URL.
    public func makeDatabase() throws -> String {
        let name = "t_\(UInt32.random(in: 0...UInt32.max))_\(UInt32.random(in: 0...UInt32.max))"
        try TestServers.shell("\(asUser)\(pgBin)/psql -h 127.0.0.1 -p \(port) -U postgres -d postgres -qc 'CREATE DATABASE \(name)'")
        return "postgres://postgres@127.0.0.1:\(port)/\(name)"
    }
}

/// SecantusDB (MongoDB wire protocol) from the project's venv, with on-disk storage so restarts keep data.
public final class MongoTestServer: @unchecked Sendable {
    public let port: UInt16
    public let dataDir: String
    private let python: String
    private var child: ChildProcess?
    private let childLock = NSLock()

    private static let lock = NSLock()
    nonisolated(unsafe) private static var instance: MongoTestServer?

    public static func shared() throws -> MongoTestServer {
        lock.lock()
        defer { lock.unlock() }
        if let i = instance { return i }
        let i = try MongoTestServer()
        instance = i
        return i
    }

    /// A server of its own, for tests that stop or restart it.
    public static func dedicated() throws -> MongoTestServer { try MongoTestServer() }

    private init() throws {
        let venv = ProcessInfo.processInfo.environment["LLM_PROXY_TEST_VENV"] ?? TestServers.packageRoot + "/.venv"
        python = venv + "/bin/python"
        guard access(python, X_OK) == 0 else {
            throw ChildError(description: "SecantusDB venv not found at \(venv): run scripts/install-deps.sh test")
        }
        port = TestServers.freePort()
        dataDir = "/tmp/llmp-mongo-\(getpid())-\(port)"
        try TestServers.shell("rm -rf \(dataDir) && mkdir -p \(dataDir)")
        // "[s]ecantus" so the pattern does not match the cleanup shell's own command line (pkill would kill
        // the shell before its `rm`); the loop waits for the server to die before removing its files.
        let server = "[s]ecantus --host 127.0.0.1 --port \(port) "
        TestServers.onExit("pkill -KILL -f '\(server)'; for _ in $(seq 100); do pgrep -f '\(server)' || break; sleep 0.05; done; rm -rf \(dataDir)")
        try start()
    }

    public func start() throws {
        let c = try ChildProcess(python, ["-m", "secantus", "--host", "127.0.0.1", "--port", String(port), "--storage-path", dataDir + "/db", "--log-level", "WARNING"])
        guard TestServers.waitForPort(port, timeout: 30) else {
            c.stop()
            throw ChildError(description: "SecantusDB did not start on \(port): \(c.outputText)")
        }
        childLock.lock()
        child = c
        childLock.unlock()
    }

    public func stop() {
        childLock.lock()
        let c = child
        child = nil
        childLock.unlock()
        c?.stop()
    }

    public func restart() throws {
        stop()
        try start()
    }

    public func url(database: String) -> String { "mongodb://127.0.0.1:\(port)/\(database)" }

    public func makeDatabase() -> String { url(database: "t_\(UInt32.random(in: 0...UInt32.max))") }
}

/// redis-server on a free port, without persistence; can be killed, stopped (SIGSTOP) and restarted.
public final class RedisTestServer: @unchecked Sendable {
    public let port: UInt16
    private let password: String?
    private var child: ChildProcess?
    private let lock = NSLock()

    public init(password: String? = nil) throws {
        guard TestServers.which("redis-server") != nil else {
            throw ChildError(description: "redis-server not found: run scripts/install-deps.sh test")
        }
        port = TestServers.freePort()
        self.password = password
        try start()
    }

    public func start() throws {
        var args = ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--protected-mode", "no"]
        if let p = password { args += ["--requirepass", p] }
        let c = try ChildProcess(TestServers.which("redis-server")!, args)
        _ = try c.waitForOutput(containing: "Ready to accept connections", timeout: 15)
        lock.lock()
        child = c
        lock.unlock()
    }

    public var pid: Int32 { lock.lock(); defer { lock.unlock() }; return child?.process.processIdentifier ?? 0 }

    public func kill() {
        lock.lock()
        let c = child
        child = nil
        lock.unlock()
        c?.signal(SIGKILL)
        _ = c?.waitForExit(timeout: 5)
    }

    public func pause() { Glibc.kill(pid, SIGSTOP) }
    public func resume() { Glibc.kill(pid, SIGCONT) }

    public func restart() throws {
        kill()
        try start()
    }

    public var url: String { "redis://\(password.map { ":\($0)@" } ?? "")127.0.0.1:\(port)" }

    deinit {
        resume()
        kill()
    }
}
