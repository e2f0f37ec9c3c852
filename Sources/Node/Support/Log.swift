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

    init(_ driver: MongoDriverLog.Level) {
        self = switch driver {
        case .error: .error
        case .warning: .warning
        case .info: .info
        case .debug: .debug
        }
    }
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

/// One JSON object per line on standard output (or another descriptor), written by the descriptor's
/// `LogSink` thread: logging never blocks the caller (an event loop) on the output's reader.
public final class Logger: Sendable {
    private let minimum: Atomic<Int>
    private let sink: LogSink

    public init(level: LogLevel = .info, fd: Int32 = 1) {
        minimum = Atomic(level.rawValue)
        sink = LogSink.shared(fd: fd)
    }

    /// Writes out every line logged so far (call before the process exits).
    public static func flushAll() { LogSink.flushAll() }

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
        sink.append(line)
    }

    public func debug(_ m: String, _ f: [(String, LogValue)] = []) { log(.debug, m, f) }
    public func info(_ m: String, _ f: [(String, LogValue)] = []) { log(.info, m, f) }
    public func warning(_ m: String, _ f: [(String, LogValue)] = []) { log(.warning, m, f) }
    public func error(_ m: String, _ f: [(String, LogValue)] = []) { log(.error, m, f) }

    /// RFC 3339 UTC with milliseconds, e.g. `2026-11-29T06:01:47.123Z`.
    static func timestamp() -> String {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        var t = ts.tv_sec
        var tmv = tm()
        gmtime_r(&t, &tmv)
        return String(unsafeUninitializedCapacity: 24) { out in
            var i = 0
            func put(_ v: Int, _ width: Int) {
                var d = 1
                for _ in 1..<width { d *= 10 }
                var v = v
                while d > 0 {
                    out[i] = UInt8(0x30 + (v / d) % 10)
                    i += 1
                    v %= d
                    d /= 10
                }
            }
            func sep(_ c: UInt8) {
                out[i] = c
                i += 1
            }
            put(Int(tmv.tm_year) + 1900, 4); sep(0x2D); put(Int(tmv.tm_mon) + 1, 2); sep(0x2D); put(Int(tmv.tm_mday), 2)
            sep(0x54); put(Int(tmv.tm_hour), 2); sep(0x3A); put(Int(tmv.tm_min), 2); sep(0x3A); put(Int(tmv.tm_sec), 2)
            sep(0x2E); put(ts.tv_nsec / 1_000_000, 3); sep(0x5A)
            return i
        }
    }
}
