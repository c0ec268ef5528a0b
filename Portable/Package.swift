// swift-tools-version: 6.1
import PackageDescription

/// The kernel tests against the portable (scalar) kernels every CPU runs: `scripts/test-portable` builds this package
/// with SPECULA_PORTABLE set, so the root package's manifest compiles SpeculaKernels without its vector kernels, and
/// only that library and its tests are built (a few seconds of debug compilation, not the whole package).
let package = Package(
    name: "SpeculaPortableKernels",
    dependencies: [.package(name: "Specula", path: "..")],
    targets: [
        .testTarget(
            name: "SpeculaKernelsTests", dependencies: [.product(name: "SpeculaKernels", package: "Specula")],
            path: "Tests/SpeculaKernelsTests", exclude: ["Fixtures"])
    ]
)
