import CMongo
import FoundationEssentials

/// One libmongoc error, copied out of its `bson_error_t`.
struct MongoError: Error, CustomStringConvertible {
    var domain: UInt32
    var code: UInt32
    var message: String
    var description: String { message }

    var isDuplicateKey: Bool { code == 11000 || code == 11001 }
    var isConnection: Bool {
        domain == UInt32(MONGOC_ERROR_STREAM.rawValue) || domain == UInt32(MONGOC_ERROR_SERVER_SELECTION.rawValue)
            || domain == UInt32(MONGOC_ERROR_CLIENT.rawValue)
    }

    var storeError: StoreError {
        if isDuplicateKey { return StoreError(.duplicate, "MongoDB: \(message)") }
        if isConnection { return StoreError(.unavailable, "MongoDB is unavailable: \(message)") }
        return StoreError(.unavailable, "MongoDB error \(code): \(message)")
    }
}

/// Owns a `bson_error_t` for one call.
final class MongoErrorBox {
    let pointer = llmp_bson_error_new()!
    deinit { bson_free(pointer) }
    var error: MongoError {
        MongoError(domain: llmp_bson_error_domain(pointer), code: llmp_bson_error_code(pointer),
                   message: String(cString: llmp_bson_error_message(pointer)))
    }
}

/// Owns one `bson_t*`. Documents are built from and read as (relaxed extended) JSON, which keeps the
/// C surface small: JSONEncoder/JSONDecoder do the mapping to Swift types.
final class BSONDocument {
    let pointer: OpaquePointer

    init(json: String) throws {
        let errors = MongoErrorBox()
        let bytes = Array(json.utf8)
        guard let p = bytes.withUnsafeBufferPointer({ bson_new_from_json($0.baseAddress, $0.count, errors.pointer) }) else {
            throw StoreError(.invalid, "cannot build a BSON document: \(errors.error.message)")
        }
        pointer = p
    }

    convenience init(_ value: some Encodable) throws {
        try self.init(json: String(decoding: try JSONEncoder().encode(value), as: UTF8.self))
    }

    /// Keeps the order of `value`'s keys (a command's name must come first).
    convenience init(_ value: JSONValue) throws {
        try self.init(json: value.text)
    }

    init() { pointer = bson_new() }

    deinit { bson_destroy(pointer) }

    /// Relaxed extended JSON of a document libmongoc owns.
    static func json(of doc: OpaquePointer) -> String {
        var length = 0
        guard let s = bson_as_relaxed_extended_json(doc, &length) else { return "{}" }
        defer { bson_free(s) }
        return String(cString: s)
    }

    var json: String { Self.json(of: pointer) }

    func decode<T: Decodable>(_ type: T.Type) throws -> T {
        try JSONDecoder().decode(type, from: Data(json.utf8))
    }
}

/// A JSON object built from literals, for filters, updates and commands.
enum JSONValue: Encodable {
    case string(String)
    case int(Int64)
    case double(Double)
    case bool(Bool)
    case null
    case array([JSONValue])
    case object([(String, JSONValue)])

    /// JSON text with object keys in the order given.
    var text: String {
        switch self {
        case .string(let s): "\"" + jsonEscape(s) + "\""
        case .int(let i): String(i)
        case .double(let d): d.isFinite ? String(d) : "null"
        case .bool(let b): b ? "true" : "false"
        case .null: "null"
        case .array(let a): "[" + a.map(\.text).joined(separator: ",") + "]"
        case .object(let f): "{" + f.map { "\"" + jsonEscape($0.0) + "\":" + $0.1.text }.joined(separator: ",") + "}"
        }
    }

    func encode(to encoder: any Encoder) throws {
        switch self {
        case .string(let s): var c = encoder.singleValueContainer(); try c.encode(s)
        case .int(let i): var c = encoder.singleValueContainer(); try c.encode(i)
        case .double(let d): var c = encoder.singleValueContainer(); try c.encode(d)
        case .bool(let b): var c = encoder.singleValueContainer(); try c.encode(b)
        case .null: var c = encoder.singleValueContainer(); try c.encodeNil()
        case .array(let a):
            var c = encoder.unkeyedContainer()
            for v in a { try c.encode(v) }
        case .object(let fields):
            var c = encoder.container(keyedBy: DynamicKey.self)
            for (k, v) in fields { try c.encode(v, forKey: DynamicKey(k)) }
        }
    }

    struct DynamicKey: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(_ s: String) { stringValue = s }
        init?(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }
}

/// One collection handle on a client popped from the pool, for the duration of one job.
struct MongoCollection {
    let pointer: OpaquePointer

    func insertOne(_ doc: BSONDocument) throws(MongoError) {
        let errors = MongoErrorBox()
        guard mongoc_collection_insert_one(pointer, doc.pointer, nil, nil, errors.pointer) else { throw errors.error }
    }

