import ArgumentParser
import Foundation
import SpeculaBench
import SpeculaEngine
import SpeculaModels
import SpeculaTheory
import SpeculaVerify

/// Options shared by the paper-reproduction benchmarks (`bench acceptance|trees|block|speed|all`).
struct BenchOptions: ParsableArguments {
    @Option(name: [.customLong("target"), .customLong("model")], help: "The target model (GGUF).")
    var target: String
    @Option(name: .long, help: "The draft model (GGUF, same tokenizer).") var draft: String?
    @Option(
        name: .long, parsing: .upToNextOption,
        help:
            "Prompt sets: names (spec-bench, mt-bench, translation, summarization, qa, math, rag, humaneval/code; installed by scripts/fetch-models) or Spec-Bench-format JSON-lines files. Default: per benchmark."
    )
    var dataset: [String] = []
    @Option(name: .long, help: "Where named datasets live (default: the models directory).") var dataDir: String?
    @Option(name: .long, help: "Prompts per dataset, spread evenly over it (default: per benchmark).")
    var prompts: Int?
    @Option(name: .long, help: "Tokens per prompt at most (default: per benchmark).") var maxTokens: Int?
    @Option(
        name: .long, parsing: .upToNextOption, help: "Temperatures (default: per benchmark; 0 = greedy).")
    var temperature: [Double] = []
    @Option(name: .long, help: "Seed.") var seed: UInt64 = 0
    @Option(name: .long, help: "Output directory: <benchmark>.jsonl (resumable), .md, .svg.")
    var out: String = "bench-results"

    func validate() throws {
        if let prompts, prompts < 1 { throw ValidationError("--prompts must be ≥ 1") }
        if let maxTokens, maxTokens < 1 { throw ValidationError("--max-tokens must be ≥ 1") }
        if temperature.contains(where: { !($0 >= 0) || !$0.isFinite }) {
            throw ValidationError("--temperature values must be finite and ≥ 0")
        }
    }
}

/// Loaded models and prompts for one benchmark run, and the files it writes.
final class BenchRun {
    let options: BenchOptions
    let name: String
    let target: LoadedModel
    let draft: LoadedModel?
    let datasets: [(name: String, prompts: [BenchmarkPrompt])]
    let maxTokens: Int
    let temperatures: [Double]
    let log: ResultLog

    init(
        _ name: String, options: BenchOptions, needsDraft: Bool, datasets defaultSets: [String], prompts: Int,
        maxTokens: Int, temperatures: [Double]
    ) throws {
        self.name = name
        self.options = options
        if needsDraft && options.draft == nil { throw CommandError("bench \(name) needs --draft") }
        // Datasets first: a bad name or file fails before any model is read.
        let directory = options.dataDir ?? Dataset.defaultDirectory
        var sets: [(String, [BenchmarkPrompt])] = []
        for set in options.dataset.isEmpty ? defaultSets : options.dataset {
            let loaded: (prompts: [BenchmarkPrompt], warnings: [String])
            do {
                loaded = try Dataset.load(set, directory: directory, count: options.prompts ?? prompts)
            } catch let error as DatasetError {
                throw CommandError(error.description)
            }
            for warning in loaded.warnings { FileHandle.standardError.write(Data("warning: \(warning)\n".utf8)) }
            // A file is labelled by its name without the extension.
            let label =
                Dataset.named.contains { $0.name == set }
                ? set : ((set as NSString).lastPathComponent as NSString).deletingPathExtension
            sets.append((label, loaded.prompts))
        }
        datasets = sets
        self.maxTokens = options.maxTokens ?? maxTokens
        self.temperatures = options.temperature.isEmpty ? temperatures : options.temperature
        target = try LoadedModel(path: options.target)
        draft = try options.draft.map { try LoadedModel(path: $0) }
        if let draft { try target.tokenizer.requireSameVocabulary(as: draft.tokenizer) }
        func identity(_ path: String) -> String {
            let size = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0
            return "\((path as NSString).lastPathComponent):\(size)"
        }
        let signature = [
            "target=" + identity(options.target), "draft=" + (options.draft.map(identity) ?? "none"),
            "maxTokens=\(self.maxTokens)", "seed=\(options.seed)",
        ].joined(separator: " ")
        do {
            log = try ResultLog(directory: options.out, benchmark: name, signature: signature)
        } catch let error as DatasetError {
            throw CommandError(error.description)
        }
        for warning in log.warnings { FileHandle.standardError.write(Data("warning: \(warning)\n".utf8)) }
    }

