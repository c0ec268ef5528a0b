import Foundation
import SpeculaEngine
import SpeculaModels
import SpeculaTheory
import SpeculaVerify

/// A benchmark that cannot run: what and where.
public struct BenchError: Error, CustomStringConvertible, Equatable {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// Loaded models and prompts for one benchmark run, and the files it writes.
public final class BenchRun {
    /// What a run is asked for; nil and empty values take the benchmark's defaults.
    public struct Options: Sendable {
        public var target: String
        public var draft: String?
        /// Prompt sets: names (``Dataset/named``) or Spec-Bench-format files.
        public var datasets: [String] = []
        /// Where named datasets live (nil: ``Dataset/defaultDirectory``).
        public var dataDirectory: String?
        public var prompts: Int?
        public var maxTokens: Int?
        public var temperatures: [Double] = []
        public var seed: UInt64 = 0
        /// The output directory: `<benchmark>.jsonl` (resumable), `.md`, `.svg`.
        public var out = "bench-results"
        /// Draft layers left out of every draft pass (``Transformer/skipLayers(_:)``); empty: none.
        public var draftSkippedLayers: Set<Int> = []
        /// The draft's matrices re-quantized at load (``Transformer/requantize(to:output:)``; nil: as stored).
        public var draftRequantization: Requantization?

        public init(target: String, draft: String? = nil) {
            self.target = target
            self.draft = draft
        }
    }

    public let options: Options
    public let name: String
    public let target: LoadedModel
    public let draft: LoadedModel?
    public let datasets: [(name: String, prompts: [BenchmarkPrompt])]
    public let maxTokens: Int
    public let temperatures: [Double]
    public let log: ResultLog

    /// Reads the datasets (first: a bad name or file fails before any model is read), loads the models, and opens
    /// (or resumes) the result log.
    public init(
        _ name: String, options: Options, needsDraft: Bool, datasets defaultSets: [String], prompts: Int,
        maxTokens: Int, temperatures: [Double]
    ) throws {
        self.name = name
        self.options = options
        if needsDraft && options.draft == nil { throw BenchError("bench \(name) needs --draft") }
        // Datasets first: a bad name or file fails before any model is read.
        let directory = options.dataDirectory ?? Dataset.defaultDirectory
        var sets: [(String, [BenchmarkPrompt])] = []
        for set in Dataset.expand(options.datasets.isEmpty ? defaultSets : options.datasets) {
            let loaded = try Dataset.load(set, directory: directory, count: options.prompts ?? prompts)
            for warning in loaded.warnings { FileHandle.standardError.write(Data("warning: \(warning)\n".utf8)) }
            // A file is labelled by its name without the extension.
            let label =
                Dataset.named.contains { $0.name == set }
                ? set : ((set as NSString).lastPathComponent as NSString).deletingPathExtension
            sets.append((label, loaded.prompts))
        }
        datasets = sets
        self.maxTokens = options.maxTokens ?? maxTokens
        self.temperatures = options.temperatures.isEmpty ? temperatures : options.temperatures
        let target = try LoadedModel(path: options.target)
        self.target = target
        draft = try options.draft.map {
            try LoadedModel(path: $0, requantization: options.draftRequantization, sharingTokenizerWith: target)
        }
        if let draft, !options.draftSkippedLayers.isEmpty {
            do { try draft.transformer.skipLayers(options.draftSkippedLayers) } catch {
                throw BenchError("--draft-skip-layers: \(error)")
            }
        }
        if let draft {
            do { try target.tokenizer.requireSameVocabulary(as: draft.tokenizer) } catch {
                throw BenchError("\(draft.path) cannot draft for \(target.path): \(error)")
            }
        }
        func identity(_ path: String) -> String {
            let size = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0
            return "\((path as NSString).lastPathComponent):\(size)"
        }
        let signature =
            [
                "target=" + identity(options.target), "draft=" + (options.draft.map(identity) ?? "none"),
                "maxTokens=\(self.maxTokens)", "seed=\(options.seed)",
            ].joined(separator: " ")
            + (options.draftSkippedLayers.isEmpty
                ? ""
                : " draftSkippedLayers=" + options.draftSkippedLayers.sorted().map(String.init).joined(separator: ","))
            + (options.draftRequantization.map {
                " draftRequantized=\($0.type.description.lowercased())" + ($0.output ? "+output" : "")
            } ?? "")
        log = try ResultLog(directory: options.out, benchmark: name, signature: signature)
        for warning in log.warnings { FileHandle.standardError.write(Data("warning: \(warning)\n".utf8)) }
    }

