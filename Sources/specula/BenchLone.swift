import ArgumentParser
import Foundation
import SpeculaEngine
import SpeculaKernels
import SpeculaModels
import SpeculaTheory

/// `specula bench lone`: what a lone generation pays for running through the batcher (`serve -np N`, N > 1) rather
/// than on its own (`-np 1`): the same plain generation, in one process, alternately with a ``ForwardBatcher`` it is
/// the only member of and without one, in pairs whose order alternates; the paired ratio of decoding time per
/// token with its Student-t interval. The server's HTTP path is the same either way, so this isolates the engine's.
struct BenchLone: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lone",
        abstract: "A lone generation through the batcher against the unbatched path, paired (release build).")

    @Option(name: .long, help: "The GGUF model file.") var model: String
    @Option(name: .long, help: "The chat prompt.")
    var prompt = "Write a short story about a robot who learns to paint."
    @Option(name: .long, help: "Tokens per generation (the end of text does not stop it).") var maxTokens = 64
    @Option(name: .long, help: "Timed pairs (one untimed pair runs first).") var pairs = 15

    func validate() throws {
        if maxTokens < 2 || maxTokens > 4096 { throw ValidationError("--max-tokens must be in 2…4096") }
        if pairs < 2 || pairs > 1000 { throw ValidationError("--pairs must be in 2…1000") }
    }

    func run() throws {
        #if DEBUG
            FileHandle.standardError.write(Data("warning: debug build; time with `swift build -c release`\n".utf8))
        #endif
        let target = try LoadedModel(path: model)
        let tokens = try target.promptTokens(chat: prompt)
        let stop = StopConditions(maxTokens: maxTokens, atEndOfGeneration: false)
        let batcher = ForwardBatcher()
        print(
            "\(model): \(tokens.count)-token prompt, \(maxTokens) tokens a generation, \(pairs) pairs, \(WorkerPool.shared.threadCount) threads, kernels \(FastDot.kernelName)"
        )
        // Seconds per generated token after the prompt pass.
        func generate(batched: Bool) throws -> Double {
            let session = try GenerationSession(
                target: target, plan: .plain(stop: stop), context: tokens.count + maxTokens + 8)
            if batched { session.batcher = batcher }
            defer { session.leaveBatch() }
            try session.start(prompt: tokens)
            let start = ContinuousClock.now
            try session.run()
            let seconds = (ContinuousClock.now - start).inSeconds
            return seconds / Double(max(1, session.generated.count))
        }
        var alone: [Double] = []
        var batched: [Double] = []
        for pair in 0...pairs {
            var times = [0.0, 0.0]  // alone, batched
            for mode in pair % 2 == 0 ? [0, 1] : [1, 0] { times[mode] = try generate(batched: mode == 1) }
            if pair == 0 { continue }
            alone.append(times[0])
            batched.append(times[1])
        }
        let ratios = zip(batched, alone).map { $0 / $1 }
        let mean = ratios.reduce(0, +) / Double(ratios.count)
        let variance = ratios.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(ratios.count - 1)
        let half = StudentT.interval95(groups: ratios.count) * (variance / Double(ratios.count)).squareRoot()
        func median(_ values: [Double]) -> Double { values.sorted()[values.count / 2] }
        print(
            String(
                format: "alone: %.2f ms a token (median); through the batcher, alone in it: %.2f ms",
                median(alone) * 1000,
                median(batched) * 1000))
        print(
            String(
                format: "time per token, batched / alone: %.3f ± %.3f (mean of %d paired ratios, Student-t 95 %%)",
                mean,
                half, ratios.count))
    }
}
