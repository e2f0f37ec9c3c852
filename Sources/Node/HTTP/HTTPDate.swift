import Glibc

/// IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`) for the `date` header, formatted at most once a second
/// per loop; the wall clock is read only when the loop's monotonic time passes the next second.
final class HTTPDateCache {
    private var second: Int = -1
    private var cached: [UInt8] = []
    /// Loop time (`EventLoop.now`) at which the wall clock reaches its next second.
    private var nextSecondAt: UInt64 = 0

    func current(loopNow: UInt64) -> [UInt8] {
        if loopNow < nextSecondAt { return cached }
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        let s = Int(ts.tv_sec)
        if s != second {
            second = s
            cached = Array(HTTPDateCache.format(epochSeconds: s).utf8)
        }
        nextSecondAt = loopNow &+ UInt64(1_000_000_000 - Int(ts.tv_nsec))
        return cached
    }

    static func format(epochSeconds: Int) -> String {
        var t = time_t(epochSeconds)
        var tmv = tm()
        gmtime_r(&t, &tmv)
        let days = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
        let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        func two(_ v: Int32) -> String { v < 10 ? "0\(v)" : "\(v)" }
        return "\(days[Int(tmv.tm_wday)]), \(two(tmv.tm_mday)) \(months[Int(tmv.tm_mon)]) \(tmv.tm_year + 1900) "
            + "\(two(tmv.tm_hour)):\(two(tmv.tm_min)):\(two(tmv.tm_sec)) GMT"
    }
}
