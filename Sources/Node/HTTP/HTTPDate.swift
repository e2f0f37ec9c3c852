import Glibc

/// IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`) for the `date` header, formatted at most once a second
/// per loop.
final class HTTPDateCache {
    private var second: Int = -1
    private var cached: [UInt8] = []

    func current() -> [UInt8] {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        let s = Int(ts.tv_sec)
        if s != second {
            second = s
            cached = Array(HTTPDateCache.format(epochSeconds: s).utf8)
        }
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
