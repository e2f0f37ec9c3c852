import CMongo
import FoundationEssentials
import Synchronization

private let mongocInit: Void = { mongoc_init() }()

/// Owns the `mongoc_uri_t*` and `mongoc_client_pool_t*` (thread-safe in libmongoc; clients are popped
/// per job and pushed back).
final class MongoClientPool: @unchecked Sendable {
    let pool: OpaquePointer
    private let uri: OpaquePointer
    let database: String

    init(url: String, maxSize: Int) throws {
        _ = mongocInit
        let errors = MongoErrorBox()
        guard let uri = mongoc_uri_new_with_error(url, errors.pointer) else {
            throw StoreError(.unsupportedURL, "invalid MongoDB URL \(redactURL(url)): \(errors.error.message)")
        }
        self.uri = uri
        if mongoc_uri_get_option_as_int32(uri, MONGOC_URI_SERVERSELECTIONTIMEOUTMS, 0) == 0 {
            mongoc_uri_set_option_as_int32(uri, MONGOC_URI_SERVERSELECTIONTIMEOUTMS, 5000)
        }
        if mongoc_uri_get_option_as_int32(uri, MONGOC_URI_CONNECTTIMEOUTMS, 0) == 0 {
            mongoc_uri_set_option_as_int32(uri, MONGOC_URI_CONNECTTIMEOUTMS, 5000)
        }
        database = mongoc_uri_get_database(uri).map { String(cString: $0) } ?? "llm_proxy"
        pool = mongoc_client_pool_new(uri)
        mongoc_client_pool_set_error_api(pool, Int32(MONGOC_ERROR_API_VERSION_2))
        mongoc_client_pool_max_size(pool, UInt32(maxSize))
    }

    deinit {
        mongoc_client_pool_destroy(pool)
        mongoc_uri_destroy(uri)
    }

    /// Runs `body` with a collection on a popped client (blocking: call from a worker thread).
    func with<T>(_ collection: String, _ body: (MongoCollection) throws -> T) throws -> T {
        let client = mongoc_client_pool_pop(pool)!
        defer { mongoc_client_pool_push(pool, client) }
        let coll = mongoc_client_get_collection(client, database, collection)!
        defer { mongoc_collection_destroy(coll) }
        return try body(MongoCollection(pointer: coll))
    }

    func command(_ command: BSONDocument) throws {
        let client = mongoc_client_pool_pop(pool)!
        defer { mongoc_client_pool_push(pool, client) }
        let errors = MongoErrorBox()
        let reply = BSONDocument()
        guard mongoc_client_command_simple(client, database, command.pointer, nil, reply.pointer, errors.pointer) else {
            throw errors.error.storeError
        }
    }
}

/// MongoDB through libmongoc's client pool. MongoDB offers no multi-document transaction on a standalone
/// server, so each admin change is ordered to be safe when cut short: the change itself (one atomic
/// document write), then the revision bump, then the audit event.
final class MongoStoreImpl: Store, @unchecked Sendable {
    let backend = "mongodb"
    private let client: MongoClientPool
    private let workers: WorkerPool<Void>
    private let backgroundWorkers: WorkerPool<Void>

    init(url: String, poolSize: Int) throws {
        client = try MongoClientPool(url: url, maxSize: max(poolSize, 1))
        workers = WorkerPool(name: "mongodb", threads: max(poolSize, 1))
        // Nice 19: a usage batch is one `insertMany` (BSON for all of it, then one journaled round trip),
        // which cannot be paced statement by statement. At nice 19 a waking event loop preempts it at
        // once, while a saturated core still gives it ~1.5% (weight 15 against a loop's 1024); batches
        // that fall behind go to the nice-5 lane. (SCHED_IDLE left ~0.3%: batches sat for seconds.)
        backgroundWorkers = WorkerPool(name: "mongodb-background", threads: 1, threadName: "llmp-store-bg", nice: 19)
    }