    /// Unordered insert of many; returns the errors of documents that failed (duplicates included).
    func insertMany(_ docs: [BSONDocument]) throws(MongoError) {
        let errors = MongoErrorBox()
        // Acknowledged only once journaled: an accepted usage batch must survive the server restarting.
        let opts = try? BSONDocument(json: #"{"ordered": false, "writeConcern": {"w": 1, "j": true}}"#)
        let reply = BSONDocument()
        var pointers: [OpaquePointer?] = docs.map { $0.pointer }
        let ok = pointers.withUnsafeMutableBufferPointer { buf in
            buf.baseAddress!.withMemoryRebound(to: OpaquePointer?.self, capacity: buf.count) { p in
                mongoc_collection_insert_many(pointer, UnsafeMutablePointer(mutating: p), docs.count, opts?.pointer, reply.pointer, errors.pointer)
            }
        }
        if ok { return }
        // A retried batch meets its own earlier inserts: duplicate-id write errors alone mean it is all in.
        struct Reply: Decodable {
            struct WriteError: Decodable { var code: Int }
            var writeErrors: [WriteError]?
        }
        if let r = try? JSONDecoder().decode(Reply.self, from: Data(reply.json.utf8)), let w = r.writeErrors, !w.isEmpty,
           w.allSatisfy({ $0.code == 11000 || $0.code == 11001 }) {
            return
        }
        throw errors.error
    }

    func find(_ filter: BSONDocument, options: BSONDocument? = nil) throws(MongoError) -> [String] {
        guard let cursor = mongoc_collection_find_with_opts(pointer, filter.pointer, options?.pointer, nil) else {
            throw MongoError(domain: 0, code: 0, message: "find failed")
        }
        return try Self.drain(cursor)
    }

    func aggregate(_ pipeline: BSONDocument) throws(MongoError) -> [String] {
        guard let cursor = mongoc_collection_aggregate(pointer, MONGOC_QUERY_NONE, pipeline.pointer, nil, nil) else {
            throw MongoError(domain: 0, code: 0, message: "aggregate failed")
        }
        return try Self.drain(cursor)
    }

    private static func drain(_ cursor: OpaquePointer) throws(MongoError) -> [String] {
        defer { mongoc_cursor_destroy(cursor) }
        var out: [String] = []
        var doc: OpaquePointer?
        while mongoc_cursor_next(cursor, &doc) {
            if let doc { out.append(BSONDocument.json(of: doc)) }
        }
        let errors = MongoErrorBox()
        if mongoc_cursor_error(cursor, errors.pointer) { throw errors.error }
        return out
    }

    /// Returns the number of documents matched.
    func updateOne(_ filter: BSONDocument, _ update: BSONDocument, upsert: Bool = false) throws(MongoError) -> Int {
        let errors = MongoErrorBox()
        let reply = BSONDocument()
        let opts = upsert ? try? BSONDocument(json: #"{"upsert": true}"#) : nil
        guard mongoc_collection_update_one(pointer, filter.pointer, update.pointer, opts?.pointer, reply.pointer, errors.pointer) else {
            throw errors.error
        }
        return Self.count(reply.json, "matchedCount")
    }

    func deleteMany(_ filter: BSONDocument) throws(MongoError) -> Int {
        let errors = MongoErrorBox()
        let reply = BSONDocument()
        guard mongoc_collection_delete_many(pointer, filter.pointer, nil, reply.pointer, errors.pointer) else { throw errors.error }
        return Self.count(reply.json, "deletedCount")
    }

    /// `$inc`s a counter document and returns the new value.
    func increment(id: String, field: String) throws(MongoError) -> Int64 {
        let errors = MongoErrorBox()
        let reply = BSONDocument()
        let query = try? BSONDocument(json: "{\"_id\": \"\(id)\"}")
        let update = try? BSONDocument(json: "{\"$inc\": {\"\(field)\": 1}}")
        let opts = mongoc_find_and_modify_opts_new()
        defer { mongoc_find_and_modify_opts_destroy(opts) }
        mongoc_find_and_modify_opts_set_update(opts, update!.pointer)
        mongoc_find_and_modify_opts_set_flags(opts, mongoc_find_and_modify_flags_t(rawValue: MONGOC_FIND_AND_MODIFY_UPSERT.rawValue | MONGOC_FIND_AND_MODIFY_RETURN_NEW.rawValue))
        guard mongoc_collection_find_and_modify_with_opts(pointer, query!.pointer, opts, reply.pointer, errors.pointer) else {
            throw errors.error
        }
        struct Reply: Decodable { struct Value: Decodable { var value: Int64? ; var revision: Int64? }; var value: Value? }
        let r = try? JSONDecoder().decode(Reply.self, from: Data(reply.json.utf8))
        return r?.value?.revision ?? r?.value?.value ?? 0
    }

    private static func count(_ json: String, _ field: String) -> Int {
        guard let r = json.firstRange(of: "\"\(field)\" : ") else { return 0 }
        return Int(json[r.upperBound...].prefix(while: { $0.isNumber })) ?? 0
    }
}
