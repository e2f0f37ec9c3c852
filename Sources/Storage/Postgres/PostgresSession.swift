import CPostgres
import Glibc

/// One `PGconn*`, owned by one worker thread. Parameters and results travel in text format.
final class PostgresSession: SQLSession {
    private let conn: OpaquePointer

    init(url: String, connectTimeoutSeconds: Int = 5) throws(SQLError) {
        let keys = ["dbname", "connect_timeout", "application_name"]
        let values = [url, String(connectTimeoutSeconds), "llm-proxy"]
        let c = withCStrings(keys) { k in withCStrings(values) { v in PQconnectdbParams(k, v, 1) } }
        guard let c else { throw SQLError(kind: .connection, message: "PostgreSQL: out of memory") }
        if PQstatus(c) != CONNECTION_OK {
            let message = String(cString: PQerrorMessage(c)).trimmingNewlines()
            PQfinish(c)
            throw SQLError(kind: .connection, message: "cannot connect to PostgreSQL at \(redactURL(url)): \(message)")
        }
        conn = c
        // libpq prints server notices (and FATAL on termination) to stderr by default; errors reach us anyway.
        PQsetNoticeProcessor(c, { _, _ in }, nil)
    }

    deinit { PQfinish(conn) }

    func query(_ sql: String, _ params: [SQLValue]) throws(SQLError) -> [SQLRow] {
        let texts: [String?] = params.map {
            switch $0 {
            case .null: nil
            case .int(let v): String(v)
            case .double(let d): String(d)
            case .text(let s): s
            case .blob(let b): "\\x" + Crypto.hex(b)
            }
        }
        let result = withOptionalCStrings(texts) { values in
            PQexecParams(conn, sql, Int32(texts.count), nil, values, nil, nil, 0)
        }
        guard let result else { throw failure(nil) }
        defer { PQclear(result) }
        let status = PQresultStatus(result)
        guard status == PGRES_TUPLES_OK || status == PGRES_COMMAND_OK else { throw failure(result) }
        let rowCount = PQntuples(result), columns = PQnfields(result)
        var rows: [SQLRow] = []
        rows.reserveCapacity(Int(rowCount))
        for r in 0..<rowCount {
            var values: [SQLValue] = []
            values.reserveCapacity(Int(columns))
            for c in 0..<columns {
                values.append(PQgetisnull(result, r, c) == 1 ? .null : .text(String(cString: PQgetvalue(result, r, c))))
            }
            rows.append(SQLRow(values: values))
        }
        lastAffected = Int(String(cString: PQcmdTuples(result))) ?? 0
        return rows
    }

    private var lastAffected = 0

    @discardableResult
    func execute(_ sql: String, _ params: [SQLValue]) throws(SQLError) -> Int {
        _ = try query(sql, params)
        return lastAffected
    }

    private func failure(_ result: OpaquePointer?) -> SQLError {
        let state = result.flatMap { PQresultErrorField($0, Int32(UInt8(ascii: "C"))) }.map { String(cString: $0) } ?? ""
        let message = (result.map { String(cString: PQresultErrorMessage($0)) } ?? String(cString: PQerrorMessage(conn))).trimmingNewlines()
        if PQstatus(conn) != CONNECTION_OK || state.hasPrefix("08") || state == "57P01" || state == "57P02" || state == "57P03" {
            return SQLError(kind: .connection, message: "PostgreSQL connection lost: \(message)")
        }
        switch state {
        case "23505": return SQLError(kind: .uniqueViolation, message: "PostgreSQL: \(message)")
        case "23503": return SQLError(kind: .foreignKeyViolation, message: "PostgreSQL: \(message)")
        default: return SQLError(kind: .other, message: "PostgreSQL (\(state)): \(message)")
        }
    }
}

extension String {
    func trimmingNewlines() -> String {
        var s = Substring(self)
        while let last = s.last, last == "\n" || last == " " { s = s.dropLast() }
        return String(s)
    }
}

/// Calls `body` with a NULL-terminated array of C strings.
func withCStrings<R>(_ strings: [String], _ body: (UnsafePointer<UnsafePointer<CChar>?>) -> R) -> R {
    withOptionalCStrings(strings.map { Optional($0) }) { p in
        var all = Array(UnsafeBufferPointer(start: p, count: strings.count))
        all.append(nil)
        return all.withUnsafeBufferPointer { body($0.baseAddress!) }
    }
}

/// Calls `body` with an array of C strings (NULL for nil) that live for the call.
func withOptionalCStrings<R>(_ strings: [String?], _ body: (UnsafePointer<UnsafePointer<CChar>?>?) -> R) -> R {
    if strings.isEmpty { return body(nil) }
    var owned: [UnsafeMutablePointer<CChar>?] = strings.map { s in s.map { strdup($0) } }
    defer { for p in owned { free(p) } }
    return owned.withUnsafeMutableBufferPointer { buf in
        buf.baseAddress!.withMemoryRebound(to: UnsafePointer<CChar>?.self, capacity: buf.count) { body($0) }
    }
}
