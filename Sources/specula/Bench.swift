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
            BenchAcceptance.self,
        ])
}

/// `specula bench verify`: the time of one node verification for every verifier, and of α*, at a full LLM
/// vocabulary with LLM-like distributions. Prints medians; `--json` writes them for tables.
struct BenchVerify: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Median time per node verification and per α* at a full vocabulary.")

    @Option(name: .long, help: "Vocabulary size (Qwen2.5: 151936).") var vocabularySize: Int = 151_936
    @Option(name: .long, help: "Timed calls per measurement (the median is reported).") var runs: Int = 101
    @Option(name: .long, help: "Seed of the synthetic distributions and the drafts.") var seed: UInt64 = 1
    @Option(name: .long, help: "Noise of the draft's logits around the target's.") var draftNoise: Double = 1
    @Option(name: .long, help: "Write the results as JSON to this file.") var json: String?

    func validate() throws {
        if vocabularySize < 4 { throw ValidationError("--vocabulary-size must be ≥ 4") }
        if runs < 3 { throw ValidationError("--runs must be ≥ 3") }
    }

    func run() throws {
        let (target, draft) = try SyntheticPair.make(vocabularySize: vocabularySize, seed: seed, draftNoise: draftNoise)
        #if DEBUG
            FileHandle.standardError.write(Data("warning: debug build; time with `swift build -c release`\n".utf8))
        #endif
        print(
            "vocabulary \(vocabularySize), single-draft acceptance \(String(format: "%.3f", Probability.overlap(target, draft))), \(runs) runs, medians"
        )
        var records: [JSONValue] = []
        func report(_ name: String, _ n: Int, _ milliseconds: Double, _ extra: String = "") {
            print(
                name.padding(toLength: 34, withPad: " ", startingAt: 0) + "n=\(n)  "
                    + String(format: "%9.4f ms", milliseconds) + (extra.isEmpty ? "" : "  " + extra))
            records.append(
                .object([
                    ("name", .string(name)), ("drafts", .integer(n)), ("medianMilliseconds", .number(milliseconds)),
                ]))
        }
        let cases: [(any NodeVerifier, Int)] = [
            (TokenVerifier(), 1), (RRSVerifier(), 2), (RRSVerifier(), 3), (RRSWithoutReplacementVerifier(), 2),
            (RRSWithoutReplacementVerifier(), 3), (KSEQVerifier(), 2), (KSEQVerifier(), 3), (SpecHubVerifier(), 2),
            (GreedyVerifier(), 2), (GreedyVerifier(), 3),
        ]
        print("-- per-node verification (decide + sample), drafts drawn beforehand")
        var generator = SplitMix64(seed: seed)
        var decision = NodeDecision()
        for (verifier, n) in cases {
            let law = n == 1 ? DraftLaw.independent : verifier.draftLaw
            let tuples = try (0..<16).map { _ in try law.sample(draft: draft, count: n, using: &generator) }
            var index = 0
            let time = try median(runs) {
                _ = try verifier.verify(
                    target: target, draft: draft, drafts: tuples[index % tuples.count], decision: &decision,
                    using: &generator)
                index += 1
            }
            report("verify \(verifier.name)", n, time)
        }
        print("-- drafting one node (draft law sampling)")
        for (law, n) in [(DraftLaw.independent, 3), (.withoutReplacement, 3), (.hubPair, 2), (.greedy, 3)] {
            let time = try median(runs) { _ = try law.sample(draft: draft, count: n, using: &generator) }
            report("draft \(law.rawValue)", n, time)
        }
        print("-- optimal acceptance α*")
        for n in [2, 3] {
            var value = 0.0
            let with = try median(max(runs / 10, 3)) {
                value = try OptimalAcceptance.withReplacement(target: target, draft: draft, count: n)
            }
            report("α* with replacement", n, with, String(format: "α* = %.6f", value))
            var method = OptimalAcceptance.Method.closedForm
            let without = try median(max(runs / 10, 3)) {
                (value, method) = try OptimalAcceptance.withoutReplacement(target: target, draft: draft, count: n)
            }
            report("α* without replacement", n, without, String(format: "α* = %.6f (%@)", value, method.rawValue))
            let greedy = try median(max(runs / 10, 3)) {
                value = try OptimalAcceptance.greedy(target: target, draft: draft, count: n)
            }
            report("α* greedy law", n, greedy, String(format: "α* = %.6f", value))
        }
        print("-- exact acceptance (closed forms)")
        for n in [2, 3] {
            report(
                "α rrs", n,
                try median(max(runs / 10, 3)) { _ = try AcceptanceRate.rrs(target: target, draft: draft, count: n) })
            report(
                "α kseq", n,
                try median(max(runs / 10, 3)) { _ = try AcceptanceRate.kseq(target: target, draft: draft, count: n) })
        }
        if let json {
            let document = JSONValue.object([
                ("benchmark", .string("verify")), ("vocabularySize", .integer(vocabularySize)),
                ("runs", .integer(runs)),
                ("seed", .integer(Int(seed))), ("results", .array(records)),
            ])
            do {
                try Data((document.rendered(indent: 2) + "\n").utf8).write(to: URL(fileURLWithPath: json))
            } catch {
                throw CommandError("cannot write '\(json)': \(error.localizedDescription)")
            }
        }
    }

    /// Median wall time of `body` in milliseconds over `count` calls, after two warm-up calls.
    func median(_ count: Int, _ body: () throws -> Void) throws -> Double {
        try body()
        try body()
        var samples: [Double] = []
        samples.reserveCapacity(count)
        for _ in 0..<count {
            let start = DispatchTime.now().uptimeNanoseconds
            try body()
            samples.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6)
        }
        samples.sort()
        return samples[samples.count / 2]
    }
}

