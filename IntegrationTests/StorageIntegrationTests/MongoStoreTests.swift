import Storage
import Testing
import TestSupport

/// The store conformance suite on a real MongoDB-compatible server (SecantusDB), plus restart.
@Suite struct MongoStoreTests {
    func withStore(_ body: (any Store) async throws -> Void) async throws {
        let url = try MongoTestServer.shared().makeDatabase()
        let store = try StoreFactory.open(url: url)
        try await store.migrate()
        do { try await body(store) } catch { await store.close(); throw error }
        await store.close()
    }

    @Test func connectionsRoundTripAndStayUnique() async throws { try await withStore(StoreConformance.connectionsRoundTripAndStayUnique) }
    @Test func virtualKeysRoundTripByIDAndHash() async throws { try await withStore(StoreConformance.virtualKeysRoundTripByIDAndHash) }
    @Test func connectionInUseIsRefusedUnlessForced() async throws { try await withStore(StoreConformance.connectionInUseIsRefusedUnlessForced) }
    @Test func everyChangeBumpsTheRevisionAndIsAudited() async throws { try await withStore(StoreConformance.everyChangeBumpsTheRevisionAndIsAudited) }
    @Test func usageBatchesAreIdempotentAndTotalled() async throws { try await withStore(StoreConformance.usageBatchesAreIdempotentAndTotalled) }
    @Test func sealedKeysOpenOnlyWithTheRightMasterKey() async throws { try await withStore(StoreConformance.sealedKeysOpenOnlyWithTheRightMasterKey) }
    @Test func resealingRotatesEveryConnection() async throws { try await withStore(StoreConformance.resealingRotatesEveryConnection) }
    @Test func migrateIsIdempotent() async throws { try await withStore(StoreConformance.migrateIsIdempotent) }

    @Test func nodesMigratingAtOnceDoNotRace() async throws {
        let url = try MongoTestServer.shared().makeDatabase()
        let stores = try (0..<6).map { _ in try StoreFactory.open(url: url, poolSize: 1) }
        try await withThrowingTaskGroup(of: Void.self) { g in
            for s in stores { g.addTask { try await s.migrate() } }
            try await g.waitForAll()
        }
        try await stores[0].createConnection(StoreConformance.makeConnection(), actor: .cli)
        #expect(try await stores[5].connections().count == 1)
        for s in stores { await s.close() }
    }

    @Test func unreachableServerIsUnavailable() async throws {
        let store = try StoreFactory.open(url: "mongodb://127.0.0.1:\(TestServers.freePort())/none?serverSelectionTimeoutMS=500")
        do {
            _ = try await store.connections()
            Issue.record("expected an error")
        } catch let e as StoreError {
            #expect(e.code == .unavailable)
            #expect(e.message.contains("MongoDB is unavailable"))
        }
        await store.close()
    }
}

/// Restarts need a server of their own: the shared one serves tests running at the same time.
@Suite struct MongoRestartTests {
    /// Nothing is retried by hand: the store must reconnect by itself.
    @Test func storeRecoversAfterServerRestart() async throws {
        let server = try MongoTestServer.dedicated()
        let store = try StoreFactory.open(url: server.makeDatabase(), poolSize: 2)
        try await store.migrate()
        let c = StoreConformance.makeConnection()
        try await store.createConnection(c, actor: .cli)
        try server.restart()
        #expect(try await store.connection(id: c.id) == c)
        #expect(try await store.connections().count == 1)
        await store.close()
    }
}
