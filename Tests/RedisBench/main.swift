import Foundation
import Node
import RedisClient

// Our client's EVALSHA throughput and latency on the limiter-shaped script, for bench/redis.sh to set
// beside redis-benchmark on the same server and script.
//   redis-bench PORT SHA_SOURCE_FILE CALLERS SECONDS
let port = Int(CommandLine.arguments[1])!
let source = try String(contentsOfFile: CommandLine.arguments[2], encoding: .utf8)
let callers = Int(CommandLine.arguments[3])!
let seconds = Double(CommandLine.arguments[4])!

let group = try EventLoopGroup(loopCount: 1)
let loop = group.loops[0]
var config = RedisConfiguration(host: "127.0.0.1", port: port)
config.commandTimeoutNanos = 1_000_000_000
let connection = RedisConnection(configuration: config, loop: loop)
connection.start()
while connection.health != .ready { usleep(1000) }
let script = RedisScript(source)

let result = await Task(executorPreference: loop) { () -> (Int, [UInt64]) in
    let deadline = monotonicNanos() + UInt64(seconds * 1e9)
    return await withTaskGroup(of: (Int, [UInt64]).self) { g in
        for c in 0..<callers {
            g.addTask(executorPreference: loop) {
                var n = 0
                var lat: [UInt64] = []
                lat.reserveCapacity(200_000)
                while monotonicNanos() < deadline {
                    let t0 = monotonicNanos()
                    let key = "rl:{vk:\(c * 1000 + n % 1000)}"
                    _ = try? await script.run(on: connection, keys: [key], args: ["600", "0.01", "100000", "1.6667", "1", "300"])
                    lat.append(monotonicNanos() - t0)
                    n += 1
                }
                return (n, lat)
            }
        }
        var total = 0
        var all: [UInt64] = []
        for await (n, lat) in g { total += n; all += lat }
        return (total, all)
    }
}.value
var lat = result.1
lat.sort()
let p = { (q: Double) -> Double in Double(lat[min(lat.count - 1, Int(q * Double(lat.count)))]) / 1000 }
print(String(format: "RESULT callers=%d ops_per_s=%.0f p50_us=%.1f p99_us=%.1f", callers, Double(result.0) / seconds, p(0.5), p(0.99)))
connection.stop()
group.shutdown()
exit(0)
