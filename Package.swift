// swift-tools-version:6.0
// llm-proxy: a distributed LLM gateway. No package dependencies: the toolchain and Debian C libraries only.
import PackageDescription

let package = Package(
    name: "llm-proxy",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "llm-proxy", targets: ["LLMProxy"]),
        .executable(name: "mock-provider", targets: ["MockProvider"]),
        .executable(name: "http-parser-fuzzer", targets: ["HTTPParserFuzzer"]),
        .executable(name: "store-bench", targets: ["StoreBench"]),
        .executable(name: "proxy-parsers-fuzzer", targets: ["ProxyParsersFuzzer"]),
        .executable(name: "redis-bench", targets: ["RedisBench"]),
        .executable(name: "parsers-bench", targets: ["ParsersBench"]),
    ],
    targets: [
        // C modules: headers only, one folder each.
        .systemLibrary(name: "CLinux", path: "Sources/CLinux"),
        .systemLibrary(name: "CSQLite", path: "Sources/CSQLite", pkgConfig: "sqlite3", providers: [.apt(["libsqlite3-dev"])]),
        .systemLibrary(name: "CPostgres", path: "Sources/CPostgres", pkgConfig: "libpq", providers: [.apt(["libpq-dev"])]),
        .systemLibrary(name: "CMongo", path: "Sources/CMongo", pkgConfig: "libmongoc-1.0", providers: [.apt(["libmongoc-dev"])]),
        .systemLibrary(name: "CCurl", path: "Sources/CCurl", pkgConfig: "libcurl", providers: [.apt(["libcurl4-openssl-dev"])]),
        // hiredis: no pkgConfig (its .pc adds a flag SwiftPM refuses); the headers need no include path.
        .systemLibrary(name: "CHiredis", path: "Sources/CHiredis", providers: [.apt(["libhiredis-dev"])]),
        .systemLibrary(name: "CCrypto", path: "Sources/CCrypto", pkgConfig: "libcrypto", providers: [.apt(["libssl-dev"])]),

        // The product.
        .target(
            name: "Node",
            dependencies: ["CLinux", "CCurl", "Storage", "RedisClient"],
            path: "Sources/Node",
            exclude: ["Main"],
            // Release builds drop the runtime exclusivity checks (a thread-local lookup at each access to a
            // class's stored property: ~48 per proxied request); debug builds, which the tests run, keep
            // them, so an overlapping access still traps there. (An option of the root package only:
            // SwiftPM refuses unsafe flags in a dependency, and nothing depends on this package.)
            swiftSettings: [.unsafeFlags(["-enforce-exclusivity=unchecked"], .when(configuration: .release))]
        ),
        .executableTarget(name: "LLMProxy", dependencies: ["Node"], path: "Sources/Node/Main"),
        .target(name: "RedisClient", dependencies: ["CHiredis", "CCrypto"], path: "Sources/RedisClient"),
        .target(name: "Storage", dependencies: ["CSQLite", "CPostgres", "CMongo", "CCrypto"], path: "Sources/Storage"),

        // Test support, tools and fuzzers.
        .target(name: "TestSupport", dependencies: ["Node", "Storage"], path: "Tests/TestSupport"),
        .executableTarget(name: "MockProvider", dependencies: ["Node", "Storage"], path: "Tests/MockProvider"),
        .executableTarget(name: "StoreBench", dependencies: ["Storage", "TestSupport"], path: "Tests/StoreBench"),
        .executableTarget(name: "RedisBench", dependencies: ["RedisClient", "Node"], path: "Tests/RedisBench"),
        .executableTarget(name: "ParsersBench", dependencies: ["Node"], path: "Tests/ParsersBench"),
        .executableTarget(name: "ProxyParsersFuzzer", dependencies: ["Node"], path: "Tests/Fuzz/ProxyParsersFuzzer"),
        .executableTarget(name: "HTTPParserFuzzer", dependencies: ["Node"], path: "Tests/Fuzz/HTTPParserFuzzer"),

        // Tests mirror the module they prove.
        .testTarget(name: "NodeTests", dependencies: ["Node", "TestSupport"], path: "Tests/NodeTests"),
        .testTarget(name: "RedisClientTests", dependencies: ["RedisClient", "Node", "TestSupport"], path: "Tests/RedisClientTests"),
        .testTarget(
            name: "RedisClientIntegrationTests",
            dependencies: ["RedisClient", "Node", "TestSupport"],
            path: "IntegrationTests/RedisClientIntegrationTests"
        ),
        .testTarget(name: "StorageTests", dependencies: ["Storage", "TestSupport"], path: "Tests/StorageTests"),
        .testTarget(
            name: "StorageIntegrationTests",
            dependencies: ["Storage", "TestSupport"],
            path: "IntegrationTests/StorageIntegrationTests"
        ),
        .testTarget(
            name: "NodeIntegrationTests",
            dependencies: ["Node", "TestSupport"],
            path: "IntegrationTests/NodeIntegrationTests"
        ),
    ]
)
