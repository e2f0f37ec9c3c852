import Foundation
import Storage
import TestSupport

// Storage throughput per backend: batched usage inserts (records/s), key lookups by hash (lookups/s) and
// usage pruning (records deleted/s: the older half, 1000 per transaction as a node's retention job does), against a SQLite file, a throwaway PostgreSQL 15 and SecantusDB, all started here.
//   swift run -c release store-bench [records] [lookups] [writers] [batch]
// (writers: concurrent batch writers, default 4 — a node's usage writer is one; batch: records per
// insert call, default 500 as in UsageWriter.)
let records = CommandLine.arguments.count > 1 ? Int(CommandLine.arguments[1]) ?? 100_000 : 100_000
let lookups = CommandLine.arguments.count > 2 ? Int(CommandLine.arguments[2]) ?? 20_000 : 20_000
let batch = CommandLine.arguments.count > 4 ? max(1, Int(CommandLine.arguments[4]) ?? 500) : 500
let concurrency = CommandLine.arguments.count > 3 ? max(1, Int(CommandLine.arguments[3]) ?? 4) : 4

func measure(_ name: String, _ url: String) async throws {
    let store = try StoreFactory.open(url: url, poolSize: concurrency)
    try await store.migrate()
    let conn = StoreConformance.makeConnection()
    try await store.createConnection(conn, actor: .cli)
    var hashes: [String] = []
    for i in 0..<100 {
        let (k, secret) = StoreConformance.makeKey(connectionID: conn.id, name: "bench-\(i)")
        try await store.createVirtualKey(k, actor: .cli)
        hashes.append(Crypto.sha256Hex(secret))
    }
    let now = nowMillis()
    let all = (0..<records).map { i in
        UsageRecord(id: Identifiers.makeTimeOrdered("u", millis: now + Int64(i)), virtualKeyID: "vk_\(i % 100)", connectionID: conn.id, model: "gpt-4o-mini",
                    promptTokens: 57, completionTokens: 31, statusCode: 200, latencyMillis: 3, stream: false,
                    startedAt: now + Int64(i), endedAt: now + Int64(i) + 3, nodeID: "bench")
    }
    let batches = stride(from: 0, to: all.count, by: batch).map { Array(all[$0..<min($0 + batch, all.count)]) }
    var t0 = Date()
    let cpu0 = processCPUMicros()
    try await withThrowingTaskGroup(of: Void.self) { g in
        var next = 0
        for _ in 0..<concurrency {
            let mine = batches.enumerated().filter { $0.offset % concurrency == next }.map(\.element)
            next += 1
            g.addTask { for b in mine { try await store.insertUsage(b, lane: .urgent) } }  // the store's own speed, unpaced
        }
        try await g.waitForAll()
    }
    let insertRate = Double(records) / Date().timeIntervalSince(t0)
    let insertCPU = Double(processCPUMicros() - cpu0) / Double(records)
    let total = try await store.usageTotals(UsageQuery()).reduce(0) { $0 + $1.requests }
    precondition(total == Int64(records), "\(name): \(total) records stored, expected \(records)")
    t0 = Date()
    let keyHashes = hashes
    try await withThrowingTaskGroup(of: Void.self) { g in
        for w in 0..<concurrency {
            g.addTask {
                for i in stride(from: w, to: lookups, by: concurrency) {
                    guard try await store.virtualKey(hash: keyHashes[i % keyHashes.count]) != nil else { fatalError("lookup missed") }
                }
            }
        }
        try await g.waitForAll()
    }
    let lookupRate = Double(lookups) / Date().timeIntervalSince(t0)
    t0 = Date()
    let deleted = try await store.pruneUsage(startedBefore: now + Int64(records / 2), batch: 1000, lane: .urgent)  // unpaced
    let pruneRate = Double(deleted) / Date().timeIntervalSince(t0)
    precondition(deleted == records / 2, "\(name): pruned \(deleted), expected \(records / 2)")
    print("| \(name) | \(records) | \(batch) | \(Int(insertRate)) | \(String(format: "%.2f", insertCPU)) | \(Int(lookupRate)) | \(Int(pruneRate)) |")
    await store.close()
}

/// User + system CPU of this process (the store's threads and the bench's own), in microseconds.
func processCPUMicros() -> Int64 {
    var u = rusage()
    getrusage(RUSAGE_SELF.rawValue, &u)
    return Int64(u.ru_utime.tv_sec + u.ru_stime.tv_sec) * 1_000_000 + Int64(u.ru_utime.tv_usec + u.ru_stime.tv_usec)
}

// BACKENDS=sqlite (comma-separated) measures only those.
let backends = Set((ProcessInfo.processInfo.environment["BACKENDS"] ?? "sqlite,postgres,mongodb").split(separator: ",").map(String.init))
print("| backend | records | batch | usage inserts/s | CPU µs per insert | key lookups/s | usage prunes/s |")
print("|---|---|---|---|---|---|---|")
if backends.contains("sqlite") {
    let sqliteDir = "/tmp/llmp-store-bench-\(getpid())"
    try await measure("sqlite", "sqlite:\(sqliteDir)/bench.db")
    _ = try? FileManager.default.removeItem(atPath: sqliteDir)
}
if backends.contains("postgres") { try await measure("postgres", try PostgresTestServer.shared().makeDatabase()) }
if backends.contains("mongodb") { try await measure("mongodb", try MongoTestServer.shared().makeDatabase()) }
exit(0)
