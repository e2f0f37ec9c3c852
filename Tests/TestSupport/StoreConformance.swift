import Storage
import Testing

/// The store contract, written once against `Store` and run on every backend.
public enum StoreConformance {
    static let box = try! SecretBox(masterKey: "test-master-key-0123456789")

    public static func makeConnection(_ name: String = "OpenAI-\(Identifiers.make("n"))", provider: Provider = .openai,
                                      apiKey: String = "sk-real-provider-key-123") -> ConnectionRecord {
        let id = Identifiers.make("conn")
        let now = nowMillis()
        return ConnectionRecord(id: id, name: name, provider: provider, endpoint: provider.defaultEndpoint ?? "https://x.openai.azure.com/openai",
                                encryptedAPIKey: box.sealString(apiKey, context: id), options: provider == .azure ? ["api-version": "2024-06-01"] : [:],
                                createdAt: now, updatedAt: now)
    }

    public static func makeKey(connectionID: String, name: String = "key-\(Identifiers.make("n"))") -> (VirtualKeyRecord, String) {
        let secret = Identifiers.newVirtualKey()
        let now = nowMillis()
        let k = VirtualKeyRecord(id: Identifiers.make("vk"), name: name, keyHash: Crypto.sha256Hex(secret),
                                 displayPrefix: Identifiers.displayPrefix(of: secret), connectionID: connectionID,
                                 requestsPerSecond: 2.5, burst: 5, tokensPerMinute: 1000, expiresAt: now + 86_400_000,
                                 allowedModels: ["gpt-4o-mini", "gpt-4o"], maxConcurrent: 3, createdAt: now, updatedAt: now)
        return (k, secret)
    }

    static func expectStoreError(_ code: StoreError.Code, sourceLocation: SourceLocation = #_sourceLocation, _ body: () async throws -> Void) async {
        do {
            try await body()
            Issue.record("expected StoreError.\(code), got success", sourceLocation: sourceLocation)
        } catch let e as StoreError {
            #expect(e.code == code, "\(e.message)", sourceLocation: sourceLocation)
        } catch {
            Issue.record("expected StoreError.\(code), got \(error)", sourceLocation: sourceLocation)
        }
    }

    public static func connectionsRoundTripAndStayUnique(_ store: any Store) async throws {
        let c = makeConnection("OpenAI-Prod")
        try await store.createConnection(c, actor: .cli)
        #expect(try await store.connection(id: c.id) == c)
        #expect(try await store.connections().map(\.id) == [c.id])
        await expectStoreError(.duplicate) { try await store.createConnection(makeConnection("OpenAI-Prod"), actor: .cli) }
        #expect(try await store.connection(id: "conn_missing") == nil)
        await expectStoreError(.notFound) { try await store.deleteConnection(id: "conn_missing", force: false, actor: .cli) }
        let azure = makeConnection("Azure", provider: .azure)
        try await store.createConnection(azure, actor: .cli)
        #expect(try await store.connection(id: azure.id)?.options == ["api-version": "2024-06-01"])
        try await store.deleteConnection(id: c.id, force: false, actor: .cli)
        #expect(try await store.connection(id: c.id) == nil)
    }

    public static func virtualKeysRoundTripByIDAndHash(_ store: any Store) async throws {
        let c = makeConnection()
        try await store.createConnection(c, actor: .cli)
        let (k, secret) = makeKey(connectionID: c.id, name: "Intern-Key")
        try await store.createVirtualKey(k, actor: .cli)
        #expect(try await store.virtualKey(id: k.id) == k)
        #expect(try await store.virtualKey(hash: Crypto.sha256Hex(secret)) == k)
        #expect(try await store.virtualKey(hash: Crypto.sha256Hex(secret + "x")) == nil)
        await expectStoreError(.duplicate) {
            try await store.createVirtualKey(makeKey(connectionID: c.id, name: "Intern-Key").0, actor: .cli)
        }
        await expectStoreError(.notFound) {
            try await store.createVirtualKey(makeKey(connectionID: "conn_missing").0, actor: .cli)
        }
        var updated = k
        updated.requestsPerSecond = 0.5
        updated.tokensPerMinute = 0
        updated.expiresAt = nil
        updated.allowedModels = []
        updated.disabled = true
        updated.updatedAt += 1
        try await store.updateVirtualKey(updated, actor: .cli)
        #expect(try await store.virtualKey(id: k.id) == updated)
        var ghost = k
        ghost.id = "vk_missing"
        ghost.name = "ghost"
        await expectStoreError(.notFound) { try await store.updateVirtualKey(ghost, actor: .cli) }
        #expect(try await store.virtualKeys().map(\.id) == [k.id])
        try await store.deleteVirtualKey(id: k.id, actor: .cli)
        #expect(try await store.virtualKey(id: k.id) == nil)
        await expectStoreError(.notFound) { try await store.deleteVirtualKey(id: k.id, actor: .cli) }
    }

