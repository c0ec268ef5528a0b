// swift-tools-version: 6.1
import PackageDescription

let package = Package(
    name: "Specula",
    products: [
        .library(name: "SpeculaVerify", targets: ["SpeculaVerify"]),
        .library(name: "SpeculaTheory", targets: ["SpeculaTheory"]),
        .library(name: "SpeculaKernels", targets: ["SpeculaKernels"]),
        .library(name: "SpeculaModels", targets: ["SpeculaModels"]),
        .executable(name: "specula", targets: ["specula"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0")
    ],
    targets: [
        // Probability vectors, logit processors, draft laws, verifiers, draft trees. No tensors, no files.
        .target(name: "SpeculaVerify"),
        // Exact acceptance of each verifier, the optimal acceptance α*, Monte-Carlo estimators.
        .target(name: "SpeculaTheory", dependencies: ["SpeculaVerify"]),
        // CPU compute on buffers: tensor types, scalar reference dequantization (fast kernels come with inference).
        .target(name: "SpeculaKernels"),
        // Model files: GGUF (memory-mapped), tokenizers, chat templates.
        .target(name: "SpeculaModels", dependencies: ["SpeculaKernels"]),
        // The command-line tool: parse, validate, call the libraries, print.
        .executableTarget(
            name: "specula",
            dependencies: [
                "SpeculaVerify", "SpeculaTheory", "SpeculaKernels", "SpeculaModels",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        // Counts heap allocations per thread (interposes malloc in the test executable only).
        .target(name: "CAllocationCounter", path: "Tests/CAllocationCounter"),
        .testTarget(
            name: "SpeculaVerifyTests", dependencies: ["SpeculaVerify", "SpeculaTheory", "CAllocationCounter"]),
        // Runs the built `specula` binary: output formats, exit codes, one-line errors.
        .testTarget(name: "SpeculaCLITests", dependencies: ["specula"]),
        .testTarget(
            name: "SpeculaModelsTests", dependencies: ["SpeculaModels", "SpeculaKernels"], exclude: ["Fixtures"]),
        .testTarget(name: "SpeculaKernelsTests", dependencies: ["SpeculaKernels"], exclude: ["Fixtures"]),
        .testTarget(
            name: "SpeculaTheoryTests", dependencies: ["SpeculaVerify", "SpeculaTheory"], exclude: ["Fixtures"]),
    ],
    swiftLanguageModes: [.v6]
)
