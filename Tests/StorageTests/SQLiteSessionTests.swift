import CSQLite
import Foundation
import Testing
@testable import Storage

@Suite struct SQLiteSessionTests {
    /// A session on a new database file, removed afterwards.
    private func withSession(_ body: (SQLiteSession) throws -> Void) throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("llmp-sqlite-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        try body(try SQLiteSession(path: dir.appendingPathComponent("t.db").path))
    }

    /// A new database gets 16 KiB pages and a checkpoint every 800 KiB of WAL (50 pages); one made with
    /// 4 KiB pages keeps them, checkpointed every 200.
    @Test func aNewDatabaseGetsLargePagesAndAnOldOneKeepsItsOwn() throws {
        try withSession { s in
            try s.execute("CREATE TABLE t (x INTEGER)", [])
            #expect(try s.query("PRAGMA page_size", []).first?.int(0) == 16384)
            #expect(try s.query("PRAGMA wal_autocheckpoint", []).first?.int(0) == 50)
        }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("llmp-sqlite-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("old.db").path
        // What an older binary made: 4 KiB pages, in WAL mode.
        var db: OpaquePointer?
        #expect(sqlite3_open(path, &db) == SQLITE_OK)
        #expect(sqlite3_exec(db, "PRAGMA page_size=4096; PRAGMA journal_mode=WAL; CREATE TABLE t (x INTEGER)", nil, nil, nil) == SQLITE_OK)
        sqlite3_close(db)
        let s = try SQLiteSession(path: path)
        #expect(try s.query("PRAGMA page_size", []).first?.int(0) == 4096)
        #expect(try s.query("PRAGMA wal_autocheckpoint", []).first?.int(0) == 200)
    }

    @Test func textIsBoundAndReadByItsLengthSoANulInsideSurvives() throws {
        try withSession { s in
            try s.execute("CREATE TABLE t (x TEXT NOT NULL)", [])
            for text in ["a\u{0}b", "", "é ünïcode", String(repeating: "x", count: 5000)] {
                try s.execute("DELETE FROM t", [])
                try s.execute("INSERT INTO t (x) VALUES (?1)", [.text(text)])
                let rows = try s.query("SELECT x, length(CAST(x AS BLOB)) FROM t", [])
                #expect(rows.first?.values.first == .text(text))
                #expect(rows.first?.values.last == .int(Int64(text.utf8.count)))
            }
        }
    }

    /// Text and blobs are bound without SQLite copying them (they point into one buffer per statement):
    /// many values in one statement each keep their own bytes, empty ones stay empty rather than NULL, and
    /// a cached statement run again with other values sees only the new ones.
    @Test func manyTextAndBlobValuesInOneStatementKeepTheirOwnBytes() throws {
        try withSession { s in
            try s.execute("CREATE TABLE t (a TEXT, b BLOB, c TEXT, d BLOB, n INTEGER)", [])
            let insert = "INSERT INTO t (a, b, c, d, n) VALUES (?1, ?2, ?3, ?4, ?5), (?6, ?7, ?8, ?9, ?10)"
            for round in 0..<3 {
                try s.execute("DELETE FROM t", [])
                let values: [SQLValue] = [
                    .text("first-\(round)"), .blob([1, 2, UInt8(round)]), .text(""), .blob([]), .int(1),
                    .text(String(repeating: "long ", count: 100 * (round + 1))), .blob(Array(repeating: 7, count: 10 * round)), .text("é"), .null, .int(2),
                ]
                try s.execute(insert, values)
                let rows = try s.query("SELECT a, b, c, d, n, typeof(c), typeof(d) FROM t ORDER BY n", [])
                #expect(rows.count == 2)
                #expect(Array(rows[0].values[0..<5]) == Array(values[0..<5]))
                #expect(rows[0].values[5] == .text("text") && rows[0].values[6] == .text("blob"))
                #expect(rows[1].values[0] == values[5] && rows[1].values[2] == values[7] && rows[1].values[3] == .null)
                #expect(rows[1].values[1] == values[6])
            }
        }
    }

    /// The buffer the values are bound from is the session's, reused: statements growing past it, one
    /// past 1 MiB (after which it is given back) and small ones again each store their own bytes.
    @Test func theBindingBufferGrowsShrinksAndIsReusedWithoutMixingValues() throws {
        try withSession { s in
            try s.execute("CREATE TABLE t (n INTEGER, b BLOB, x TEXT)", [])
            let sizes = [3, 40, 5000, 2 << 20, 7, 0, 100_000, 1]
            for (n, size) in sizes.enumerated() {
                try s.execute("INSERT INTO t (n, b, x) VALUES (?1, ?2, ?3)", [.int(Int64(n)), .blob(Array(repeating: UInt8(n), count: size)), .text("row \(n)")])
            }
            let rows = try s.query("SELECT n, b, x FROM t ORDER BY n", [])
            #expect(rows.count == sizes.count)
            for (n, size) in sizes.enumerated() {
                #expect(rows[n].values == [.int(Int64(n)), .blob(Array(repeating: UInt8(n), count: size)), .text("row \(n)")])
            }
        }
    }
}
