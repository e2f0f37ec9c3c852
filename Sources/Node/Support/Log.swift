import Storage
import Glibc
import Synchronization

/// Log severity, in order.
public enum LogLevel: Int, Sendable, Comparable, CaseIterable {
    case debug, info, warning, error

    public init?(name: String) {
        switch name.lowercased() {
        case "debug": self = .debug
        case "info": self = .info
        case "warning", "warn": self = .warning
        case "error": self = .error
        default: return nil
        }
    }

    public var name: String { ["debug", "info", "warning", "error"][rawValue] }
    public static func < (a: LogLevel, b: LogLevel) -> Bool { a.rawValue < b.rawValue }
}

/// A value in a log line. Callers pass ids, counts and statuses, never secrets or prompt bodies.
public enum LogValue: Sendable, ExpressibleByStringLiteral, ExpressibleByIntegerLiteral {
    case string(String)
    case int(Int)
    case double(Double)
    case bool(Bool)

    public init(stringLiteral value: String) { self = .string(value) }
    public init(integerLiteral value: Int) { self = .int(value) }

    var json: String {
        switch self {
        case .string(let s): "\"\(jsonEscape(s))\""
        case .int(let i): String(i)
        case .double(let d): d.isFinite ? String(d) : "null"
        case .bool(let b): b ? "true" : "false"
        }
    }
}

/// One JSON object per line on standard output (or another descriptor).
public final class Logger: Sendable {
    private let minimum: Atomic<Int>
    private let fd: Int32

    public init(level: LogLevel = .info, fd: Int32 = 1) {
        minimum = Atomic(level.rawValue)
        self.fd = fd
    }

    public var level: LogLevel {
        get { LogLevel(rawValue: minimum.load(ordering: .relaxed))! }
        set { minimum.store(newValue.rawValue, ordering: .relaxed) }
    }

    public func isEnabled(_ level: LogLevel) -> Bool { level.rawValue >= minimum.load(ordering: .relaxed) }

    public func log(_ level: LogLevel, _ message: String, _ fields: [(String, LogValue)] = []) {
        guard isEnabled(level) else { return }
        var line = "{\"time\":\"\(Self.timestamp())\",\"level\":\"\(level.name)\",\"msg\":\"\(jsonEscape(message))\""
        for (k, v) in fields { line += ",\"\(jsonEscape(k))\":\(v.json)" }
        line += "}\n"
        var bytes = Array(line.utf8)
        var off = 0
        while off < bytes.count {
            let n = bytes.withUnsafeMutableBytes { Glibc.write(fd, $0.baseAddress! + off, $0.count - off) }
            if n <= 0 {
                if n < 0 && errno == EINTR { continue }
                return
            }
            off += n
        }
        _ = bytes.popLast()
    }

    public func debug(_ m: String, _ f: [(String, LogValue)] = []) { log(.debug, m, f) }
    public func info(_ m: String, _ f: [(String, LogValue)] = []) { log(.info, m, f) }
    public func warning(_ m: String, _ f: [(String, LogValue)] = []) { log(.warning, m, f) }
    public func error(_ m: String, _ f: [(String, LogValue)] = []) { log(.error, m, f) }

    /// RFC 3339 UTC with milliseconds.
    static func timestamp() -> String {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        var t = ts.tv_sec
        var tmv = tm()
        gmtime_r(&t, &tmv)
        func pad(_ v: Int, _ w: Int) -> String {
            let s = String(v)
            return s.count >= w ? s : String(repeating: "0", count: w - s.count) + s
        }
        return "\(pad(Int(tmv.tm_year) + 1900, 4))-\(pad(Int(tmv.tm_mon) + 1, 2))-\(pad(Int(tmv.tm_mday), 2))T"
            + "\(pad(Int(tmv.tm_hour), 2)):\(pad(Int(tmv.tm_min), 2)):\(pad(Int(tmv.tm_sec), 2)).\(pad(ts.tv_nsec / 1_000_000, 3))Z"
    }
}
