import CSQLite
import Foundation
import Testing
@testable import Storage

@Suite struct WritePacingTests {
    /// Passes `point` (a statement boundary unless told) every few microseconds for `millis` of wall
    /// time, or until `done`.
    private func spin(millis: Double, at point: () -> Void = WritePacing.point, until done: () -> Bool = { false }) {
        let end = Date().addingTimeInterval(millis / 1000)
        while Date() < end, !done() { point() }
    }

    @Test func aPacedStepPausesAtPacePointsOnceItHasRunASlice() {
        let pace = PacePoint.current
        let before = pace.pauses
        // A pause per 200 µs slice, each sleeping 3× its CPU time: three take ~2.4 ms; two seconds leaves room
        // for a loaded machine.
        WritePacing(.normal).step { spin(millis: 2000, until: { pace.pauses - before >= 3 }) }
        #expect(pace.pauses - before >= 3)
    }

    @Test func pacePointsOutsideAPacedStepOrOnTheUrgentLaneNeverPause() {
        let pace = PacePoint.current
        let before = pace.pauses
        spin(millis: 1)
        WritePacing(.urgent).step { spin(millis: 1) }
        #expect(pace.pauses == before)
    }

    /// The background lane's thread gives way to a waking loop by itself (nice 19): it pauses after each
    /// statement, whatever its length, and never inside the driver.
    @Test func theBackgroundLanePausesBetweenStatementsOnly() {
        let pace = PacePoint.current
        let before = pace.pauses
        WritePacing(.background).step {
            spin(millis: 2, at: WritePacing.driverPoint)
            #expect(pace.pauses == before)
            WritePacing.point()
            #expect(pace.pauses == before + 1)
        }
    }

    /// A database file in a new directory, removed afterwards.
    private func withDatabase(_ body: (String) throws -> Void) throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("llmp-pacing-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        try body(dir.appendingPathComponent("t.db").path)
    }

    /// SQLite pauses a paced writer inside a long statement (its progress handler) and inside a COMMIT
    /// (the paced VFS's writes), which no statement boundary splits.
    @Test func sqlitePausesAPacedWriterInsideAStatementAndInsideItsCommit() throws {
        try withDatabase { path in
            let s = try SQLiteSession(path: path)
            try s.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, body TEXT NOT NULL)", [])
            // ~1 MB of rows: they stay in SQLite's page cache (2 MB) until the COMMIT, so the statement reads
            // and writes nothing and only its progress handler can pause it.
            let insert = """
                WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 50000)
                INSERT INTO t (body) SELECT printf('%08d', i) FROM n
                """
            let pace = PacePoint.current
            var before = pace.pauses
            try s.execute("BEGIN", [])
            try WritePacing(.normal).step { _ = try s.execute(insert, []) }
            #expect(pace.pauses > before, "no pause inside a 50,000-row statement")
            before = pace.pauses
            try WritePacing(.normal).step { _ = try s.execute("COMMIT", []) }  // ~1 MB of pages to the WAL
            #expect(pace.pauses > before, "no pause inside the COMMIT")
            #expect(try s.query("SELECT count(*) FROM t", []).first?.values.first == .int(50000))
        }
    }

    /// The paced VFS keeps SQLite's files as they are: a connection on the default VFS (the admin CLI of
    /// an older build, the sqlite3 shell) reads what a session wrote, while it is open, WAL and all.
    @Test func aDatabaseWrittenThroughThePacedVFSReadsOnTheDefaultOne() throws {
        try withDatabase { path in
            let s = try SQLiteSession(path: path)
            try s.execute("CREATE TABLE t (x TEXT NOT NULL)", [])
            try s.execute("INSERT INTO t (x) VALUES (?1), (?2)", [.text("a"), .text("b")])
            var db: OpaquePointer?
            #expect(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, nil) == SQLITE_OK)
            defer { sqlite3_close_v2(db) }
            var stmt: OpaquePointer?
            #expect(sqlite3_prepare_v2(db, "SELECT group_concat(x, '') FROM t", -1, &stmt, nil) == SQLITE_OK)
            defer { sqlite3_finalize(stmt) }
            #expect(sqlite3_step(stmt) == SQLITE_ROW)
            #expect(String(cString: sqlite3_column_text(stmt, 0)) == "ab")
        }
    }
}
