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
    ]
)
