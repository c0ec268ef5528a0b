// swift-tools-version: 6.1
import Foundation
import PackageDescription

/// Vector kernels: a Swift package is built on the machine that runs it, so the kernels use that machine's CPU. This
/// is the one place the choice is made: AVX-512 VNNI kernels when /proc/cpuinfo lists the features (and
/// SPECULA_PORTABLE is not set), AVX2 kernels when it lists AVX2, FMA and F16C, the portable scalar kernels
/// otherwise. The model target gets the same flags: the
/// SIMD code it runs (attention, norms, and the inlined `Ops`) is compiled for the vector width they enable.
let cpuFlags =
    (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8))?.split(separator: "\n")
    .first { $0.hasPrefix("flags") }.map { Set($0.split(separator: " ").map(String.init)) } ?? []
/// `SPECULA_KERNELS=avx2` or `=portable` builds a set below the host's best, so that one host can test the others'
/// kernels (`scripts/test-portable`); `SPECULA_PORTABLE` is the older spelling of `=portable`.
let forcedKernels = ProcessInfo.processInfo.environment["SPECULA_KERNELS"]
if let forcedKernels, !["avx2", "portable"].contains(forcedKernels) {
    fatalError("SPECULA_KERNELS is '\(forcedKernels)'; it takes avx2 or portable (unset: the host's best kernels)")
}
let portableOnly = ProcessInfo.processInfo.environment["SPECULA_PORTABLE"] != nil || forcedKernels == "portable"
let vectorKernels =
    !portableOnly && forcedKernels == nil
    && ["avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx2", "fma"].allSatisfy { cpuFlags.contains($0) }
/// Hosts without AVX-512 VNNI but with AVX2, FMA and F16C get the AVX2 kernels (`SPECULA_AVX2`).
let avx2Kernels =
    !vectorKernels && !portableOnly && ["avx2", "fma", "f16c"].allSatisfy { cpuFlags.contains($0) }
let kernelSettings: [SwiftSetting] =
    avx2Kernels
    ? [.define("SPECULA_AVX2"), .unsafeFlags(["-Xcc", "-mavx2", "-Xcc", "-mfma", "-Xcc", "-mf16c"])]
    : vectorKernels
        ? [
            .define("SPECULA_AVX512"),
            .unsafeFlags([
                "-Xcc", "-mavx2", "-Xcc", "-mfma", "-Xcc", "-mf16c", "-Xcc", "-mavx512f", "-Xcc", "-mavx512bw",
                "-Xcc", "-mavx512vl", "-Xcc", "-mavx512vnni",
            ]),
        ] : []