    public static func connectionInUseIsRefusedUnlessForced(_ store: any Store) async throws {
        let c = makeConnection()
        try await store.createConnection(c, actor: .cli)
        let (k, _) = makeKey(connectionID: c.id)
        try await store.createVirtualKey(k, actor: .cli)
        await expectStoreError(.inUse) { try await store.deleteConnection(id: c.id, force: false, actor: .cli) }
        #expect(try await store.connection(id: c.id) != nil)
        try await store.deleteConnection(id: c.id, force: true, actor: .cli)
        #expect(try await store.connection(id: c.id) == nil)
        #expect(try await store.virtualKey(id: k.id) == nil)
    }

    public static func everyChangeBumpsTheRevisionAndIsAudited(_ store: any Store) async throws {
        let r0 = try await store.revision()
        let c = makeConnection(apiKey: "sk-super-secret-provider-key")
        try await store.createConnection(c, actor: AuditActor("alice"))
        let r1 = try await store.revision()
        #expect(r1 > r0)
        _ = try await store.connections()
        #expect(try await store.revision() == r1)
        let (k, secret) = makeKey(connectionID: c.id)
        try await store.createVirtualKey(k, actor: AuditActor("alice"))
        var k2 = k
        k2.disabled = true
        try await store.updateVirtualKey(k2, actor: AuditActor("bob"))
        try await store.deleteVirtualKey(id: k.id, actor: AuditActor("bob"))
        #expect(try await store.revision() == r1 + 3)
        // A failed change bumps nothing.
        await expectStoreError(.duplicate) { try await store.createConnection(makeConnection(c.name), actor: .cli) }
        #expect(try await store.revision() == r1 + 3)
        let events = try await store.auditEvents(limit: 10)
        #expect(events.prefix(4).map(\.action) == ["delete", "update", "create", "create"])
        #expect(events.first?.actor == "bob")
        #expect(events.first?.objectID == k.id)
        for e in events {
            #expect(!e.detail.contains("sk-super-secret-provider-key"))
            #expect(!e.detail.contains(secret))
        }
    }

    public static func usageBatchesAreIdempotentAndTotalled(_ store: any Store) async throws {
        let base: Int64 = 1_700_000_000_000
        var records: [UsageRecord] = []
        for i in 0..<1000 {
            records.append(UsageRecord(id: Identifiers.makeTimeOrdered("u", millis: base + Int64(i) * 1000), virtualKeyID: i % 2 == 0 ? "vk_a" : "vk_b", connectionID: "conn_x",
                                       model: i % 4 < 2 ? "gpt-4o" : "gpt-4o-mini", promptTokens: 10, completionTokens: Int64(i % 7),
                                       estimated: i % 10 == 0, statusCode: 200, latencyMillis: 12, stream: i % 3 == 0,
                                       startedAt: base + Int64(i) * 1000, endedAt: base + Int64(i) * 1000 + 12, nodeID: "node-1"))
        }
        // Half through the background lane (its own thread and connection), half through the normal one.
        try await store.insertUsage(Array(records[0..<500]), lane: .background)
        try await store.insertUsage(Array(records[500...]), lane: .normal)
        try await store.insertUsage(Array(records[0..<100]), lane: .background)  // a retried batch adds nothing
        let all = try await store.usageTotals(UsageQuery())
        #expect(all.reduce(0) { $0 + $1.requests } == 1000)
        #expect(all.reduce(0) { $0 + $1.promptTokens } == 10_000)
        let expectedCompletion = (0..<1000).reduce(Int64(0)) { $0 + Int64($1 % 7) }
        #expect(all.reduce(0) { $0 + $1.completionTokens } == expectedCompletion)
        #expect(Set(all.map(\.model)) == ["gpt-4o", "gpt-4o-mini"])
        let a = try await store.usageTotals(UsageQuery(virtualKeyID: "vk_a"))
        #expect(a.allSatisfy { $0.virtualKeyID == "vk_a" })
        #expect(a.reduce(0) { $0 + $1.requests } == 500)
        // Half-open time range [since, until): records 100..<200.
        let window = try await store.usageTotals(UsageQuery(since: base + 100_000, until: base + 200_000))
        #expect(window.reduce(0) { $0 + $1.requests } == 100)
        let latest = try await store.usageRecords(UsageQuery(virtualKeyID: "vk_b"), limit: 3)
        #expect(latest.count == 3)
        #expect(latest[0] == records[999])
        #expect(latest[0].startedAt > latest[1].startedAt)
    }