    public var promptCount: Int { datasets.reduce(0) { $0 + $1.prompts.count } }

    public func tokens(_ prompt: BenchmarkPrompt) throws -> [Int] {
        try target.promptTokens(chat: prompt.text)
    }

    /// Seconds of one target decoding step and one draft step (median of a few), for the estimate printed before
    /// a run starts.
    public func stepSeconds() throws -> (target: Double, draft: Double) {
        (
            try ModelTiming.stepSeconds(target.transformer),
            try draft.map { try ModelTiming.stepSeconds($0.transformer) } ?? 0
        )
    }

    /// Prints the run's size, how many of its units the log already holds (records of other settings in the same
    /// log are not counted), and an estimate for the rest.
    public func announce(configurations: [String], secondsPerUnit: Double, detail: String) {
        let units = promptCount * configurations.count
        var done = 0
        for (set, prompts) in datasets {
            for prompt in prompts {
                done += configurations.count { log.contains(configuration: unitKey(set, $0), prompt: prompt.id) }
            }
        }
        let left = units - done
        FileHandle.standardError.write(
            Data(
                ("bench \(name): \(units) units (\(detail)), \(done) already in \(log.path); estimate for the rest: "
                    + "about \(ProgressReporter.duration(Double(left) * secondsPerUnit))\n").utf8))
    }

    /// Writes `<name>.md` (and `<name>.svg` when a chart is given); returns the files of the run (the log first).
    public func write(markdown: String, chart: BarChart?) throws -> [String] {
        let directory = options.out
        let base = (directory as NSString).appendingPathComponent(name)
        do {
            try Data(markdown.utf8).write(to: URL(fileURLWithPath: base + ".md"))
            if let chart { try Data(chart.svg.utf8).write(to: URL(fileURLWithPath: base + ".svg")) }
        } catch {
            throw BenchError("cannot write into '\(directory)': \(error.localizedDescription)")
        }
        return [log.path, base + ".md"] + (chart == nil ? [] : [base + ".svg"])
    }

    public var header: String {
        "target `\((options.target as NSString).lastPathComponent)`, draft `\(((options.draft ?? "none") as NSString).lastPathComponent)`, "
            + datasets.map { "\($0.name) (\($0.prompts.count) prompts)" }.joined(separator: ", ")
            + ", up to \(maxTokens) tokens each, seed \(options.seed)"
    }
}

extension DecodingPlan {
    /// `plain`, or the variant and the verifier (`chain:5 token`), as the records key their metrics.
    public var label: String { isPlain ? "plain" : variant + " " + verifier.rawValue }

    /// A benchmark method: `plain`, `ngram`, `SHAPE[+lookahead[:N]][+lookup[:N]][+stop:P]/VERIFIER`.
    public static func method(_ text: String) throws -> DecodingPlan {
        do {
            let plan = try DecodingPlan(method: text)
            try plan.validate(hasDraftModel: true)
            return plan
        } catch let error as EngineError {
            throw BenchError("method '\(text)': \(error)")
        }
    }
}

/// The outcome of one decoding.
public struct DecodingOutcome: Sendable {
    public var output: [Int]
    public var seconds: Double
    /// Seconds of the target's pass over the prompt (the same work for every method); a draft model's pass over
    /// the prompt is not in it.
    public var targetPrefillSeconds: Double
    public var telemetry: SpeculativeDecoder.Telemetry?

