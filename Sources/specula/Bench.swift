import ArgumentParser
import Foundation
import SpeculaEngine
import SpeculaKernels
import SpeculaModels
import SpeculaTheory
import SpeculaVerify

/// `specula bench`: benchmark commands. Release builds only give meaningful numbers.
struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Benchmarks (build with -c release).",
        subcommands: [
            BenchVerify.self, BenchTokenizer.self, BenchModel.self, BenchKernels.self, BenchSpeed.self, BenchTrees.self,
            BenchBlock.self, BenchAll.self,
            BenchAcceptance.self, BenchLone.self, BenchBatch.self,
        ])
}
