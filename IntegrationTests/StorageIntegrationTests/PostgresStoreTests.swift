import Storage
import Testing
import TestSupport

/// What only a PostgreSQL server can do to the store (the shared contract is in StoreConformanceTests).
@Suite struct PostgresStoreTests {
    @Test func unreachableServerIsUnavailable() async throws {
        let store = try StoreFactory.open(url: "postgres://postgres@127.0.0.1:\(TestServers.freePort())/none")
        do {
            _ = try await store.connections()
            Issue.record("expected an error")
        } catch let e as StoreError {
            #expect(e.code == .unavailable)
            #expect(e.message.contains("cannot connect to PostgreSQL"))
        }
        await store.close()
    }
}

/// Restarts need a server of their own: the shared one serves tests running at the same time.
@Suite struct PostgresRestartTests {
    /// Nothing is retried by hand: the store must reconnect by itself.
    @Test func storeRecoversAfterServerRestart() async throws {
        let server = try PostgresTestServer.dedicated()
        let store = try StoreFactory.open(url: try server.makeDatabase(), poolSize: 2)
        try await store.migrate()
        let c = StoreConformance.makeConnection()
        try await store.createConnection(c, actor: .cli)
        try server.restart()
        #expect(try await store.connection(id: c.id) == c)
        #expect(try await store.connections().count == 1)
        await store.close()
    }
}