let package = Package(
    name: "Specula",
    products: [
        .library(name: "SpeculaVerify", targets: ["SpeculaVerify"]),
        .library(name: "SpeculaTheory", targets: ["SpeculaTheory"]),
        .library(name: "SpeculaKernels", targets: ["SpeculaKernels"]),
        .library(name: "SpeculaModels", targets: ["SpeculaModels"]),
        .library(name: "SpeculaEngine", targets: ["SpeculaEngine"]),
        .library(name: "SpeculaBench", targets: ["SpeculaBench"]),
        .library(name: "SpeculaServer", targets: ["SpeculaServer"]),
        .executable(name: "specula", targets: ["specula"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
    ],
    targets: [
        // Probability vectors, logit processors, draft laws, verifiers, draft trees. No tensors, no files.
        .target(name: "SpeculaVerify"),
        // Exact acceptance of each verifier, the optimal acceptance α*, Monte-Carlo estimators.
        .target(name: "SpeculaTheory", dependencies: ["SpeculaVerify"]),
        // CPU compute on buffers: tensor types, scalar reference dequantization (fast kernels come with inference).
        .target(name: "SpeculaKernels", dependencies: ["CSpeculaSystem"], swiftSettings: kernelSettings),
        // What Swift cannot reach in C: a cache prefetch hint for the kernels, glibc heap settings for the CLI.
        .target(name: "CSpeculaSystem"),
        // Model files: GGUF (memory-mapped), tokenizers, chat templates.
        .target(
            name: "SpeculaModels", dependencies: ["SpeculaKernels", "CSpeculaSystem"], swiftSettings: kernelSettings),
        // The speculative engine: drafting, the round, commit and rollback, telemetry.
        .target(
            name: "SpeculaEngine", dependencies: ["SpeculaVerify", "SpeculaTheory", "SpeculaModels", "SpeculaKernels"]),
        // Benchmark harness: prompt sets, resumable JSON-lines results, clustered means, Markdown tables, SVG charts,
        // and the run of a benchmark over models (BenchRun: datasets, models, decodings through the engine, records).
        .target(
            name: "SpeculaBench",
            dependencies: ["SpeculaTheory", "SpeculaEngine", "SpeculaModels", "SpeculaVerify"]),
        // The OpenAI-compatible HTTP server: request parsing and validation, the generation queue, streaming,
        // metrics (on Hummingbird).
        .target(
            name: "SpeculaServer",
            dependencies: [
                "SpeculaEngine", "SpeculaModels", "SpeculaVerify", "SpeculaTheory",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]),
        // The command-line tool: parse, validate, call the libraries, print.
        .executableTarget(
            name: "specula",
            dependencies: [
                "SpeculaVerify", "SpeculaTheory", "SpeculaKernels", "SpeculaModels", "SpeculaEngine", "CSpeculaSystem",
                "SpeculaBench", "SpeculaServer",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // Counts heap allocations per thread (interposes malloc in the test executable only).
        .target(name: "CAllocationCounter", path: "Tests/CAllocationCounter"),
        .testTarget(
            name: "SpeculaVerifyTests", dependencies: ["SpeculaVerify", "SpeculaTheory", "CAllocationCounter"]),
        // Runs the built `specula` binary: output formats, exit codes, one-line errors.
        // Where the tests find the pinned models (shared by the model-dependent suites).
        .target(name: "SpeculaTestSupport", path: "Tests/SpeculaTestSupport"),
        .testTarget(name: "SpeculaCLITests", dependencies: ["specula", "SpeculaTestSupport"]),
        .testTarget(
            name: "SpeculaModelsTests", dependencies: ["SpeculaModels", "SpeculaKernels", "SpeculaTestSupport"],
            exclude: ["Fixtures"]),
        .testTarget(
            name: "SpeculaInferenceTests", dependencies: ["SpeculaModels", "SpeculaKernels", "SpeculaTestSupport"],
            exclude: ["Fixtures"]),
        .testTarget(
            name: "SpeculaEngineTests",
            dependencies: ["SpeculaEngine", "SpeculaModels", "SpeculaVerify", "SpeculaTestSupport"]),
        .testTarget(
            name: "SpeculaBenchTests",
            dependencies: ["SpeculaBench", "SpeculaEngine", "SpeculaTheory", "SpeculaTestSupport"]),
        .testTarget(
            name: "SpeculaServerTests",
            dependencies: [
                "SpeculaServer", "SpeculaEngine", "SpeculaModels", "SpeculaTestSupport",
                .product(name: "HummingbirdTesting", package: "hummingbird"),
            ]),
        .testTarget(name: "SpeculaKernelsTests", dependencies: ["SpeculaKernels"], exclude: ["Fixtures"]),
        .testTarget(
            name: "SpeculaTheoryTests", dependencies: ["SpeculaVerify", "SpeculaTheory"], exclude: ["Fixtures"]),
    ],
    swiftLanguageModes: [.v6]
)

/// The fuzz targets (`Fuzz/`), only when `SPECULA_FUZZ` is set: `scripts/fuzz` builds them with
/// `-sanitize=fuzzer,address` in a build directory of their own. Without libFuzzer the binary cannot link.
if ProcessInfo.processInfo.environment["SPECULA_FUZZ"] != nil {
    package.targets += [
        .target(name: "CSpeculaFuzz", path: "Fuzz/CSpeculaFuzz"),
        .executableTarget(
            name: "specula-fuzz",
            dependencies: [
                "CSpeculaFuzz", "SpeculaVerify", "SpeculaTheory", "SpeculaModels", "SpeculaEngine", "SpeculaServer",
            ],
            path: "Fuzz/specula-fuzz"),
    ]
    package.products.append(.executable(name: "specula-fuzz", targets: ["specula-fuzz"]))
}