    private func run<T: Sendable>(lane: StoreLane = .normal, _ body: @escaping @Sendable (MongoClientPool) throws -> T) async throws -> T {
        let client = self.client
        return try await (lane == .background ? backgroundWorkers : workers).run { _ in
            do { return try body(client) } catch let e as MongoError { throw e.storeError }
        }
    }

    // MARK: Documents

    struct ConnectionDoc: Codable {
        var _id: String, name: String, provider: String, endpoint: String, api_key_sealed: String
        var options: [String: String], created_at: Int64, updated_at: Int64

        init(_ c: ConnectionRecord) {
            _id = c.id; name = c.name; provider = c.provider.rawValue; endpoint = c.endpoint
            api_key_sealed = Crypto.hex(c.encryptedAPIKey); options = c.options; created_at = c.createdAt; updated_at = c.updatedAt
        }

        func record() throws -> ConnectionRecord {
            guard let p = Provider(rawValue: provider) else { throw StoreError(.invalid, "unknown provider \(provider) in store") }
            return ConnectionRecord(id: _id, name: name, provider: p, endpoint: endpoint, encryptedAPIKey: Crypto.unhex(api_key_sealed) ?? [],
                                    options: options, createdAt: created_at, updatedAt: updated_at)
        }
    }

    struct KeyDoc: Codable {
        var _id: String, name: String, key_hash: String, display_prefix: String, connection_id: String
        var requests_per_second: Double, burst: Double, tokens_per_minute: Int64, expires_at: Int64?
        var allowed_models: [String], max_concurrent: Int, disabled: Bool, created_at: Int64, updated_at: Int64

        init(_ k: VirtualKeyRecord) {
            _id = k.id; name = k.name; key_hash = k.keyHash; display_prefix = k.displayPrefix; connection_id = k.connectionID
            requests_per_second = k.requestsPerSecond; burst = k.burst; tokens_per_minute = k.tokensPerMinute; expires_at = k.expiresAt
            allowed_models = k.allowedModels; max_concurrent = k.maxConcurrent; disabled = k.disabled; created_at = k.createdAt; updated_at = k.updatedAt
        }

        var record: VirtualKeyRecord {
            VirtualKeyRecord(id: _id, name: name, keyHash: key_hash, displayPrefix: display_prefix, connectionID: connection_id,
                             requestsPerSecond: requests_per_second, burst: burst, tokensPerMinute: tokens_per_minute, expiresAt: expires_at,
                             allowedModels: allowed_models, maxConcurrent: max_concurrent, disabled: disabled, createdAt: created_at, updatedAt: updated_at)
        }
    }

    struct UsageDoc: Codable {
        var _id: String, vkey_id: String, connection_id: String, model: String, prompt_tokens: Int64, completion_tokens: Int64
        var estimated: Bool, status: Int, latency_ms: Int64, stream: Bool, started_at: Int64, ended_at: Int64, node_id: String

        init(_ r: UsageRecord) {
            _id = r.id; vkey_id = r.virtualKeyID; connection_id = r.connectionID; model = r.model; prompt_tokens = r.promptTokens
            completion_tokens = r.completionTokens; estimated = r.estimated; status = r.statusCode; latency_ms = r.latencyMillis
            stream = r.stream; started_at = r.startedAt; ended_at = r.endedAt; node_id = r.nodeID
        }

        var record: UsageRecord {
            UsageRecord(id: _id, virtualKeyID: vkey_id, connectionID: connection_id, model: model, promptTokens: prompt_tokens,
                        completionTokens: completion_tokens, estimated: estimated, statusCode: status, latencyMillis: latency_ms,
                        stream: stream, startedAt: started_at, endedAt: ended_at, nodeID: node_id)
        }
    }

    struct AuditDoc: Codable {
        var _id: Int64, at: Int64, actor: String, action: String, object_type: String, object_id: String, detail: String
    }

