import Glibc
import Storage
import Testing
import TestSupport

/// Store set-up that needs no server (the shared contract runs in StoreConformanceTests, SQLite included).
@Suite struct StoreFactoryTests {
    @Test func unsupportedURLIsAClearError() {
        #expect(throws: StoreError.self) { try StoreFactory.open(url: "mysql://localhost/x") }
        #expect(redactURL("postgres://user:secret@host:5432/db") == "postgres://user:***@host:5432/db")
    }
}
