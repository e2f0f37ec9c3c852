func MongoStore(url: String, poolSize: Int) throws -> any Store { throw StoreError(.unsupportedURL, "mongodb: coming") }
