// swift-tools-version: 6.1
import PackageDescription

/// The kernel tests against the kernel sets a host would not pick for itself: `scripts/test-portable` builds this
/// package with SPECULA_KERNELS=portable (the scalar kernels every CPU runs) and, on a host with AVX2, again with
/// SPECULA_KERNELS=avx2, so the root package's manifest compiles SpeculaKernels with that set, and only that library
/// and its tests are built (a few seconds of debug compilation each, not the whole package).
let package = Package(
    name: "SpeculaPortableKernels",
    dependencies: [.package(name: "Specula", path: "..")],
    targets: [
        .testTarget(
            name: "SpeculaKernelsTests", dependencies: [.product(name: "SpeculaKernels", package: "Specula")],
            path: "Tests/SpeculaKernelsTests", exclude: ["Fixtures"])
    ]
)
