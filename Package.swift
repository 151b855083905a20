// swift-tools-version:6.0
import PackageDescription

// Dependency arrows point one way:
// CKernels -> Kernels -> Model -> ClusterPlan -> (WireProtocol, CZeroMQ) -> Transport -> Runtime -> executables
let package = Package(
    name: "Shoal",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "shoal-coordinator", targets: ["shoal-coordinator"]),
        .executable(name: "shoal-worker", targets: ["shoal-worker"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-protobuf", from: "1.28.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "5.0.0"),
    ],
    targets: [
        // Hot loops in C with SIMD paths chosen at run time (AVX-512 / AVX2+FMA / NEON / portable).
        .target(
            name: "CKernels",
            cSettings: [.unsafeFlags(["-O3", "-fno-math-errno", "-ffp-contract=fast"])],
            linkerSettings: [.linkedLibrary("pthread"), .linkedLibrary("m")]
        ),
        .target(name: "Kernels", dependencies: ["CKernels"]),
        .target(name: "Tokenizer"),
        .target(name: "Model", dependencies: ["Kernels", "Tokenizer"]),
        .target(name: "ClusterPlan", dependencies: ["Model"]),
        .target(
            name: "WireProtocol",
            dependencies: [.product(name: "SwiftProtobuf", package: "swift-protobuf")]
        ),
        .systemLibrary(
            name: "CZeroMQ",
            pkgConfig: "libzmq",
            providers: [.apt(["libzmq3-dev"])]
        ),
        .target(
            name: "Transport",
            dependencies: ["CZeroMQ", "WireProtocol", .product(name: "Logging", package: "swift-log")]
        ),
        .target(
            name: "Runtime",
            dependencies: [
                "Model", "ClusterPlan", "Transport", "WireProtocol",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Yams", package: "Yams"),
            ]
        ),
        .executableTarget(
            name: "shoal-coordinator",
            dependencies: [
                "Runtime", "Transport", "ClusterPlan", "Model", "Tokenizer",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .executableTarget(
            name: "shoal-worker",
            dependencies: [
                "Runtime", "Transport",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .testTarget(name: "KernelsTests", dependencies: ["Kernels", "CKernels", "Tokenizer"]),
        .testTarget(name: "TokenizerTests", dependencies: ["Tokenizer"]),
        .testTarget(name: "ModelTests", dependencies: ["Model"]),
        .testTarget(name: "TransportTests", dependencies: ["Transport", "WireProtocol"], exclude: ["CInterop"]),
        .testTarget(name: "ClusterPlanTests", dependencies: ["ClusterPlan", "Model"]),
        .target(name: "TestSupport", path: "Tests/TestSupport"),
        .testTarget(name: "RuntimeTests", dependencies: ["Runtime", "TestSupport"]),
        // Cluster/, Scripts/ (compose file, netns cluster, launcher) exercised for real.
        .testTarget(name: "OpsTests", dependencies: ["Runtime", "TestSupport", .product(name: "Yams", package: "Yams")]),
    ]
)
