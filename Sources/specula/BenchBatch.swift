import ArgumentParser
import Foundation
import SpeculaBench
import SpeculaEngine
import SpeculaKernels
import SpeculaModels
import SpeculaTheory

/// `specula bench batch`: what serving several requests at once buys, measured inside one process, without HTTP.
/// Each repetition runs the same N prompts twice, in an order that alternates: one after another on the unbatched
/// path with plain decoding (a lone client's speed), and all at once, each on a thread of its own, through one
/// ``ForwardBatcher`` as the server's slots run them, with `--method`. It prints the aggregate ÷ lone ratio per
/// repetition and its Student-t interval, and what the batcher saw (passes, requests per pass, seconds per pass),
/// beside a one-row step and a pass of N one-token rows timed in the same process. At temperature 0 every
/// batched output must equal its lone one token for token; a difference stops the run.
struct BenchBatch: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "batch",
        abstract: "N generations at once through the batcher against one after another alone (release build).")

    @Option(name: .long, help: "The target GGUF model file.") var model: String
    @Option(name: .long, help: "The draft GGUF model file (for methods that draft with a model).") var draft: String?
    @Option(name: .long, help: "Generations run at once.") var sequences = 4
    @Option(name: .long, help: "Tokens per generation at most (the end of generation stops one earlier).")
    var maxTokens = 256
    @Option(name: .long, help: "Repetitions (each runs the prompts alone and together, the order alternating).")
    var repeats = 3
    @Option(
        name: .long,
        help: "The batched generations' method, as `bench speed` spells it (plain, adaptive, ngram-adaptive, …).")
    var method = "plain"
    @Option(name: .long, help: "Prompts: a named dataset or a JSONL file (the first N prompts in file order).")
    var dataset = "mt-bench"
    @Option(name: .long, help: "Context of each generation's caches (the server's default).")
    var context = 4096
    @Option(
        name: .long,
        help: "Seconds a pass carrying a prompt piece may take while others generate (the server's default; 0: none).")
    var prefillPassMs = 250.0
    @Option(name: .long, help: "Append one JSON line per repetition to this file.") var out: String?
    @Flag(
        name: .long, help: "Time the target's passes part by part (norms, products, attention, …), alone and together.")
    var phases = false

    func validate() throws {
        if sequences < 1 || sequences > 64 { throw ValidationError("--sequences must be in 1…64") }
        if maxTokens < 2 || maxTokens > 4096 { throw ValidationError("--max-tokens must be in 2…4096") }
        if repeats < 1 || repeats > 100 { throw ValidationError("--repeats must be in 1…100") }
        if context < 64 { throw ValidationError("--context must be at least 64") }
        if prefillPassMs < 0 || !prefillPassMs.isFinite { throw ValidationError("--prefill-pass-ms must be ≥ 0") }
        _ = try DecodingPlan.method(method)
    }

    func run() throws {
        #if DEBUG
            FileHandle.standardError.write(Data("warning: debug build; time with `swift build -c release`\n".utf8))
        #endif
        // The records file must be writable before minutes of runs, not after the first repetition.
        if let out {
            let exists = FileManager.default.fileExists(atPath: out)
            guard
                exists
                    ? FileManager.default.isWritableFile(atPath: out)
                    : FileManager.default.createFile(atPath: out, contents: nil)
            else { throw ValidationError("cannot write '\(out)'") }
        }
        let stop = StopConditions(maxTokens: maxTokens)
        var plan = try DecodingPlan.method(method)
        plan.stop = stop
        let target = try LoadedModel(path: model)
        let draftModel: LoadedModel? = try {
            guard plan.drafter == .model else { return nil }
            guard let draft else { throw ValidationError("--method \(method) drafts with a model: give --draft D") }
            let loaded = try LoadedModel(path: draft)
            try GenerationSession.requireDraft(loaded, for: target)
            return loaded
        }()
        try plan.validate(hasDraftModel: draftModel != nil)
        let (loaded, _) = try Dataset.load(dataset)
        let prompts = try (0..<sequences).map { try target.promptTokens(chat: loaded[$0 % loaded.count].text) }
        if let longest = prompts.map(\.count).max(), longest + maxTokens + 8 > context {
            throw ValidationError("a \(longest)-token prompt and \(maxTokens) tokens do not fit --context \(context)")
        }
        print(
            "\(model): \(sequences) prompts of \(dataset) (\(prompts.map(\.count).map(String.init).joined(separator: ", ")) tokens), \(maxTokens) tokens at most, method \(method), \(WorkerPool.shared.threadCount) threads, kernels \(FastDot.kernelName)"
        )

        let batchedPlan = plan
        let context = self.context
        // One generation; returns its tokens, its seconds from the prompt pass to the last token, and its adaptive
        // rounds by kind.
        // As the server's slots do: adaptive generations that run beside others start from each model's step
        // measured alone.
        let priors =
            plan.shape == .adaptive
            ? AdaptivePolicy.measuredAlone(target: target.transformer, draft: draftModel?.transformer) : nil
        let loneProfile = phases ? ForwardProfile() : nil
        let batchedProfile = phases ? ForwardProfile() : nil
        @Sendable func generate(_ prompt: [Int], plan: DecodingPlan, batcher: ForwardBatcher?) throws -> (
            [Int], Double, [String: Int]
        ) {
            let session = try GenerationSession(target: target, draft: draftModel, plan: plan, context: context)
            session.batcher = batcher
            session.targetProfile = batcher == nil ? loneProfile : batchedProfile
            if batcher != nil { session.adaptiveCosts = priors }
            defer { session.leaveBatch() }
            let start = ContinuousClock.now
            try session.start(prompt: prompt)
            try session.run()
            let seconds = (ContinuousClock.now - start).inSeconds
            return (session.generated, seconds, session.stats.adaptive?.rounds ?? [:])
        }
        func lone() throws -> (outputs: [[Int]], seconds: Double) {
            var outputs: [[Int]] = []
            var seconds = 0.0
            for prompt in prompts {
                let (tokens, time, _) = try generate(prompt, plan: .plain(stop: stop), batcher: nil)
                outputs.append(tokens)
                seconds += time
            }
            return (outputs, seconds)
        }
        func together() throws -> (
            outputs: [[Int]], seconds: Double, statistics: ForwardBatcher.Statistics, rounds: [String: Int]
        ) {
            let batcher = ForwardBatcher(
                priority: [draftModel?.transformer, target.transformer].compactMap { $0 },
                prefillBound: prefillPassMs == 0 ? nil : prefillPassMs / 1000)
            let results = Results(count: prompts.count)
            let finished = DispatchGroup()
            let start = ContinuousClock.now
            for (index, prompt) in prompts.enumerated() {
                finished.enter()
                let thread = Thread {
                    defer { finished.leave() }
                    do {
                        let (tokens, _, rounds) = try generate(prompt, plan: batchedPlan, batcher: batcher)
                        results.set(index, .success(tokens), rounds: rounds)
                    } catch {
                        results.set(index, .failure(error))
                    }
                }
                thread.stackSize = 16 << 20
                thread.start()
            }
            finished.wait()
            let seconds = (ContinuousClock.now - start).inSeconds
            return (try results.values(), seconds, batcher.statistics, results.rounds)
        }

        // A one-row step and a pass of N one-token rows (each its own cache), in this process, for the reading.
        func passTimes() throws -> (one: Double, many: Double) {
            let caches = (0..<sequences).map { _ in target.transformer.makeCache(capacity: 256 + 1) }
            var one: [Double] = []
            var many: [Double] = []
            for run in 0..<6 {
                let a = try ModelTiming.pass(
                    target.transformer, cache: caches[0], context: 256, tokens: [run + 1], allLogits: false)
                let b = try ModelTiming.batchedStep(target.transformer, caches: caches, context: 256, seed: run)
                if run > 0 {
                    one.append(a)
                    many.append(b)
                }
            }
            return (median(one), median(many))
        }

        var ratios: [Double] = []
        var perPass: [Double] = []
        let greedy = plan.sampling.isGreedy
        for repeatIndex in 0..<repeats {
            var alone: (outputs: [[Int]], seconds: Double) = ([], 0)
            var batched:
                (
                    outputs: [[Int]], seconds: Double, statistics: ForwardBatcher.Statistics, rounds: [String: Int]
                )?
            for part in repeatIndex % 2 == 0 ? [0, 1] : [1, 0] {
                if part == 0 { alone = try lone() } else { batched = try together() }
            }
            guard let batched else { continue }
            if greedy {
                for index in prompts.indices where alone.outputs[index] != batched.outputs[index] {
                    throw ValidationError(
                        "prompt \(index): the batched output differs from the lone one at token \(SpeculativeDecoder.commonPrefix(alone.outputs[index], batched.outputs[index])) — an exactness bug"
                    )
                }
            }
            let passes = try passTimes()
            let loneTokens = alone.outputs.map(\.count).reduce(0, +)
            let batchedTokens = batched.outputs.map(\.count).reduce(0, +)
            let loneRate = Double(loneTokens) / alone.seconds
            let aggregate = Double(batchedTokens) / batched.seconds
            let statistics = batched.statistics
            let secondsPerPass = statistics.passSeconds / Double(max(1, statistics.passes))
            let ratio = aggregate / loneRate
            ratios.append(ratio)
            perPass.append(secondsPerPass)
            print(
                String(
                    format:
                        "repeat %d: alone %.1f tokens/s (%d tokens, %.2f s); together %.1f tokens/s (%d tokens, %.2f s): ×%.2f; %d passes, %.2f requests a pass, %.1f ms a pass (%.2f s in passes); in this process t(1) = %.1f ms, s(%d) = %.1f ms (×%.2f)",
                    repeatIndex + 1, loneRate, loneTokens, alone.seconds, aggregate, batchedTokens, batched.seconds,
                    ratio, statistics.passes, Double(statistics.segments) / Double(max(1, statistics.passes)),
                    secondsPerPass * 1000, statistics.passSeconds, passes.one * 1000, sequences, passes.many * 1000,
                    passes.many / passes.one))
            if !batched.rounds.isEmpty {
                print(
                    "  together, the adaptive rounds by kind: "
                        + batched.rounds.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(
                            separator: ", "))
            }
            if let loneProfile, let batchedProfile {
                printPhases("alone", loneProfile, passes: loneTokens)
                printPhases("together", batchedProfile, passes: statistics.passes)
                loneProfile.reset()
                batchedProfile.reset()
            }
            if let out {
                let record: [(String, JSONValue)] = [
                    ("model", .string(model)), ("method", .string(method)), ("sequences", .number(Double(sequences))),
                    ("maxTokens", .number(Double(maxTokens))), ("repeat", .number(Double(repeatIndex + 1))),
                    ("loneTokens", .number(Double(loneTokens))), ("loneSeconds", .number(alone.seconds)),
                    ("batchedTokens", .number(Double(batchedTokens))), ("batchedSeconds", .number(batched.seconds)),
                    ("ratio", .number(ratio)), ("passes", .number(Double(statistics.passes))),
                    ("rows", .number(Double(statistics.rows))), ("segments", .number(Double(statistics.segments))),
                    ("passSeconds", .number(statistics.passSeconds)), ("stepSeconds", .number(passes.one)),
                    ("batchedStepSeconds", .number(passes.many)),
                    ("threads", .number(Double(WorkerPool.shared.threadCount))),
                    ("rounds", .object(batched.rounds.sorted { $0.key < $1.key }.map { ($0.key, .integer($0.value)) })),
                ]
                try appendLine(JSONValue.object(record).rendered(), to: out)
            }
        }
        let summary = ClusteredMean(groups: ratios.map { [$0] })
        if let half = summary.halfWidth {
            let mean = summary.meanOfGroups
            print(
                String(
                    format: "together ÷ alone: %.2f ± %.2f (mean of %d repetitions, Student-t 95 %%), median %.2f",
                    mean, half, ratios.count, median(ratios)))
        }
    }

    private func median(_ values: [Double]) -> Double { values.sorted()[values.count / 2] }

    /// The parts of the target's passes, in ms per pass (alone: a pass per token, the prompt passes included).
    private func printPhases(_ label: String, _ profile: ForwardProfile, passes: Int) {
        let parts = profile.seconds.sorted { $0.value > $1.value }
        let total = parts.reduce(0) { $0 + $1.value }
        let list = parts.map { "\($0.key) \(String(format: "%.2f", $0.value * 1000 / Double(max(1, passes))))" }
        print(
            "  \(label), ms per pass over \(passes) passes: \(list.joined(separator: ", ")); total \(String(format: "%.1f", total * 1000 / Double(max(1, passes))))"
        )
    }

    /// Appends one line to `path` (made writable at the start of the run).
    private func appendLine(_ line: String, to path: String) throws {
        guard let handle = FileHandle(forWritingAtPath: path) else { throw ValidationError("cannot write '\(path)'") }
        defer { try? handle.close() }
        do {
            try handle.seekToEnd()
            try handle.write(contentsOf: Data((line + "\n").utf8))
        } catch {
            throw ValidationError("cannot write '\(path)': \(error.localizedDescription)")
        }
    }
}

/// The batched generations' outputs, written from their threads.
private final class Results: @unchecked Sendable {
    private let lock = NSLock()
    private var slots: [Result<[Int], any Error>?]
    /// The adaptive rounds by kind, summed over the generations.
    private(set) var rounds: [String: Int] = [:]

    init(count: Int) { slots = Array(repeating: nil, count: count) }

    func set(_ index: Int, _ value: Result<[Int], any Error>, rounds: [String: Int] = [:]) {
        lock.lock()
        slots[index] = value
        for (kind, count) in rounds { self.rounds[kind, default: 0] += count }
        lock.unlock()
    }

    func values() throws -> [[Int]] {
        lock.lock()
        defer { lock.unlock() }
        return try slots.map { slot in
            guard let slot else { throw ValidationError("a batched generation did not finish") }
            return try slot.get()
        }
    }
}