    public static func usageIsPrunedOldestFirstInShortBatches(_ store: any Store) async throws {
        let base: Int64 = 1_700_000_000_000
        let records = (0..<1000).map { i in
            UsageRecord(id: Identifiers.makeTimeOrdered("u", millis: base + Int64(i) * 1000), virtualKeyID: "vk_a", connectionID: "conn_x",
                        model: "gpt-4o", promptTokens: 1, completionTokens: 1, statusCode: 200, latencyMillis: 1, stream: false,
                        startedAt: base + Int64(i) * 1000, endedAt: base + Int64(i) * 1000 + 1, nodeID: "node-1")
        }
        try await store.insertUsage(records, lane: .urgent)
        func remaining() async throws -> [UsageRecord] { try await store.usageRecords(UsageQuery(), limit: 2000) }

        // Everything before record 250, a hundred per transaction on the paced background lane.
        #expect(try await store.pruneUsage(startedBefore: base + 250_000, batch: 100, lane: .background) == 250)
        var left = try await remaining()
        #expect(left.count == 750)
        #expect(left.map(\.startedAt).min() == base + 250_000)
        #expect(try await store.pruneUsage(startedBefore: base + 250_000) == 0)

        // One bounded batch takes the oldest first, and only those before the cut.
        #expect(try await store.deleteUsage(startedBefore: base + 300_000, limit: 10, lane: .normal) == 10)
        left = try await remaining()
        #expect(left.count == 740)
        #expect(left.map(\.startedAt).min() == base + 260_000)
        #expect(try await store.deleteUsage(startedBefore: base + 300_000, limit: 1000, lane: .normal) == 40)
        #expect(try await store.usageTotals(UsageQuery()).reduce(0) { $0 + $1.requests } == 700)

        // The prune is audited on its own, and moves the revision like any admin change.
        let before = try await store.revision()
        try await store.recordAudit(.cli, action: "prune", objectType: "usage", objectID: "before 2023-11-14T22:18:20Z", detail: "290 record(s)")
        #expect(try await store.revision() > before)
        let event = try #require(try await store.auditEvents(limit: 1).first)
        #expect(event.action == "prune" && event.objectType == "usage" && event.detail == "290 record(s)")
    }

