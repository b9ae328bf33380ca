// swift-tools-version: 6.2
// Micro-benchmarks, kept in their own package so the server's build and tests do not pay for
// package-benchmark. Run from the repository root:
//   swift package --package-path Benchmarks benchmark
import PackageDescription

let package = Package(
    name: "KaizenBenchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "kaizen", path: ".."),
        .package(url: "https://github.com/ordo-one/benchmark.git", from: "1.38.0", traits: ["MallocInterposer"]),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.0"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.0"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.0"),
        .package(url: "https://github.com/apple/swift-crypto.git", "3.12.0"..<"5.0.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.0"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift.git", from: "0.1.0"),
    ],
    targets: [
        .executableTarget(
            name: "GatewayLimits",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "Gateway", package: "kaizen"),
                .product(name: "Domains", package: "kaizen"),
            ],
            path: "Benchmarks/GatewayLimits",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
        .executableTarget(
            name: "Ingest",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "Domains", package: "kaizen"),
            ],
            path: "Benchmarks/Ingest",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
        .executableTarget(
            name: "GatewayPath",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "Gateway", package: "kaizen"),
                .product(name: "Storage", package: "kaizen"),
                .product(name: "Tenancy", package: "kaizen"),
                .product(name: "Domains", package: "kaizen"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            path: "Benchmarks/GatewayPath",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
        // End to end: a 10,000-case finalize over HTTP against raw COPY of the same rows, same server, same run.
        //   swift run --package-path Benchmarks -c release IngestEndToEnd [cases]
        .executableTarget(
            name: "IngestEndToEnd",
            dependencies: [
                .product(name: "KaizenServer", package: "kaizen"),
                .product(name: "Storage", package: "kaizen"),
                .product(name: "Domains", package: "kaizen"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Sources/IngestEndToEnd"
        ),
        // The load harness. Its source lives in ops/load (Sources/LoadHarness is a link to it) and is
        // built here to share this package's release build. From the repository root:
        //   swift run --package-path Benchmarks -c release kaizen-load [all|ingest|reads|limits|tenants]
        .executableTarget(
            name: "kaizen-load",
            dependencies: [
                .product(name: "KaizenServer", package: "kaizen"),
                .product(name: "Storage", package: "kaizen"),
                .product(name: "Domains", package: "kaizen"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdHTTP2", package: "hummingbird"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
            ],
            path: "Sources/LoadHarness"
        ),
    ]
)