/// `specula bench tokenizer`: opening a model (mapping, metadata, tokenizer) and tokenizing throughput.
struct BenchTokenizer: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tokenizer", abstract: "Median time to open a model and build its tokenizer; tokenizing speed.")

    @Option(name: .long, help: "The GGUF model file.") var model: String
    @Option(name: .long, help: "Text to tokenize (for example 1 MB of mixed text).")
    var file: String
    @Option(name: .long, help: "Repetitions (the median is reported).") var runs: Int = 5

    func validate() throws {
        if runs < 1 { throw ValidationError("--runs must be ≥ 1") }
    }

    func run() throws {
        guard let data = FileManager.default.contents(atPath: file) else { throw CommandError("cannot read '\(file)'") }
        let bytes = Array(data)
        var openTimes: [Double] = []
        var tokenizeTimes: [Double] = []
        var tokenCount = 0
        for _ in 0..<runs {
            let start = DispatchTime.now().uptimeNanoseconds
            let tokenizer = try Tokenizer(gguf: try GGUFFile(path: model))
            let opened = DispatchTime.now().uptimeNanoseconds
            tokenCount = tokenizer.encode(bytes: bytes, addSpecial: false).count
            let done = DispatchTime.now().uptimeNanoseconds
            openTimes.append(Double(opened - start) / 1e6)
            tokenizeTimes.append(Double(done - opened) / 1e9)
        }
        openTimes.sort()
        tokenizeTimes.sort()
        let openMedian = openTimes[openTimes.count / 2]
        let seconds = tokenizeTimes[tokenizeTimes.count / 2]
        print("open + metadata + tokenizer: \(String(format: "%.1f", openMedian)) ms (median of \(runs))")
        print(
            "tokenize \(bytes.count) bytes → \(tokenCount) tokens: \(String(format: "%.3f", seconds)) s, "
                + "\(String(format: "%.2f", Double(bytes.count) / seconds / 1e6)) MB/s (one core, median)")
    }
}

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
        let file = try GGUFFile(path: model)
        let transformer = try Transformer(file: file)
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
            "\(file.path): \(transformer.config.architecture), \(transformer.config.layerCount) layers, vector kernels \(FastDot.isVectorized), \(WorkerPool.shared.threadCount) threads"
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

