import Foundation
import Testing
@testable import Storage

@Suite struct SQLiteSessionTests {
    @Test func textIsBoundAndReadByItsLengthSoANulInsideSurvives() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("llmp-sqlite-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let s = try SQLiteSession(path: dir.appendingPathComponent("t.db").path)
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
