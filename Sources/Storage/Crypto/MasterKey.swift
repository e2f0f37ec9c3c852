import Glibc

public enum MasterKeyVerifier {
    public static let settingKey = "master_key_verifier"
}

/// Where the master key came from, for the one start-up log line (never the key itself).
public enum MasterKeySource: Sendable, Equatable {
    case environment
    case file(String)
    case generated(String)
}

/// Finds the master key: `LLM_PROXY_MASTER_KEY`, else (embedded SQLite only) a 0600 key file beside the
/// database, generated on first start. A shared store needs the key from the environment on every node.
public enum MasterKeyResolver {
    public static func resolve(databaseURL: String, environmentKey: String?) throws -> (String, MasterKeySource) {
        if let k = environmentKey, !k.isEmpty { return (k, .environment) }
        guard databaseURL.hasPrefix("sqlite:") else {
            throw StoreError(.invalid, "LLM_PROXY_MASTER_KEY must be set for a shared store (\(redactURL(databaseURL))): every node needs the same key")
        }
        let path = keyFilePath(databaseURL: databaseURL)
        if let text = try readSmallFile(path) {
            let key = text.trimmingCharacters(in: " \n\r\t")
            guard !key.isEmpty else { throw StoreError(.invalid, "master key file \(path) is empty") }
            return (key, .file(path))
        }
        let key = SecretBox.generateMasterKey()
        try writeNewPrivateFile(path, key + "\n")
        return (key, .generated(path))
    }

    /// `sqlite:./data/llm-proxy.db` → `./data/llm-proxy.db.master-key`.
    public static func keyFilePath(databaseURL: String) -> String {
        var path = String(databaseURL.dropFirst("sqlite:".count))
        if path.hasPrefix("//") { path = String(path.dropFirst(2)) }
        return path + ".master-key"
    }

    /// Opens the store's verifier with this key, setting it up on first use. A wrong key is a clear error.
    public static func verify(_ box: SecretBox, store: any Store) async throws {
        let verifier = try await store.initSetting(MasterKeyVerifier.settingKey, value: box.makeVerifier())
        try box.check(verifier: verifier)
    }
}

extension String {
    func trimmingCharacters(in set: String) -> String {
        var s = Substring(self)
        while let f = s.first, set.contains(f) { s = s.dropFirst() }
        while let l = s.last, set.contains(l) { s = s.dropLast() }
        return String(s)
    }
}