    private static func decode<T: Decodable>(_ type: T.Type, _ json: String) throws -> T {
        do { return try JSONDecoder().decode(type, from: Data(json.utf8)) } catch {
            throw StoreError(.unavailable, "unexpected document in MongoDB: \(error)")
        }
    }

    private static func byID(_ id: String) throws -> BSONDocument { try BSONDocument(JSONValue.object([("_id", .string(id))])) }

    /// Bumps the revision and writes the audit event numbered by it.
    private static func audit(_ c: MongoClientPool, _ actor: AuditActor, _ action: String, _ type: String, _ id: String, _ detail: String = "") throws {
        let revision = try c.with("meta") { try $0.increment(id: "revision", field: "revision") }
        try c.with("audit_events") {
            try $0.insertOne(try BSONDocument(AuditDoc(_id: revision, at: nowMillis(), actor: actor.name, action: action,
                                                        object_type: type, object_id: id, detail: detail)))
        }
    }

    // MARK: Schema

    func migrate() async throws {
        try await run { c in
            let indexes: [(String, [(String, JSONValue)], [(String, JSONValue)])] = [
                ("connections", [("name", .int(1))], [("unique", .bool(true))]),
                ("virtual_keys", [("name", .int(1))], [("unique", .bool(true))]),
                ("virtual_keys", [("key_hash", .int(1))], [("unique", .bool(true))]),
                ("virtual_keys", [("connection_id", .int(1))], []),
                ("usage_records", [("vkey_id", .int(1)), ("started_at", .int(1))], []),
                ("usage_records", [("started_at", .int(1))], []),
            ]
            // createIndexes is idempotent, so nodes starting together cannot race.
            for (collection, keys, options) in indexes {
                let name = keys.map { "\($0.0)_1" }.joined(separator: "_")
                let index = JSONValue.object([("key", .object(keys)), ("name", .string(name))] + options)
                try c.command(try BSONDocument(JSONValue.object([("createIndexes", .string(collection)), ("indexes", .array([index]))])))
            }
            _ = try c.with("meta") { try $0.updateOne(Self.byID("revision"), BSONDocument(json: #"{"$setOnInsert": {"revision": 0}}"#), upsert: true) }
        }
    }

    // MARK: Connections

    func createConnection(_ connection: ConnectionRecord, actor: AuditActor) async throws {
        do {
            try await run { c in
                try c.with("connections") { try $0.insertOne(try BSONDocument(ConnectionDoc(connection))) }
                try Self.audit(c, actor, "create", "connection", connection.id, "name=\(connection.name) provider=\(connection.provider.rawValue)")
            }
        } catch let e as StoreError where e.code == .duplicate {
            throw StoreError(.duplicate, "a connection named \"\(connection.name)\" already exists")
        }
    }

    func connection(id: String) async throws -> ConnectionRecord? {
        try await run { c in
            try c.with("connections") { try $0.find(Self.byID(id)) }.first.map { try Self.decode(ConnectionDoc.self, $0).record() }
        }
    }

    func connections() async throws -> [ConnectionRecord] {
        try await run { c in
            try c.with("connections") { try $0.find(BSONDocument(), options: BSONDocument(json: #"{"sort": {"created_at": 1, "_id": 1}}"#)) }
                .map { try Self.decode(ConnectionDoc.self, $0).record() }
        }
    }

    func deleteConnection(id: String, force: Bool, actor: AuditActor) async throws {
        try await run { c in
            guard try !c.with("connections", { try $0.find(Self.byID(id)) }).isEmpty else {
                throw StoreError(.notFound, "no connection with id \(id)")
            }
            let filter = try BSONDocument(JSONValue.object([("connection_id", .string(id))]))
            let users = try c.with("virtual_keys") { try $0.find(filter) }.map { try Self.decode(KeyDoc.self, $0) }
            if !users.isEmpty && !force {
                throw StoreError(.inUse, "connection \(id) is used by \(users.count) virtual key(s); remove them first or use --force")
            }
            for u in users {
                _ = try c.with("virtual_keys") { try $0.deleteMany(Self.byID(u._id)) }
                try Self.audit(c, actor, "delete", "virtual_key", u._id, "connection \(id) deleted with --force")
            }
            _ = try c.with("connections") { try $0.deleteMany(Self.byID(id)) }
            try Self.audit(c, actor, "delete", "connection", id)
        }
    }

    func resealConnections(_ reseal: @escaping @Sendable (_ id: String, _ sealed: [UInt8]) throws -> [UInt8], verifier: String,
                           actor: AuditActor) async throws -> Int {
        try await run { c in
            let docs = try c.with("connections") { try $0.find(BSONDocument()) }.map { try Self.decode(ConnectionDoc.self, $0) }
            // Reseal everything in memory first: a key that does not open stops the rotation before any write.
            let resealed = try docs.map { ($0._id, try reseal($0._id, Crypto.unhex($0.api_key_sealed) ?? [])) }
            for (id, sealed) in resealed {
                let update = try BSONDocument(JSONValue.object([("$set", .object([("api_key_sealed", .string(Crypto.hex(sealed))),
                                                                                   ("updated_at", .int(nowMillis()))]))]))
                _ = try c.with("connections") { try $0.updateOne(Self.byID(id), update) }
            }
            let setVerifier = try BSONDocument(JSONValue.object([("$set", .object([("value", .string(verifier))]))]))
            _ = try c.with("settings") { try $0.updateOne(Self.byID(MasterKeyVerifier.settingKey), setVerifier, upsert: true) }
            try Self.audit(c, actor, "rotate_master_key", "store", "connections", "\(docs.count) connection(s) re-encrypted")
            return docs.count
        }
    }

    // MARK: Virtual keys

    func createVirtualKey(_ key: VirtualKeyRecord, actor: AuditActor) async throws {
        do {
            try await run { c in
                guard try !c.with("connections", { try $0.find(Self.byID(key.connectionID)) }).isEmpty else {
                    throw StoreError(.notFound, "no connection with id \(key.connectionID)")
                }
                try c.with("virtual_keys") { try $0.insertOne(try BSONDocument(KeyDoc(key))) }
                try Self.audit(c, actor, "create", "virtual_key", key.id, "name=\(key.name) connection=\(key.connectionID)")
            }
        } catch let e as StoreError where e.code == .duplicate {
            throw StoreError(.duplicate, "a virtual key named \"\(key.name)\" already exists")
        }
    }

    func virtualKey(id: String) async throws -> VirtualKeyRecord? {
        try await run { c in try c.with("virtual_keys") { try $0.find(Self.byID(id)) }.first.map { try Self.decode(KeyDoc.self, $0).record } }
    }

    func virtualKey(hash: String) async throws -> VirtualKeyRecord? {
        try await run { c in
            let filter = try BSONDocument(JSONValue.object([("key_hash", .string(hash))]))
            return try c.with("virtual_keys") { try $0.find(filter) }.first.map { try Self.decode(KeyDoc.self, $0).record }
        }
    }

    func virtualKeys() async throws -> [VirtualKeyRecord] {
        try await run { c in
            try c.with("virtual_keys") { try $0.find(BSONDocument(), options: BSONDocument(json: #"{"sort": {"created_at": 1, "_id": 1}}"#)) }
                .map { try Self.decode(KeyDoc.self, $0).record }
        }
    }

    func updateVirtualKey(_ key: VirtualKeyRecord, actor: AuditActor) async throws {
        do {
            try await run { c in
                // Every field is set again (expires_at may become null).
                let set = try BSONDocument(Wrapper(set: KeyDoc(key)))
                guard try c.with("virtual_keys", { try $0.updateOne(Self.byID(key.id), set) }) == 1 else {
                    throw StoreError(.notFound, "no virtual key with id \(key.id)")
                }
                try Self.audit(c, actor, "update", "virtual_key", key.id,
                               "rps=\(key.requestsPerSecond) burst=\(key.burst) tpm=\(key.tokensPerMinute) disabled=\(key.disabled)")
            }
        } catch let e as StoreError where e.code == .duplicate {
            throw StoreError(.duplicate, "a virtual key named \"\(key.name)\" already exists")
        }
    }

    /// `$set` every field; a cleared expiry is `$unset` (JSONEncoder leaves nil fields out).
    private struct Wrapper: Encodable {
        var set: KeyDoc
        enum CodingKeys: String, CodingKey { case set = "$set", unset = "$unset" }
        func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(set, forKey: .set)
            if set.expires_at == nil { try c.encode(["expires_at": ""], forKey: .unset) }
        }
    }

    func deleteVirtualKey(id: String, actor: AuditActor) async throws {
        try await run { c in
            guard try c.with("virtual_keys", { try $0.deleteMany(Self.byID(id)) }) == 1 else {
                throw StoreError(.notFound, "no virtual key with id \(id)")
            }
            try Self.audit(c, actor, "delete", "virtual_key", id)
        }
    }

    // MARK: Usage

    func insertUsage(_ batches: [[UsageRecord]], lane: StoreLane) async throws {
        guard batches.contains(where: { !$0.isEmpty }) else { return }
        try await run(lane: lane) { c in
            let docs = try batches.joined().map { try BSONDocument(UsageDoc($0)) }
            try c.with("usage_records") { try $0.insertMany(docs) }
        }
    }

    private static func match(_ q: UsageQuery) -> JSONValue {
        var fields: [(String, JSONValue)] = []
        if let k = q.virtualKeyID { fields.append(("vkey_id", .string(k))) }
        var range: [(String, JSONValue)] = []
        if let s = q.since { range.append(("$gte", .int(s))) }
        if let u = q.until { range.append(("$lt", .int(u))) }
        if !range.isEmpty { fields.append(("started_at", .object(range))) }
        return .object(fields)
    }

    func usageTotals(_ query: UsageQuery) async throws -> [UsageTotal] {
        try await run { c in
            let pipeline = JSONValue.array([
                .object([("$match", Self.match(query))]),
                .object([("$group", .object([
                    ("_id", .object([("vkey_id", .string("$vkey_id")), ("model", .string("$model"))])),
                    ("requests", .object([("$sum", .int(1))])),
                    ("prompt", .object([("$sum", .string("$prompt_tokens"))])),
                    ("completion", .object([("$sum", .string("$completion_tokens"))])),
                ]))]),
                .object([("$sort", .object([("_id.vkey_id", .int(1)), ("_id.model", .int(1))]))]),
            ])
            struct Row: Decodable {
                struct ID: Decodable { var vkey_id: String; var model: String }
                var _id: ID; var requests: Int64; var prompt: Int64; var completion: Int64
            }
            let rows = try c.with("usage_records") { try $0.aggregate(try BSONDocument(JSONValue.object([("pipeline", pipeline)]))) }
            return try rows.map { try Self.decode(Row.self, $0) }.map {
                UsageTotal(virtualKeyID: $0._id.vkey_id, model: $0._id.model, requests: $0.requests, promptTokens: $0.prompt, completionTokens: $0.completion)
            }.sorted { ($0.virtualKeyID, $0.model) < ($1.virtualKeyID, $1.model) }
        }
    }

    func usageRecords(_ query: UsageQuery, limit: Int) async throws -> [UsageRecord] {
        try await run { c in
            let options = try BSONDocument(JSONValue.object([("sort", .object([("started_at", .int(-1)), ("_id", .int(1))])), ("limit", .int(Int64(max(0, limit))))]))
            return try c.with("usage_records") { try $0.find(BSONDocument(Self.match(query)), options: options) }
                .map { try Self.decode(UsageDoc.self, $0).record }
        }
    }

    func usagePage(_ query: UsageQuery, after: UsageCursor?, limit: Int) async throws -> [UsageRecord] {
        try await run { c in
            var filter = Self.match(query)
            if let after, case .object(var fields) = filter {
                fields.append(("$or", .array([
                    .object([("started_at", .object([("$gt", .int(after.startedAt))]))]),
                    .object([("started_at", .int(after.startedAt)), ("_id", .object([("$gt", .string(after.id))]))]),
                ])))
                filter = .object(fields)
            }
            let options = try BSONDocument(JSONValue.object([("sort", .object([("started_at", .int(1)), ("_id", .int(1))])), ("limit", .int(Int64(max(0, limit))))]))
            return try c.with("usage_records") { try $0.find(BSONDocument(filter), options: options) }
                .map { try Self.decode(UsageDoc.self, $0).record }
        }
    }

    func deleteUsage(startedBefore before: Int64, limit: Int, lane: StoreLane) async throws -> Int {
        guard limit > 0 else { return 0 }
        return try await run(lane: lane) { c in
            // The oldest `limit` ids through the started_at index, then one delete of exactly those: a
            // `delete` command alone cannot be bounded to a batch.
            struct IDDoc: Decodable { var _id: String }
            let filter = try BSONDocument(JSONValue.object([("started_at", .object([("$lt", .int(before))]))]))
            let options = try BSONDocument(JSONValue.object([("projection", .object([("_id", .int(1))])),
                                                             ("sort", .object([("started_at", .int(1))])), ("limit", .int(Int64(limit)))]))
            let ids = try c.with("usage_records") { try $0.find(filter, options: options) }.map { try Self.decode(IDDoc.self, $0)._id }
            guard !ids.isEmpty else { return 0 }
            let byIDs = try BSONDocument(JSONValue.object([("_id", .object([("$in", .array(ids.map { .string($0) }))]))]))
            return try c.with("usage_records") { try $0.deleteMany(byIDs) }
        }
    }

    // MARK: Audit, revision, settings

    func recordAudit(_ actor: AuditActor, action: String, objectType: String, objectID: String, detail: String) async throws {
        try await run { c in try Self.audit(c, actor, action, objectType, objectID, detail) }
    }

    func auditEvents(limit: Int) async throws -> [AuditEvent] {
        try await run { c in
            let options = try BSONDocument(JSONValue.object([("sort", .object([("_id", .int(-1))])), ("limit", .int(Int64(max(0, limit))))]))
            return try c.with("audit_events") { try $0.find(BSONDocument(), options: options) }.map {
                let d = try Self.decode(AuditDoc.self, $0)
                return AuditEvent(id: d._id, at: d.at, actor: d.actor, action: d.action, objectType: d.object_type, objectID: d.object_id, detail: d.detail)
            }
        }
    }

    func revision() async throws -> Int64 {
        try await run { c in
            struct Meta: Decodable { var revision: Int64 }
            return try c.with("meta") { try $0.find(Self.byID("revision")) }.first.map { try Self.decode(Meta.self, $0).revision } ?? 0
        }
    }

    struct SettingDoc: Codable { var _id: String; var value: String }

    func setting(_ key: String) async throws -> String? {
        try await run { c in try c.with("settings") { try $0.find(Self.byID(key)) }.first.map { try Self.decode(SettingDoc.self, $0).value } }
    }

    func initSetting(_ key: String, value: String) async throws -> String {
        try await run { c in
            do {
                try c.with("settings") { try $0.insertOne(try BSONDocument(SettingDoc(_id: key, value: value))) }
            } catch let e as MongoError where e.isDuplicateKey {
                // Someone else set it first: theirs stands.
            }
            return try c.with("settings") { try $0.find(Self.byID(key)) }.first.map { try Self.decode(SettingDoc.self, $0).value } ?? value
        }
    }

    func close() async {
        workers.shutdown()
        backgroundWorkers.shutdown()
    }
}

func MongoStore(url: String, poolSize: Int) throws -> any Store {
    try MongoStoreImpl(url: url, poolSize: poolSize)
}
