/// A value bound to, or read from, a SQL statement.
enum SQLValue: Sendable, Equatable {
    case null
    case int(Int64)
    case double(Double)
    case text(String)
    case blob([UInt8])

    var int: Int64? {
        switch self {
        case .int(let v): v
        case .double(let d): Int64(d)
        case .text(let s): Int64(s)
        default: nil
        }
    }

    var double: Double? {
        switch self {
        case .double(let d): d
        case .int(let v): Double(v)
        case .text(let s): Double(s)
        default: nil
        }
    }

    var text: String? {
        switch self {
        case .text(let s): s
        case .int(let v): String(v)
        case .double(let d): String(d)
        default: nil
        }
    }

    var blob: [UInt8]? {
        switch self {
        case .blob(let b): return b
        case .text(let s):
            // PostgreSQL's text form of bytea: \x followed by hex.
            if s.hasPrefix("\\x") { return Crypto.unhex(String(s.dropFirst(2))) }
            return Array(s.utf8)
        default: return nil
        }
    }
}

/// A row: values by column position.
struct SQLRow: Sendable {
    var values: [SQLValue]

    subscript(_ i: Int) -> SQLValue { values[i] }

    func string(_ i: Int) throws -> String {
        guard let s = values[i].text else { throw StoreError(.unavailable, "unexpected NULL or type in column \(i)") }
        return s
    }

    func int(_ i: Int) throws -> Int64 {
        guard let v = values[i].int else { throw StoreError(.unavailable, "unexpected NULL or type in column \(i)") }
        return v
    }

    func optionalInt(_ i: Int) -> Int64? { values[i] == .null ? nil : values[i].int }

    func double(_ i: Int) throws -> Double {
        guard let v = values[i].double else { throw StoreError(.unavailable, "unexpected NULL or type in column \(i)") }
        return v
    }

    func bool(_ i: Int) throws -> Bool { try int(i) != 0 }

    func blob(_ i: Int) throws -> [UInt8] {
        guard let b = values[i].blob else { throw StoreError(.unavailable, "unexpected NULL or type in column \(i)") }
        return b
    }
}

/// What a driver says went wrong, before it becomes a `StoreError`.
struct SQLError: Error, CustomStringConvertible {
    enum Kind {
        case uniqueViolation
        case foreignKeyViolation
        /// The connection is gone or unusable: drop it and reconnect.
        case connection
        case other
    }

    var kind: Kind
    var message: String
    var description: String { message }
}

/// The SQL a backend speaks differently.
struct SQLDialect: Sendable {
    var name: String
    var blob: String
    var bigint: String
    var double: String
    var serialPrimaryKey: String
    /// Statement that starts a write transaction.
    var beginWrite: String
    /// Optional statement run first inside the migration transaction (e.g. an advisory lock).
    var migrationLock: String?
    /// `INSERT` that skips rows whose primary key exists (`prefix … VALUES … suffix`). SQLite's own form
    /// matters: a multi-row `INSERT … ON CONFLICT DO NOTHING` may abort half-way on another constraint, so
    /// SQLite writes a statement journal to a temporary file for it (one page per row touched); with
    /// `INSERT OR IGNORE` nothing can abort and no journal is written.
    var insertIgnoringDuplicates: (prefix: String, suffix: String)
    /// What ends a `CREATE TABLE` whose rows live in their primary key's b-tree: SQLite's `WITHOUT ROWID`
    /// (else a rowid table plus a separate b-tree for the key); empty where every table is a heap.
    var withoutRowID: String
    /// Rewrites `$1`-style placeholders for the driver.
    var placeholders: @Sendable (String) -> String
}

/// One database session owned by one worker thread.
protocol SQLSession: AnyObject {
    func query(_ sql: String, _ params: [SQLValue]) throws(SQLError) -> [SQLRow]
    @discardableResult
    func execute(_ sql: String, _ params: [SQLValue]) throws(SQLError) -> Int
}
