import ArgumentParser
import Foundation
import SpeculaEngine
import SpeculaKernels
import SpeculaModels
import SpeculaTheory
import SpeculaVerify

/// `specula bench model`: decoding speed at two contexts, prefill speed, the cost of verifying N tokens in one pass
/// relative to one, and peak memory.
struct BenchModel: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "model", abstract: "Decode and prefill speed, verify cost t(N)/t(1), peak memory (release build).")

    @Option(name: .long, help: "The GGUF model file.") var model: String
    @Option(name: .long, help: "Timed repetitions per measurement (medians are reported).") var runs: Int = 5
    @Option(name: .long, help: "Prompt tokens for the prefill measurement.") var prefillTokens: Int = 512
    @Option(name: .long, parsing: .upToNextOption, help: "Contexts at which to time one decoding step.")
    var contexts: [Int] = [256, 2048]
    @Option(name: .long, parsing: .upToNextOption, help: "Batch sizes N for the verify cost t(N)/t(1).")
    var verify: [Int] = [2, 4, 8, 16]
    @Option(
        name: .long, parsing: .upToNextOption,
        help:
            "Numbers of sequences S for the batched decoding cost: one pass over S requests' next tokens, each with its own cache at context 256 (what a server's batcher runs), as s(S)/t(1)."
    )
    var sequences: [Int] = []
    @Option(
        name: .long,
        help:
            "Leave these layers out of every pass (0-based, e.g. 10-12): the cost of a draft run with --draft-skip-layers."
    )
    var skipLayers: String?
    @Option(
        name: .long,
        help:
            "Re-quantize the layer matrices stored with more bits per weight to this format first (q4_0; q4_0+output: the output matrix too): the cost of a draft run with --draft-requantize."
    )
    var requantize: String?
    @Option(name: .long, help: "Write the results as JSON to this file.") var json: String?
    @Flag(name: .long, help: "Also print where each pass's time goes (matrix products, attention, …) per batch size.")
    var phases = false

    func validate() throws {
        if runs < 1 || runs > 1000 { throw ValidationError("--runs must be in 1…1000") }
        if prefillTokens < 1 || prefillTokens > 1 << 20 {
            throw ValidationError("--prefill-tokens must be in 1…1048576")
        }
        if contexts.isEmpty || contexts.contains(where: { $0 < 0 || $0 > 1 << 20 }) {
            throw ValidationError("--contexts takes values in 0…1048576")
        }
        if verify.contains(where: { $0 < 1 || $0 > 4096 }) { throw ValidationError("--verify takes values in 1…4096") }
        if let skipLayers { _ = try parseLayerList(skipLayers, option: "--skip-layers") }
        if let requantize { _ = try RequantizeRequest(parsing: requantize, option: "--requantize") }
        if sequences.contains(where: { $0 < 1 || $0 > 64 }) {
            throw ValidationError("--sequences takes values in 1…64")
        }
    }

    /// The parts of the forward passes since the last reset, in milliseconds per pass, largest first.
    func printPhases(_ label: String, _ profile: ForwardProfile?, passes: Int) {
        guard let profile else { return }
        let parts = profile.seconds.sorted { $0.value > $1.value }
        let total = parts.reduce(0) { $0 + $1.value }
        let list = parts.map { "\($0.key) \(String(format: "%.2f", $0.value * 1000 / Double(passes)))" }
        print(
            "  \(label) per pass (ms): \(list.joined(separator: ", ")); total \(String(format: "%.1f", total * 1000 / Double(passes)))"
        )
    }

    func run() throws {
        let requantization = try requantize.map {
            try RequantizeRequest(parsing: $0, option: "--requantize").requantization
        }
        let loaded = try LoadedModel(path: model, requantization: requantization)
        let file = loaded.file
        let transformer = loaded.transformer
        if let skipLayers { try specula.skipLayers(of: transformer, skipLayers, option: "--skip-layers") }
        let capacity = max((contexts.max() ?? 0) + 64, prefillTokens + 1, 256 + (verify.max() ?? 1) + 1)
        if capacity > transformer.config.contextLength {
            throw CommandError(
                "--contexts, --prefill-tokens and --verify need \(capacity) positions; the model's context is \(transformer.config.contextLength)"
            )
        }
        let cache = transformer.makeCache(capacity: capacity)
        cache.profile = phases ? ForwardProfile() : nil
        #if DEBUG
            FileHandle.standardError.write(Data("warning: debug build; time with `swift build -c release`\n".utf8))
        #endif
        print(
            "\(file.path): \(transformer.config.architecture), \(transformer.config.layerCount) layers\(transformer.skippedLayers.isEmpty ? "" : " (\(transformer.skippedLayers.count) skipped)"), kernels \(FastDot.kernelName), \(WorkerPool.shared.threadCount) threads; weights \(loaded.weightCacheStatus)"
        )
        var records: [(String, JSONValue)] = []
        func seconds(_ body: () throws -> Void) rethrows -> Double {
            let start = DispatchTime.now().uptimeNanoseconds
            try body()
            return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        }
        func median(_ values: [Double]) -> Double { values.sorted()[values.count / 2] }
        let vocabulary = transformer.vocabularySize
        func tokens(_ count: Int, _ seed: Int) -> [Int] { (0..<count).map { (($0 + seed) * 7919 + 13) % vocabulary } }

        // Decode: one step at each context (placeholder rows fill the cache), median of runs.
        for context in contexts {
            var times: [Double] = []
            defer { if phases { printPhases("decode at \(context)", cache.profile, passes: runs) } }
            for run in 0..<(runs + 1) {
                let time = try ModelTiming.pass(
                    transformer, cache: cache, context: context, tokens: [run + 1], allLogits: false)
                // The first run warms caches and pages.
                if run > 0 { times.append(time) } else { cache.profile?.reset() }
            }
            let rate = 1 / median(times)
            print(
                "decode at context \(context): \(String(format: "%.2f", rate)) tokens/s (\(String(format: "%.1f", median(times) * 1000)) ms)"
            )
            records.append(("decodeTokensPerSecondAt\(context)", .number(rate)))
        }
        // Prefill.
        var prefill: [Double] = []
        for run in 0..<max(1, min(runs, 3)) {
            prefill.append(
                try ModelTiming.pass(
                    transformer, cache: cache, context: 0, tokens: tokens(prefillTokens, run), allLogits: false))
        }
        let prefillRate = Double(prefillTokens) / median(prefill)
        print("prefill \(prefillTokens) tokens: \(String(format: "%.2f", prefillRate)) tokens/s")
        records.append(("prefillTokensPerSecond", .number(prefillRate)))
        // Verify cost: N tokens in one pass (all logits) at context 256, relative to one.
        var single: [Double] = []
        var ratios: [(String, JSONValue)] = []
        for n in [1] + verify {
            defer { if phases { printPhases("verify \(n)", cache.profile, passes: runs) } }
            var times: [Double] = []
            for run in 0..<(runs + 1) {
                let time = try ModelTiming.pass(transformer, cache: cache, context: 256, tokens: tokens(n, run))
                if run > 0 { times.append(time) } else { cache.profile?.reset() }
            }
            if n == 1 {
                single = times
                continue
            }
            let ratio = median(times) / median(single)
            print(
                "verify \(n) tokens: t(\(n))/t(1) = \(String(format: "%.2f", ratio)) (\(String(format: "%.1f", median(times) * 1000)) ms)"
            )
            ratios.append(("\(n)", .number(ratio)))
        }
        records.append(("verifyCostRatio", .object(ratios)))
        // Batched decoding: one token for each of S sequences in one pass, relative to one token alone.
        var sequenceRatios: [(String, JSONValue)] = []
        let extra = (0..<(sequences.max() ?? 0)).map { _ in transformer.makeCache(capacity: 256 + 1) }
        if phases, let first = extra.first { first.profile = ForwardProfile() }
        for count in sequences {
            var times: [Double] = []
            defer { if phases { printPhases("\(count) sequences", extra.first?.profile, passes: runs) } }
            for run in 0..<(runs + 1) {
                let time = try ModelTiming.batchedStep(
                    transformer, caches: Array(extra.prefix(count)), context: 256, seed: run)
                if run > 0 { times.append(time) } else { extra.first?.profile?.reset() }
            }
            let ratio = median(times) / median(single)
            print(
                "\(count) sequences, one token each: s(\(count))/t(1) = \(String(format: "%.2f", ratio)) (\(String(format: "%.1f", median(times) * 1000)) ms)"
            )
            sequenceRatios.append(("\(count)", .number(ratio)))
        }
        if !sequences.isEmpty { records.append(("batchedStepCostRatio", .object(sequenceRatios))) }
        let peak = peakResidentBytes()
        print(
            "peak resident memory: \(peak / (1 << 20)) MiB (model file \(file.fileSize / (1 << 20)) MiB, KV cache \(cache.byteCount / (1 << 20)) MiB)"
        )
        records.append(("peakResidentBytes", .integer(peak)))
        records.append(("modelFileBytes", .integer(file.fileSize)))
        records.append(("kvCacheBytes", .integer(cache.byteCount)))
        if let json {
            let document = JSONValue.object([("benchmark", .string("model")), ("model", .string(model))] + records)
            do {
                try Data((document.rendered(indent: 2) + "\n").utf8).write(to: URL(fileURLWithPath: json))
            } catch {
                throw CommandError("cannot write '\(json)': \(error.localizedDescription)")
            }
        }
    }
}
