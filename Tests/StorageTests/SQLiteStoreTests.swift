import Glibc
import Storage
import Testing
import TestSupport

/// The store conformance suite on the embedded SQLite backend (a real file per test).
@Suite struct SQLiteStoreTests {
    func withStore(_ body: (any Store) async throws -> Void) async throws {
        let dir = "/tmp/llmp-sqlite-\(Identifiers.make("t"))"
        let store = try StoreFactory.open(url: "sqlite:\(dir)/db.sqlite")
        try await store.migrate()
        do { try await body(store) } catch { await store.close(); throw error }
        await store.close()
        _ = system("rm -rf \(dir)")
    }

    @Test func connectionsRoundTripAndStayUnique() async throws { try await withStore(StoreConformance.connectionsRoundTripAndStayUnique) }
    @Test func virtualKeysRoundTripByIDAndHash() async throws { try await withStore(StoreConformance.virtualKeysRoundTripByIDAndHash) }
    @Test func connectionInUseIsRefusedUnlessForced() async throws { try await withStore(StoreConformance.connectionInUseIsRefusedUnlessForced) }
    @Test func everyChangeBumpsTheRevisionAndIsAudited() async throws { try await withStore(StoreConformance.everyChangeBumpsTheRevisionAndIsAudited) }
    @Test func usageBatchesAreIdempotentAndTotalled() async throws { try await withStore(StoreConformance.usageBatchesAreIdempotentAndTotalled) }
    @Test func sealedKeysOpenOnlyWithTheRightMasterKey() async throws { try await withStore(StoreConformance.sealedKeysOpenOnlyWithTheRightMasterKey) }
    @Test func resealingRotatesEveryConnection() async throws { try await withStore(StoreConformance.resealingRotatesEveryConnection) }
    @Test func migrateIsIdempotent() async throws { try await withStore(StoreConformance.migrateIsIdempotent) }

    @Test func unsupportedURLIsAClearError() {
        #expect(throws: StoreError.self) { try StoreFactory.open(url: "mysql://localhost/x") }
        #expect(redactURL("postgres://user:secret@host:5432/db") == "postgres://user:***@host:5432/db")
    }
}
