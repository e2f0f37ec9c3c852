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
}
