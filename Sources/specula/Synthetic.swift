import ArgumentParser
import Foundation
import SpeculaModels

/// `specula synthetic`: writes a tiny random target/draft pair (GGUF, llama architecture, byte-level tokenizer,
/// ChatML template) for trying every command in seconds without the pinned models. Its text is noise; its
/// distributions are real model outputs, so every exactness and acceptance measurement means what it says.
struct Synthetic: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write a tiny random target/draft model pair (GGUF) for quick runs and tests.")

    @Option(name: .long, help: "Directory to write synthetic-target.gguf and synthetic-draft.gguf into.")
    var out: String

    @Option(name: .long, help: "Seed of the target's weights.") var seed: UInt64 = 1
    @Option(name: .long, help: "The draft is the target plus this times a second random model.")
    var perturbation: Float = 0.3
    @Option(name: .long, help: "Layers.") var layers: Int = 2
    @Option(name: .long, help: "Embedding width (a multiple of 32, the kernels' activation block).") var width: Int = 32

    func validate() throws {
        if !(perturbation >= 0) || !perturbation.isFinite {
            throw ValidationError("--perturbation must be finite and ≥ 0")
        }
        if layers < 1 || layers > 64 { throw ValidationError("--layers must be in 1...64") }
        if width < 32 || width > 4096 || width % 32 != 0 {
            throw ValidationError("--width must be a multiple of 32 in 32...4096")
        }
    }

    func run() throws {
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        var target = SyntheticModel(seed: seed)
        target.layerCount = layers
        target.embeddingLength = width
        target.feedForwardLength = 2 * width
        let targetPath = (out as NSString).appendingPathComponent("synthetic-target.gguf")
        let draftPath = (out as NSString).appendingPathComponent("synthetic-draft.gguf")
        try target.write(to: targetPath)
        try target.draft(perturbation: perturbation).write(to: draftPath)
        print(targetPath)
        print(draftPath)
    }
}