    var promptCount: Int { datasets.reduce(0) { $0 + $1.prompts.count } }

    func tokens(_ prompt: BenchmarkPrompt) throws -> [Int] {
        try target.promptTokens(chat: prompt.text)
    }

    /// Seconds of one target decoding step and one draft step (median of a few), for the estimate printed before
    /// a run starts.
    func stepSeconds() throws -> (target: Double, draft: Double) {
        (
            try ModelTiming.stepSeconds(target.transformer),
            try draft.map { try ModelTiming.stepSeconds($0.transformer) } ?? 0
        )
    }

    func announce(units: Int, secondsPerUnit: Double, detail: String) {
        let done = log.records.count
        let left = max(0, units - done)
        FileHandle.standardError.write(
            Data(
                ("bench \(name): \(units) units (\(detail)), \(done) already in \(log.path); estimate for the rest: "
                    + "about \(ProgressReporter.duration(Double(left) * secondsPerUnit))\n").utf8))
    }

    /// Writes `<name>.md` (and `<name>.svg` when a chart is given) and prints the Markdown.
    func report(markdown: String, chart: BarChart?) throws {
        let directory = options.out
        let base = (directory as NSString).appendingPathComponent(name)
        do {
            try Data(markdown.utf8).write(to: URL(fileURLWithPath: base + ".md"))
            if let chart { try Data(chart.svg.utf8).write(to: URL(fileURLWithPath: base + ".svg")) }
        } catch {
            throw CommandError("cannot write into '\(directory)': \(error.localizedDescription)")
        }
        print(markdown)
        print("wrote \(log.path), \(base).md" + (chart == nil ? "" : ", \(base).svg"))
    }

    var header: String {
        "target `\((options.target as NSString).lastPathComponent)`, draft `\(((options.draft ?? "none") as NSString).lastPathComponent)`, "
            + datasets.map { "\($0.name) (\($0.prompts.count) prompts)" }.joined(separator: ", ")
            + ", up to \(maxTokens) tokens each, seed \(options.seed)"
    }
}

extension DecodingPlan {
    /// `plain`, or the variant and the verifier (`chain:5 token`), as the records key their metrics.
    var label: String { isPlain ? "plain" : variant + " " + verifier.rawValue }

    /// A benchmark method: `plain`, `ngram`, `SHAPE[+lookahead[:N]][+lookup[:N]][+stop:P]/VERIFIER`.
    static func method(_ text: String) throws -> DecodingPlan {
        do {
            let plan = try DecodingPlan(method: text)
            try plan.validate(hasDraftModel: true)
            return plan
        } catch let error as EngineError {
            throw CommandError("method '\(text)': \(error)")
        }
    }
}

/// The outcome of one decoding.
struct DecodingOutcome {
    var output: [Int]
    var seconds: Double
    /// Seconds of the target's pass over the prompt (the same work for every method); a draft model's pass over
    /// the prompt is not in it.
    var targetPrefillSeconds: Double
    var telemetry: SpeculativeDecoder.Telemetry?
}