    public static func usagePagesListEveryRecordOnceInOrder(_ store: any Store) async throws {
        let base: Int64 = 1_700_000_000_000
        // Three records per start time: ties are broken by id.
        let records = (0..<30).map { i in
            let t = base + Int64(i / 3) * 1000
            return UsageRecord(id: Identifiers.makeTimeOrdered("u", millis: t), virtualKeyID: i % 2 == 0 ? "vk_a" : "vk_b", connectionID: "conn_x",
                               model: "gpt-4o", promptTokens: Int64(i), completionTokens: 1, statusCode: 200, latencyMillis: 1, stream: i % 5 == 0,
                               startedAt: t, endedAt: t + 7, nodeID: "node-1")
        }
        try await store.insertUsage(records.shuffled(), lane: .urgent)
        let ordered = records.sorted { ($0.startedAt, $0.id) < ($1.startedAt, $1.id) }

        func all(_ query: UsageQuery, pageSize: Int) async throws -> [UsageRecord] {
            var out: [UsageRecord] = []
            var cursor: UsageCursor?
            while true {
                let page = try await store.usagePage(query, after: cursor, limit: pageSize)
                out += page
                guard page.count == pageSize, let last = page.last else { return out }
                cursor = UsageCursor(after: last)
            }
        }
        #expect(try await all(UsageQuery(), pageSize: 7) == ordered)
        #expect(try await all(UsageQuery(), pageSize: 30) == ordered)
        let window = UsageQuery(virtualKeyID: "vk_b", since: base + 2000, until: base + 8000)
        #expect(try await all(window, pageSize: 4) == ordered.filter { $0.virtualKeyID == "vk_b" && $0.startedAt >= base + 2000 && $0.startedAt < base + 8000 })

        // A cursor survives writes: a record written behind it is not listed, one ahead of it is.
        let first = try await store.usagePage(UsageQuery(), after: nil, limit: 10)
        let cursor = UsageCursor(after: try #require(first.last))
        #expect(UsageCursor(text: cursor.text) == cursor)
        func late(_ t: Int64) -> UsageRecord {
            UsageRecord(id: Identifiers.makeTimeOrdered("u", millis: t), virtualKeyID: "vk_a", connectionID: "conn_x", model: "gpt-4o", promptTokens: 1,
                        completionTokens: 1, statusCode: 200, latencyMillis: 1, stream: false, startedAt: t, endedAt: t, nodeID: "node-2")
        }
        let behind = late(base), ahead = late(base + 60_000)
        try await store.insertUsage([behind, ahead], lane: .urgent)
        let rest = try await store.usagePage(UsageQuery(), after: cursor, limit: 100)
        #expect(rest.count == 21 && rest.last == ahead && !rest.contains(behind))
        #expect(UsageCursor(text: "no-dot") == nil && UsageCursor(text: "12.") == nil && UsageCursor(text: "x.u_1") == nil)
    }

    /// Totals over any window — whole hours, parts of hours, one hour, open ends — and a key's records
    /// equal what the records themselves give, after a retry that mixes stored and new records and after
    /// prunes that cut an hour in two.
    public static func usageTotalsMatchTheRecordsInAnyWindow(_ store: any Store) async throws {
        let hour: Int64 = 3_600_000
        let base: Int64 = 1_700_000_000_000 / hour * hour  // an hour's start
        var rng = SplitMix(seed: 7)
        let keys = ["vk_a", "vk_b", "vk_c"]
        let records = (0..<600).map { i in
            // From half an hour before `base` to four and a half after; vk_c only in the last two hours.
            let key = keys[Int(rng.next() % 3)]
            let t = key == "vk_c" ? base + 3 * hour + Int64(rng.next() % UInt64(hour * 3 / 2))
                                  : base - hour / 2 + Int64(rng.next() % UInt64(5 * hour))
            return UsageRecord(id: Identifiers.makeTimeOrdered("u", millis: t) + "-\(i)", virtualKeyID: key, connectionID: "conn_x",
                               model: rng.next() % 2 == 0 ? "gpt-4o" : "claude", promptTokens: Int64(rng.next() % 100),
                               completionTokens: Int64(rng.next() % 50), statusCode: 200, latencyMillis: 1, stream: false,
                               startedAt: t, endedAt: t + 5, nodeID: "node-1")
        }
        try await store.insertUsage(Array(records[0..<300]), lane: .normal)
        // A retry holding stored records and new ones: each is counted once.
        try await store.insertUsage([Array(records[200..<450]), Array(records[450...])], lane: .urgent)
        try await store.insertUsage(Array(records[100..<200]), lane: .background)

        func expected(_ rs: [UsageRecord], _ q: UsageQuery) -> [UsageTotal] {
            var sums: [String: UsageTotal] = [:]
            for r in rs where (q.virtualKeyID == nil || r.virtualKeyID == q.virtualKeyID)
                && (q.since == nil || r.startedAt >= q.since!) && (q.until == nil || r.startedAt < q.until!) {
                let k = r.virtualKeyID + "\u{0}" + r.model
                var t = sums[k] ?? UsageTotal(virtualKeyID: r.virtualKeyID, model: r.model, requests: 0, promptTokens: 0, completionTokens: 0)
                t.requests += 1
                t.promptTokens += r.promptTokens
                t.completionTokens += r.completionTokens
                sums[k] = t
            }
            return sums.values.sorted { ($0.virtualKeyID, $0.model) < ($1.virtualKeyID, $1.model) }
        }
        let bounds: [(Int64?, Int64?)] = [
            (nil, nil), (base, nil), (base + 1234, nil), (nil, base + 2 * hour), (nil, base + 2 * hour + 17),
            (base + hour, base + 3 * hour), (base + 10, base + 3 * hour - 10), (base + hour + 5, base + hour + 999_999),
            (base - hour, base + 5 * hour), (base + hour - 1, base + hour + 1), (base + 2 * hour, base + 2 * hour),
            (base + 3 * hour, base + hour), (-5, base), (nil, 0), (base + 4 * hour + 1, base + 9 * hour),
        ]
        func check(_ rs: [UsageRecord], sourceLocation: SourceLocation = #_sourceLocation) async throws {
            for (since, until) in bounds {
                for key in [nil] + keys + ["vk_none"] {
                    let q = UsageQuery(virtualKeyID: key, since: since, until: until)
                    #expect(try await store.usageTotals(q) == expected(rs, q), "\(q)", sourceLocation: sourceLocation)
                    guard key != nil else { continue }
                    var page: [UsageRecord] = []
                    var cursor: UsageCursor?
                    repeat {
                        let next = try await store.usagePage(q, after: cursor, limit: 40)
                        page += next
                        cursor = next.count == 40 ? UsageCursor(after: next.last!) : nil
                    } while cursor != nil
                    let want = rs.filter { $0.virtualKeyID == key && (since == nil || $0.startedAt >= since!) && (until == nil || $0.startedAt < until!) }
                    #expect(page == want.sorted { ($0.startedAt, $0.id) < ($1.startedAt, $1.id) }, "\(q)", sourceLocation: sourceLocation)
                    let latest = try await store.usageRecords(q, limit: 5)
                    #expect(latest.map(\.id) == want.sorted { ($0.startedAt, $1.id) > ($1.startedAt, $0.id) }.prefix(5).map(\.id), "\(q)",
                            sourceLocation: sourceLocation)
                }
            }
        }
        try await check(records)
        // Prunes that end inside an hour, in short batches.
        let cut = base + hour + hour / 3
        _ = try await store.pruneUsage(startedBefore: cut, batch: 37, lane: .background)
        try await check(records.filter { $0.startedAt >= cut })
        _ = try await store.pruneUsage(startedBefore: base + 9 * hour)
        try await check([])
        #expect(try await store.usageTotals(UsageQuery()).isEmpty)
    }

