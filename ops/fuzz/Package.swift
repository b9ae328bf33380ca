// swift-tools-version: 6.2
// libFuzzer targets for what reads untrusted input: the kensho/v1 decoder and validator, and the
// JUnit and Allure converters. Built only by `ops/fuzz.sh` (with `-sanitize=fuzzer,address`), never
// by the main package, whose builds have no fuzzer runtime to link.
import PackageDescription

let package = Package(
    name: "kaizen-fuzz",
    platforms: [.macOS(.v15)],
    dependencies: [.package(name: "kaizen", path: "../..")],
    targets: [
        .executableTarget(
            name: "KenshoFuzz",
            dependencies: [
                .product(name: "Domains", package: "kaizen"),
                .product(name: "KenshoConverters", package: "kaizen"),
            ],
            swiftSettings: [.unsafeFlags(["-parse-as-library"])]
        ),
    ]
)
