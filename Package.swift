// swift-tools-version:6.1
import PackageDescription

/// One set of settings for every target: Swift 6 mode plus the upcoming features the
/// hummingbird project uses, so imports stay explicit and existentials are spelled `any`.
let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
    .enableUpcomingFeature("InternalImportsByDefault"),
]

/// llama.cpp as script/build-llama installs it: linked from .deps/llama/lib, found there at run
/// time through an RPATH (no LD_LIBRARY_PATH).
let llamaLibrary = Context.packageDirectory + "/.deps/llama/lib"

let package = Package(
    name: "pedigree",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "pedigree", targets: ["pedigree"]),
        .executable(name: "pedigree-fuzz", targets: ["PedigreeFuzz"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser.git", exact: "1.8.2"),
        .package(url: "https://github.com/apple/swift-configuration.git", exact: "1.4.0", traits: ["YAML"]),
        .package(url: "https://github.com/swift-server/async-http-client.git", exact: "1.37.0"),
        .package(url: "https://github.com/apple/swift-crypto.git", exact: "3.12.3"),
        .package(url: "https://github.com/apple/swift-certificates.git", exact: "1.21.1"),
        .package(url: "https://github.com/apple/swift-asn1.git", exact: "1.7.4"),
        .package(url: "https://github.com/apple/swift-collections.git", exact: "1.6.0"),
        .package(url: "https://github.com/apple/swift-http-types.git", exact: "1.8.0"),
        .package(url: "https://github.com/apple/swift-log.git", exact: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics.git", exact: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", exact: "2.4.1"),
        .package(url: "https://github.com/apple/swift-distributed-tracing.git", exact: "1.7.3"),
        // OTLP over HTTP only: the gRPC exporter's dependencies would double the build.
        .package(url: "https://github.com/swift-otel/swift-otel.git", exact: "1.6.0", traits: ["OTLPHTTP"]),
        .package(url: "https://github.com/apple/swift-nio.git", exact: "2.101.3"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", exact: "2.37.6"),
        .package(url: "https://github.com/GraphQLSwift/GraphQL.git", exact: "4.3.0"),
        .package(url: "https://github.com/groue/GRDB.swift.git", exact: "7.10.0"),
        .package(url: "https://github.com/vapor/postgres-nio.git", exact: "1.33.2"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", exact: "2.28.1"),
        .package(url: "https://github.com/hummingbird-project/hummingbird-websocket.git", exact: "2.8.1"),
        .package(url: "https://github.com/jpsim/Yams.git", exact: "6.2.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", exact: "2.13.0"),
    ],
    targets: [
        // C at the edge: exactly one Swift module (GitStore) imports this.
        .systemLibrary(
            name: "Clibgit2",
            pkgConfig: "libgit2",
            providers: [.apt(["libgit2-dev"])]
        ),
        .systemLibrary(name: "CLlama"),
        .target(
            name: "GitStore",
            dependencies: [
                "Clibgit2",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "DVCKit",
            dependencies: [
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Yams", package: "Yams"),
            ],
            swiftSettings: swiftSettings
        ),
        // API keys, roles and per-key quotas: the keys file (digests only) and who may do what.
        .target(
            name: "Access",
            dependencies: [.product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "Lineage",
            dependencies: [
                "GitStore",
                "DVCKit",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "ArtifactStore",
            dependencies: [
                .product(name: "Metrics", package: "swift-metrics"),
                "DVCKit",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        // The commit this binary was built from (script/build-info writes it before each build).
        .target(name: "CBuildInfo"),
        .target(
            name: "Inference",
            dependencies: [
                .product(name: "Tracing", package: "swift-distributed-tracing"),
                .product(name: "Metrics", package: "swift-metrics"),
                "CBuildInfo",
                "CLlama",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings,
            linkerSettings: [.unsafeFlags(["-L", llamaLibrary, "-Xlinker", "-rpath", "-Xlinker", llamaLibrary])]
        ),
        // Evaluation sets (JSONL items, bad lines by number) and scorers: what an evaluation
        // reads and computes, apart from how it runs.
        .target(name: "Evaluation", swiftSettings: swiftSettings),
        // Trust: the server's Ed25519 receipt key and DSSE envelopes (in-toto statements signed).
        .target(
            name: "Trust",
            dependencies: [
                .product(name: "Crypto", package: "swift-crypto"), .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
            ],
            swiftSettings: swiftSettings),
        // GraphQL documents measured before they run: depth, fields, cost, mutation roots.
        .target(
            name: "GraphQLLimits",
            dependencies: [
                .product(name: "GraphQL", package: "GraphQL"),
                .product(name: "OrderedCollections", package: "swift-collections"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "Ledger",
            dependencies: [
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        // The serving core: the services built once from the configuration, the request path
        // (resolve → fetch → load → generate → record), replay, and the lifecycle.
        .target(
            name: "Serving",
            dependencies: [
                .product(name: "OTel", package: "swift-otel"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                "Access",
                "ArtifactStore",
                "DVCKit",
                "Evaluation",
                "GitStore",
                "Inference",
                "Ledger",
                "Lineage",
                "Trust",
                .product(name: "Configuration", package: "swift-configuration"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Yams", package: "Yams"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
            ],
            swiftSettings: swiftSettings
        ),
        // The edges: GraphQL, OpenAI, HTTP, WebSocket, SSE. They only translate.
        .target(
            name: "API",
            dependencies: [
                .product(name: "Tracing", package: "swift-distributed-tracing"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                "Access",
                "ArtifactStore",
                "Evaluation",
                "GraphQLLimits",
                "Inference",
                "Ledger",
                "Lineage",
                "Serving",
                "Trust",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "GraphQL", package: "GraphQL"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdWebSocket", package: "hummingbird-websocket"),
                .product(name: "HummingbirdTLS", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "OrderedCollections", package: "swift-collections"),
            ],
            swiftSettings: swiftSettings
        ),
        // libFuzzer targets over every parser input reaches (script/fuzz); built without the
        // fuzzer it replays the committed corpora (script/test).
        .executableTarget(
            name: "PedigreeFuzz",
            dependencies: [
                "DVCKit", "GitStore", "GraphQLLimits", "Inference", "Lineage",
                .product(name: "GraphQL", package: "GraphQL"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "pedigree",
            dependencies: [
                "Access",
                "API",
                "ArtifactStore",
                "Evaluation",
                "GitStore",
                "Inference",
                "Ledger",
                "Lineage",
                "Serving",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "GraphQL", package: "GraphQL"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "TestSupport",
            dependencies: ["GitStore"],
            path: "Tests/TestSupport",
            swiftSettings: swiftSettings
        ),
        .testTarget(name: "GitStoreTests", dependencies: ["GitStore", "TestSupport"], swiftSettings: swiftSettings),
        .testTarget(name: "AccessTests", dependencies: ["Access"], swiftSettings: swiftSettings),
        .testTarget(name: "DVCKitTests", dependencies: ["DVCKit"], swiftSettings: swiftSettings),
        .testTarget(name: "InferenceTests", dependencies: ["Inference"], swiftSettings: swiftSettings),
        .testTarget(name: "EvaluationTests", dependencies: ["Evaluation"], swiftSettings: swiftSettings),
        .testTarget(name: "TrustTests", dependencies: ["Trust"], swiftSettings: swiftSettings),
        .testTarget(name: "LedgerTests", dependencies: ["Ledger"], swiftSettings: swiftSettings),
        .testTarget(
            name: "ServingTests", dependencies: ["Inference", "Ledger", "Serving", "Trust", .product(name: "Logging", package: "swift-log")],
            swiftSettings: swiftSettings),
        .testTarget(name: "ArtifactStoreTests", dependencies: ["ArtifactStore", "DVCKit"], swiftSettings: swiftSettings),
        .testTarget(name: "LineageTests", dependencies: ["Lineage", "GitStore", "DVCKit", "TestSupport"], swiftSettings: swiftSettings),
        .testTarget(
            name: "APITests",
            dependencies: [
                "Access", "API", "GraphQLLimits", "Lineage", "GitStore", "Serving", "TestSupport",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "GraphQL", package: "GraphQL"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "OrderedCollections", package: "swift-collections"),
            ],
            swiftSettings: swiftSettings
        ),
    ]
)