    public static func sealedKeysOpenOnlyWithTheRightMasterKey(_ store: any Store) async throws {
        let c = makeConnection(apiKey: "sk-provider-abc")
        try await store.createConnection(c, actor: .cli)
        let stored = try #require(try await store.connection(id: c.id))
        #expect(try box.openString(stored.encryptedAPIKey, context: c.id) == "sk-provider-abc")
        #expect(!stored.encryptedAPIKey.contains(Array("sk-provider-abc".utf8)))
        let wrong = try SecretBox(masterKey: "not-the-master-key-at-all")
        #expect { _ = try wrong.open(stored.encryptedAPIKey, context: c.id) } throws: { ($0 as? StoreError)?.code == .wrongMasterKey }
        // Bound to its row: the same bytes under another connection id do not open.
        #expect(throws: StoreError.self) { _ = try box.open(stored.encryptedAPIKey, context: "conn_other") }
        // The verifier kept in settings catches a wrong master key before any secret is needed.
        let verifier = try await store.initSetting(MasterKeyVerifier.settingKey, value: box.makeVerifier())
        #expect(try await store.initSetting(MasterKeyVerifier.settingKey, value: "ignored") == verifier)
        try box.check(verifier: verifier)
        #expect(throws: StoreError.self) { try wrong.check(verifier: verifier) }
    }

    public static func resealingRotatesEveryConnection(_ store: any Store) async throws {
        let a = makeConnection(apiKey: "sk-one")
        let b = makeConnection(apiKey: "sk-two")
        try await store.createConnection(a, actor: .cli)
        try await store.createConnection(b, actor: .cli)
        let newBox = try SecretBox(masterKey: "rotated-master-key-9876543210")
        let oldBox = box
        _ = try await store.initSetting(MasterKeyVerifier.settingKey, value: oldBox.makeVerifier())
        let count = try await store.resealConnections({ id, sealed in
            newBox.seal(try oldBox.open(sealed, context: id), context: id)
        }, verifier: newBox.makeVerifier(), actor: .cli)
        #expect(count == 2)
        let verifier = try #require(try await store.setting(MasterKeyVerifier.settingKey))
        try newBox.check(verifier: verifier)
        #expect(throws: StoreError.self) { try oldBox.check(verifier: verifier) }
        for (c, key) in [(a, "sk-one"), (b, "sk-two")] {
            let stored = try #require(try await store.connection(id: c.id))
            #expect(try newBox.openString(stored.encryptedAPIKey, context: c.id) == key)
            #expect(throws: StoreError.self) { _ = try oldBox.open(stored.encryptedAPIKey, context: c.id) }
        }
        // A failing reseal changes nothing.
        await expectStoreError(.wrongMasterKey) {
            _ = try await store.resealConnections({ id, sealed in newBox.seal(try oldBox.open(sealed, context: id), context: id) },
                                                  verifier: oldBox.makeVerifier(), actor: .cli)
        }
        let stored = try #require(try await store.connection(id: a.id))
        #expect(try newBox.openString(stored.encryptedAPIKey, context: a.id) == "sk-one")
        try newBox.check(verifier: try #require(try await store.setting(MasterKeyVerifier.settingKey)))
    }

    public static func migrateIsIdempotent(_ store: any Store) async throws {
        try await store.migrate()
        try await store.migrate()
        let c = makeConnection()
        try await store.createConnection(c, actor: .cli)
        try await store.migrate()
        #expect(try await store.connection(id: c.id) != nil)
    }
}

/// A small seeded generator: the same records on every run and backend.
struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
