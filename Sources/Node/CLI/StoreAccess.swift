import Storage

/// Options and start-up shared by every command that works on the store.
enum StoreAccess {
    static let databaseURL = OptionSpec("database-url", value: "url", env: "LLM_PROXY_DATABASE_URL", default: "sqlite:./data/llm-proxy.db",
                                        help: "Store: sqlite:PATH, postgres://… or mongodb://…")

    /// An open, migrated store and the secret box for its master key.
    struct Opened: Sendable {
        var store: any Store
        var box: SecretBox
        var keySource: MasterKeySource
    }

    /// Opens the store the options name, brings its schema up to date and checks the master key.
    static func open(_ p: ParsedCommand, poolSize: Int = 4) async throws -> Opened {
        let url = try p.required("database-url")
        let (key, source) = try MasterKeyResolver.resolve(databaseURL: url, environmentKey: p.environment["LLM_PROXY_MASTER_KEY"])
        let box = try SecretBox(masterKey: key)
        let store = try StoreFactory.open(url: url, poolSize: poolSize)
        do {
            try await store.migrate()
            try await MasterKeyResolver.verify(box, store: store)
        } catch {
            await store.close()
            throw error
        }
        return Opened(store: store, box: box, keySource: source)
    }

    static func describe(_ source: MasterKeySource) -> String {
        switch source {
        case .environment: "LLM_PROXY_MASTER_KEY"
        case .file(let path): "key file \(path)"
        case .generated(let path): "new key file \(path) (generated now: back it up; without it stored provider keys cannot be read)"
        }
    }
}

/// `llm-proxy migrate` and `llm-proxy rotate-master-key`.
enum StoreCommands {
    static let migrate = CommandSpec(
        name: "migrate",
        summary: "Create or upgrade the store's schema (serve does this too).",
        run: { p in
            let opened = try await StoreAccess.open(p, poolSize: 1)
            let revision = try await opened.store.revision()
            await opened.store.close()
            print("\(opened.store.backend) store is up to date (revision \(revision)); master key from \(StoreAccess.describe(opened.keySource))")
            return 0
        })

    static let rotateMasterKey = CommandSpec(
        name: "rotate-master-key",
        summary: "Re-encrypt every stored provider key under a new master key.",
        discussion: "Reads the current key as usual (LLM_PROXY_MASTER_KEY or the SQLite key file) and the new one from\nLLM_PROXY_NEW_MASTER_KEY. All connections are re-encrypted in one transaction; then start the nodes with the new key.\nWith a SQLite key file, the file is replaced by the new key.",
        run: { p in
            guard let newKey = p.environment["LLM_PROXY_NEW_MASTER_KEY"], !newKey.isEmpty else {
                throw UsageError("set LLM_PROXY_NEW_MASTER_KEY to the new master key", commandPath: p.path)
            }
            let opened = try await StoreAccess.open(p, poolSize: 1)
            let newBox = try SecretBox(masterKey: newKey)
            let oldBox = opened.box
            let count: Int
            do {
                count = try await opened.store.resealConnections({ id, sealed in
                    newBox.seal(try oldBox.open(sealed, context: id), context: id)
                }, verifier: newBox.makeVerifier(), actor: .cli)
            } catch {
                await opened.store.close()
                throw error
            }
            await opened.store.close()
            if case .file(let path) = opened.keySource {
                try replaceKeyFile(path, newKey)
            } else if case .generated(let path) = opened.keySource {
                try replaceKeyFile(path, newKey)
            }
            print("re-encrypted \(count) connection(s); start every node with the new master key")
            return 0
        })

    private static func replaceKeyFile(_ path: String, _ key: String) throws {
        let tmp = path + ".new"
        _ = unlinkIfExists(tmp)
        try writeNewPrivateFile(tmp, key + "\n")
        try renameFile(tmp, path)
    }
}
