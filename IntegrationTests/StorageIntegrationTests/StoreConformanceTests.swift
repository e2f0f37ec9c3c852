import Glibc
import Storage
import Testing
import TestSupport

/// The store contract (`StoreConformance`), run on every backend against a real server: a SQLite file,
/// a throwaway PostgreSQL 15, and SecantusDB speaking the MongoDB protocol. Each test gets a fresh database.
@Suite struct StoreConformanceTests {
    enum Backend: String, CaseIterable, Sendable {
        case sqlite, postgres, mongodb

        func freshURL() throws -> String {
            switch self {
            case .sqlite: TestServers.tempSQLiteURL()
            case .postgres: try PostgresTestServer.shared().makeDatabase()
            case .mongodb: try MongoTestServer.shared().makeDatabase()
            }
        }
    }

    /// A URL where nothing listens, and what the error should say.
    static func unreachable(_ b: Backend) -> (url: String, message: String) {
        switch b {
        case .postgres: ("postgres://postgres@127.0.0.1:\(TestServers.freePort())/none", "cannot connect to PostgreSQL")
        default: ("mongodb://127.0.0.1:\(TestServers.freePort())/none?serverSelectionTimeoutMS=500", "MongoDB is unavailable")
        }
    }

    func withStore(_ backend: Backend, _ body: (any Store) async throws -> Void) async throws {
        let store = try StoreFactory.open(url: try backend.freshURL())
        try await store.migrate()
        do { try await body(store) } catch { await store.close(); throw error }
        await store.close()
    }

    @Test(arguments: Backend.allCases) func connectionsRoundTripAndStayUnique(_ b: Backend) async throws {
        try await withStore(b, StoreConformance.connectionsRoundTripAndStayUnique)
    }
    @Test(arguments: Backend.allCases) func virtualKeysRoundTripByIDAndHash(_ b: Backend) async throws {
        try await withStore(b, StoreConformance.virtualKeysRoundTripByIDAndHash)
    }
    @Test(arguments: Backend.allCases) func connectionInUseIsRefusedUnlessForced(_ b: Backend) async throws {
        try await withStore(b, StoreConformance.connectionInUseIsRefusedUnlessForced)
    }
    @Test(arguments: Backend.allCases) func everyChangeBumpsTheRevisionAndIsAudited(_ b: Backend) async throws {
        try await withStore(b, StoreConformance.everyChangeBumpsTheRevisionAndIsAudited)
    }
    @Test(arguments: Backend.allCases) func usageBatchesAreIdempotentAndTotalled(_ b: Backend) async throws {
        try await withStore(b, StoreConformance.usageBatchesAreIdempotentAndTotalled)
    }
    @Test(arguments: Backend.allCases) func usageIsPrunedOldestFirstInShortBatches(_ b: Backend) async throws {
        try await withStore(b, StoreConformance.usageIsPrunedOldestFirstInShortBatches)
    }
    @Test(arguments: Backend.allCases) func usagePagesListEveryRecordOnceInOrder(_ b: Backend) async throws {
        try await withStore(b, StoreConformance.usagePagesListEveryRecordOnceInOrder)
    }
    @Test(arguments: Backend.allCases) func usageTotalsMatchTheRecordsInAnyWindow(_ b: Backend) async throws {
        try await withStore(b, StoreConformance.usageTotalsMatchTheRecordsInAnyWindow)
    }
    @Test(arguments: Backend.allCases) func sealedKeysOpenOnlyWithTheRightMasterKey(_ b: Backend) async throws {
        try await withStore(b, StoreConformance.sealedKeysOpenOnlyWithTheRightMasterKey)
    }
    @Test(arguments: Backend.allCases) func resealingRotatesEveryConnection(_ b: Backend) async throws {
        try await withStore(b, StoreConformance.resealingRotatesEveryConnection)
    }
    @Test(arguments: Backend.allCases) func migrateIsIdempotent(_ b: Backend) async throws {
        try await withStore(b, StoreConformance.migrateIsIdempotent)
    }

    /// Several nodes starting at once against one shared database must not race on the schema.
    @Test(arguments: [Backend.postgres, .mongodb]) func nodesMigratingAtOnceDoNotRace(_ b: Backend) async throws {
        let url = try b.freshURL()
        let stores = try (0..<6).map { _ in try StoreFactory.open(url: url, poolSize: 1) }
        try await withThrowingTaskGroup(of: Void.self) { g in
            for s in stores { g.addTask { try await s.migrate() } }
            try await g.waitForAll()
        }
        try await stores[0].createConnection(StoreConformance.makeConnection(), actor: .cli)
        #expect(try await stores[5].connections().count == 1)
        for s in stores { await s.close() }
    }

    @Test(arguments: [Backend.postgres, .mongodb]) func unreachableServerIsUnavailable(_ b: Backend) async throws {
        let (url, message) = Self.unreachable(b)
        let store = try StoreFactory.open(url: url)
        do {
            _ = try await store.connections()
            Issue.record("expected an error")
        } catch let e as StoreError {
            #expect(e.code == .unavailable)
            #expect(e.message.contains(message), "\(e.message)")
        }
        await store.close()
    }

    /// Restarts need a server of their own: the shared one serves tests running at the same time. Nothing
    /// is retried by hand: the store must reconnect by itself.
    @Test(arguments: [Backend.postgres, .mongodb]) func storeRecoversAfterServerRestart(_ b: Backend) async throws {
        let url: String
        let restart: () throws -> Void
        if b == .postgres {
            let server = try PostgresTestServer.dedicated()
            url = try server.makeDatabase()
            restart = server.restart
        } else {
            let server = try MongoTestServer.dedicated()
            url = server.makeDatabase()
            restart = server.restart
        }
        let store = try StoreFactory.open(url: url, poolSize: 2)
        try await store.migrate()
        let c = StoreConformance.makeConnection()
        try await store.createConnection(c, actor: .cli)
        try restart()
        #expect(try await store.connection(id: c.id) == c)
        #expect(try await store.connections().count == 1)
        await store.close()
    }
}
