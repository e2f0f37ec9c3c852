func PostgresStore(url: String, poolSize: Int) throws -> any Store { throw StoreError(.unsupportedURL, "postgres: coming") }