extension BenchRun {
    /// Decodes `maxTokens` tokens (or to an end-of-generation token) after `tokens` with `method` (its drafter,
    /// shape and verifier; sampling, limit and seed from the arguments), timing everything from the first forward
    /// pass (prefill included).
    func decode(
        _ tokens: [Int], method: DecodingPlan, settings: SamplingSettings, seed: UInt64, treeOptimum: Bool = false,
        pairedBlock: Bool = false
    ) throws -> DecodingOutcome {
        var plan = method
        plan.sampling = settings
        plan.stop = StopConditions(maxTokens: maxTokens)
        plan.seed = seed
        plan.treeOptimum = treeOptimum
        plan.pairedBlock = pairedBlock
        if plan.drafter == .model && draft == nil { throw CommandError("method \(method.label) needs --draft") }
        let session = try GenerationSession(target: target, draft: draft, plan: plan)
        try session.start(prompt: tokens)
        try session.run()
        let stats = session.stats
        return DecodingOutcome(
            output: session.generated, seconds: stats.seconds,
            targetPrefillSeconds: stats.telemetry?.targetPrefillSeconds ?? stats.prefillSeconds,
            telemetry: stats.telemetry)
    }

    /// Decodes `prompt` with the temperature, shape and verifier a unit's configuration names (`T=0.6 binary:3
    /// spechub`), as `bench trees` and `bench block` spell them.
    func decode(
        _ prompt: BenchmarkPrompt, configuration: String, seed: UInt64, treeOptimum: Bool = false,
        pairedBlock: Bool = false
    ) throws -> DecodingOutcome {
        let parts = configuration.split(separator: " ").map(String.init)
        guard parts.count == 3 else { throw CommandError("malformed configuration '\(configuration)'") }
        return try decode(
            try tokens(prompt), method: DecodingPlan.method("\(parts[1])/\(parts[2])"),
            settings: SamplingSettings(temperature: parseTemperature(configuration)), seed: seed,
            treeOptimum: treeOptimum, pairedBlock: pairedBlock)
    }

    /// Runs `body` for every (dataset, prompt, configuration) not in the log yet, with a progress line, and
    /// appends its record.
    func forEachUnit(
        configurations: [String],
        _ body: (_ dataset: String, _ prompt: BenchmarkPrompt, _ configuration: String)
            throws -> [String: [Double]]
    ) throws {
        let progress = ProgressReporter(label: "bench \(name)", total: promptCount * configurations.count)
        for (set, prompts) in datasets {
            for prompt in prompts {
                for configuration in configurations {
                    let key = "\(set) \(configuration)"
                    if log.contains(configuration: key, prompt: prompt.id) {
                        progress.advance("\(set) \(prompt.id) \(configuration): done before")
                        continue
                    }
                    let metrics = try body(set, prompt, configuration)
                    try log.append(
                        BenchRecord(
                            benchmark: name, configuration: key, prompt: prompt.id, category: prompt.category,
                            signature: log.signature, metrics: metrics))
                    progress.advance("\(set) \(prompt.id) \(configuration)")
                }
            }
        }
    }

    /// The summaries of this run's configurations (records of other datasets or configurations in the same file
    /// are left out).
    func summaries(configurations: [String]) -> [String: [String: ClusteredMean]] {
        let wanted = Set(datasets.flatMap { set in configurations.map { "\(set.name) \($0)" } })
        let prompts = Set(datasets.flatMap { $0.prompts.map(\.id) })
        let records = log.records.filter { wanted.contains($0.configuration) && prompts.contains($0.prompt) }
        var result: [String: [String: ClusteredMean]] = [:]
        for (configuration, metrics) in Summary.summarize(records) {
            result[configuration] = Dictionary(metrics, uniquingKeysWith: { a, _ in a })
        }
        return result
    }
}

func temperatureLabel(_ t: Double) -> String { "T=" + String(format: "%g", t) }

func parseTemperature(_ configuration: String) -> Double {
    for part in configuration.split(separator: " ") where part.hasPrefix("T=") {
        return Double(part.dropFirst(2)) ?? 0
    }
    return 0
}