/// `specula bench kernels`: matrix products of a model's weight matrices alone, in the packed layout and in the stored
/// one, timed alternately in the same run: read bandwidth for one token and the cost of N tokens relative to one.
struct BenchKernels: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kernels",
        abstract: "Time of one weight-matrix product per batch size, packed and stored layouts side by side.")

    @Option(name: .long, help: "The GGUF model file.") var model: String
    @Option(name: .long, help: "Timed repetitions (medians are reported).") var runs: Int = 9
    @Option(name: .long, parsing: .upToNextOption, help: "Batch sizes N.") var batch: [Int] = [1, 2, 4, 8, 16]
    @Option(
        name: .long, parsing: .upToNextOption,
        help: "Tensors to time (default: layer 0's q, gate and down projections and the output matrix).")
    var tensors: [String] = []

    func validate() throws {
        if runs < 1 { throw ValidationError("--runs must be ≥ 1") }
        if batch.isEmpty || batch.contains(where: { $0 < 1 }) { throw ValidationError("--batch sizes must be ≥ 1") }
    }

    func run() throws {
        let file = try GGUFFile(path: model)
        let names =
            tensors.isEmpty
            ? ["blk.0.attn_q.weight", "blk.0.ffn_gate.weight", "blk.0.ffn_down.weight", "output.weight"].filter {
                file.tensor(named: $0) != nil
            } : tensors
        print("\(file.path): \(WorkerPool.shared.threadCount) threads; median of \(runs) runs, layouts alternated")
        for name in names {
            let (info, bytes) = try file.data(ofTensorNamed: name)
            guard info.dimensions.count == 2, let base = bytes.baseAddress else {
                throw CommandError("\(name): not a matrix")
            }
            let plain = QuantizedMatrix(
                type: info.type, rowCount: info.dimensions[1], columnCount: info.dimensions[0], data: base)
            let packed = plain.packed()
            print(
                "\(name) \(info.type) [\(plain.rowCount) × \(plain.columnCount)], \(bytes.count / 1024) KiB\(packed.packed == nil ? " (no packed layout)" : "")"
            )
            var singles: [String: Double] = [:]
            for n in batch {
                let input = (0..<(n * plain.columnCount)).map { Float(sin(Double($0) * 0.37)) }
                let x = input.withUnsafeBufferPointer {
                    QuantizedActivations($0, rowCount: n, columnCount: plain.columnCount)
                }
                var output = [Float](repeating: 0, count: n * plain.rowCount)
                var times: [String: [Double]] = ["packed": [], "stored": []]
                for run in 0..<(runs + 1) {
                    for (label, matrix) in [("packed", packed), ("stored", plain)]
                    where label == "stored" || packed.packed != nil {
                        let start = DispatchTime.now().uptimeNanoseconds
                        output.withUnsafeMutableBufferPointer { out in
                            if let base = out.baseAddress { Linear.multiply(matrix, x, into: base) }
                        }
                        let time = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
                        if run > 0 { times[label, default: []].append(time) }
                    }
                }
                var line = "  N=\(n):"
                for label in ["packed", "stored"] {
                    guard let values = times[label], !values.isEmpty else { continue }
                    let median = values.sorted()[values.count / 2]
                    let fastest = values.min() ?? median
                    if n == batch.first { singles[label] = median }
                    let bandwidth = Double(bytes.count) / median / 1e9
                    line +=
                        " \(label) \(String(format: "%.2f", median * 1000)) ms (min \(String(format: "%.2f", fastest * 1000)), \(String(format: "%.1f", bandwidth)) GB/s"
                    if let single = singles[label], n != batch.first {
                        line += ", ×\(String(format: "%.2f", median / single))"
                    }
                    line += ")"
                }
                print(line)
            }
        }
    }
}