    public init(output: [Int], seconds: Double, targetPrefillSeconds: Double, telemetry: SpeculativeDecoder.Telemetry?)
    {
        self.output = output
        self.seconds = seconds
        self.targetPrefillSeconds = targetPrefillSeconds
        self.telemetry = telemetry
    }
}

extension BenchRun {
    /// Decodes `maxTokens` tokens (or to an end-of-generation token) after `tokens` with `method` (its drafter,
    /// shape and verifier; sampling, limit and seed from the arguments), timing everything from the first forward
    /// pass (prefill included).
    public func decode(
        _ tokens: [Int], method: DecodingPlan, settings: SamplingSettings, seed: UInt64, treeOptimum: Bool = false,
        pairedBlock: Bool = false
    ) throws -> DecodingOutcome {
        var plan = method
        plan.sampling = settings
        plan.stop = StopConditions(maxTokens: maxTokens)
        plan.seed = seed
        plan.treeOptimum = treeOptimum
        plan.pairedBlock = pairedBlock
        if plan.drafter == .model && draft == nil { throw BenchError("method \(method.label) needs --draft") }
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
    public func decode(
        _ prompt: BenchmarkPrompt, configuration: String, seed: UInt64, treeOptimum: Bool = false,
        pairedBlock: Bool = false
    ) throws -> DecodingOutcome {
        let parts = configuration.split(separator: " ").map(String.init)
        guard parts.count == 3 else { throw BenchError("malformed configuration '\(configuration)'") }
        return try decode(
            try tokens(prompt), method: DecodingPlan.method("\(parts[1])/\(parts[2])"),
            settings: SamplingSettings(temperature: parseTemperature(configuration)), seed: seed,
            treeOptimum: treeOptimum, pairedBlock: pairedBlock)
    }

    /// A unit's configuration as the log records it: the dataset's name, then the run's configuration.
    func unitKey(_ set: String, _ configuration: String) -> String { "\(set) \(configuration)" }

    /// Runs `body` for every (dataset, prompt, configuration) not in the log yet, with a progress line, and
    /// appends its record.
    public func forEachUnit(
        configurations: [String],
        _ body: (_ dataset: String, _ prompt: BenchmarkPrompt, _ configuration: String)
            throws -> [String: [Double]]
    ) throws {
        let progress = ProgressReporter(label: "bench \(name)", total: promptCount * configurations.count)
        for (set, prompts) in datasets {
            for prompt in prompts {
                for configuration in configurations {
                    let key = unitKey(set, configuration)
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

    /// `a − b` of a metric paired by prompt within dataset `set` (``Summary/pairedByPrompt(_:_:_:metric:)`` over
    /// this run's prompts of that set).
    public func pairedByPrompt(set: String, _ a: String, _ b: String, metric: String) -> ClusteredMean? {
        let prompts = Set(datasets.first { $0.name == set }?.prompts.map(\.id) ?? [])
        return Summary.pairedByPrompt(
            log.records.filter { prompts.contains($0.prompt) }, "\(set) \(a)", "\(set) \(b)", metric: metric)
    }

    /// The summaries of this run's configurations (records of other datasets or configurations in the same file
    /// are left out).
    ///
    /// `differences` adds paired metrics: `(name, a, b)` is `a − b` at every position of a record that has both (the
    /// same positions, so the interval over prompts is that of the paired difference, not of two separate means).
    public func summaries(
        configurations: [String], differences: [(name: String, minuend: String, subtrahend: String)] = []
    ) -> [String: [String: ClusteredMean]] {
        let wanted = Set(datasets.flatMap { set in configurations.map { "\(set.name) \($0)" } })
        let prompts = Set(datasets.flatMap { $0.prompts.map(\.id) })
        var records = log.records.filter { wanted.contains($0.configuration) && prompts.contains($0.prompt) }
        for index in records.indices {
            for (name, minuend, subtrahend) in differences {
                guard let a = records[index].metrics[minuend], let b = records[index].metrics[subtrahend],
                    a.count == b.count
                else { continue }
                records[index].metrics[name] = zip(a, b).map { $0 - $1 }
            }
        }
        var result: [String: [String: ClusteredMean]] = [:]
        for (configuration, metrics) in Summary.summarize(records) {
            result[configuration] = Dictionary(metrics, uniquingKeysWith: { a, _ in a })
        }
        return result
    }
}

public func temperatureLabel(_ t: Double) -> String { "T=" + String(format: "%g", t) }

public func parseTemperature(_ configuration: String) -> Double {
    for part in configuration.split(separator: " ") where part.hasPrefix("T=") {
        return Double(part.dropFirst(2)) ?? 0
    }
    return 0
}

/// How much faster a run was than plain decoding of the same prompt: its tokens per second over plain decoding's.
/// At T > 0 the two runs sample different texts, of different lengths, so a ratio of times would not compare like
/// with like; at T = 0 both emit the same tokens and this is plain time over the run's. Where either emitted
/// nothing, the ratio of times.
public func speedRatio(tokens: Int, seconds: Double, plainTokens: Int, plainSeconds: Double) -> Double {
    let counted = min(tokens, plainTokens) > 0
    let rate = Double(counted ? tokens : 1) / max(seconds, 1e-9)
    let plainRate = Double(counted ? plainTokens : 1) / max(plainSeconds, 1e-9)
    return rate / plainRate
}

/// The per-prompt metrics of a speculative decoding.
///
/// `seconds` is the whole run as timed. The rates and `decodeSeconds` leave out the time the run spent computing
/// α* at tree nodes for the telemetry (``SpeculativeDecoder/treeOptimum``, recorded as `optimalSeconds`): that
/// work serves the measurement, not the decoding, and its cost depends on the draft law (a sort of the vocabulary
/// for RRS and RRSw, one pass for SpecHub's hub pair), so left in it would tilt a wall-clock comparison of
/// verifiers.
public func decodingMetrics(_ outcome: DecodingOutcome) -> [String: [Double]] {
    let telemetrySeconds = outcome.telemetry?.optimalSeconds ?? 0
    let tokens = Double(outcome.output.count)
    let decodeSeconds = outcome.seconds - outcome.targetPrefillSeconds - telemetrySeconds
    var metrics: [String: [Double]] = [
        "seconds": [outcome.seconds], "tokens": [tokens],
        "tokensPerSecond": [tokens / max(outcome.seconds - telemetrySeconds, 1e-9)],
        // After the target's prompt pass (the same for every method; a draft's prompt pass stays in).
        "decodeSeconds": [decodeSeconds],
        "decodeTokensPerSecond": [tokens / max(decodeSeconds, 1e-9)],
    ]
    if telemetrySeconds > 0 { metrics["optimalSeconds"] = [telemetrySeconds] }
    if let t = outcome.telemetry {
        metrics["tokensPerCall"] = [t.tokensPerStep]
        metrics["rounds"] = [Double(t.rounds)]
        metrics["acceptance"] = [t.acceptanceRate]
        if t.reachedNodes > 0 {
            // Acceptance at the reached expanded nodes and the mean α* of their draft laws (tree runs measure it).
            metrics["reachedAcceptance"] = [Double(t.reachedAccepted) / Double(t.reachedNodes)]
            metrics["optimalAcceptance"] = [t.optimalAcceptance]
            metrics["reachedNodes"] = [Double(t.reachedNodes)]
        }
        for (rank, value) in t.childAcceptance.enumerated() { metrics["a\(rank + 1)"] = [value] }
        if t.pairedRounds > 0 {
            // The same drafts verified both ways (exact expectations per round), means over the rounds.
            let token = t.pairedTokenSteps / Double(t.pairedRounds)
            let block = t.pairedBlockSteps / Double(t.pairedRounds)
            metrics["pairedToken"] = [token]
            metrics["pairedBlock"] = [block]
            metrics["pairedGain"] = [block / token - 1]
        }
    }
    return metrics
}
