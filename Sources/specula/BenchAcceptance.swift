import ArgumentParser
import Foundation
import SpeculaBench
import SpeculaEngine
import SpeculaModels
import SpeculaTheory
import SpeculaVerify

/// `specula bench acceptance`: the acceptance table of Hu et al. on real models at the full vocabulary. For each
/// prompt the target samples a continuation; at every generated position the processed target and draft
/// distributions give each verifier's exact acceptance (closed forms; RRSw at n ≥ 3 Monte Carlo with a stated sample
/// count where no exact method fits this vocabulary) and α* of each draft law, for n = 1, 2, 3 drafts (4 on request:
/// α* of the with-replacement and greedy laws stay exact, without replacement has no exact method there). Means over
/// positions, Student-t 95 % intervals from the spread of the per-prompt means. Any acceptance above the α* of its
/// law beyond its own precision stops the run: it would be a bug.
struct BenchAcceptance: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "acceptance",
        abstract: "Acceptance of every verifier and α* on real models and prompts (Hu et al.'s table).",
        discussion: """
            Defaults: datasets translation summarization mt-bench humaneval math, 3 prompts each, 128 tokens, \
            temperatures 0.3 0.7 1.0 (the ablation), n = 1 2 3, the draft at the target's temperature (--draft-temperature-factor 1.5 2 for weaker drafts).
            """)

    @OptionGroup var options: BenchOptions
    @Option(
        name: .long, parsing: .upToNextOption,
        help: "Draft counts n (1…4; at n = 4 α* without replacement has no exact method and is left out).")
    var drafts: [Int] = [1, 2, 3]
    @Option(name: .long, help: "Monte-Carlo samples where no exact method exists.") var samples: Int = 2000
    @Option(
        name: .long, parsing: .upToNextOption,
        help: ArgumentHelp(
            "Draft temperature as a multiple of the target's, each a setting of its own (a weaker draft; the target's continuation is the same for every factor).",
            valueName: "factor"))
    var draftTemperatureFactor: [Double] = [1]
    @Option(
        name: .long, parsing: .upToNextOption,
        help: ArgumentHelp(
            "Noise on the draft's log-probabilities (standard deviation; 0 = none), each a setting of its own with each factor: a weaker draft whose favourite tokens change too.",
            valueName: "sigma"))
    var draftNoise: [Double] = [0]

    func validate() throws {
        if drafts.isEmpty || drafts.contains(where: { $0 < 1 || $0 > 4 }) {
            throw ValidationError("--drafts takes values in 1…4")
        }
        if samples < 2 { throw ValidationError("--samples must be ≥ 2") }
        if options.temperature.contains(0) { throw ValidationError("--temperature must be > 0 (a sampled law)") }
        if draftTemperatureFactor.isEmpty || draftTemperatureFactor.contains(where: { !($0 > 0 && $0.isFinite) }) {
            throw ValidationError("--draft-temperature-factor takes positive numbers")
        }
        if draftNoise.isEmpty || draftNoise.contains(where: { !($0 >= 0 && $0.isFinite) }) {
            throw ValidationError("--draft-noise takes numbers ≥ 0")
        }
    }

    func run() throws { _ = try measure() }

    /// Runs (or resumes) the benchmark and returns its Markdown.
    func measure() throws -> String {
        let run = try BenchRun(
            "acceptance", options: options.runOptions, needsDraft: true,
            datasets: ["translation", "summarization", "mt-bench", "humaneval", "math"], prompts: 3, maxTokens: 128,
            temperatures: [0.3, 0.7, 1.0])
        guard let drafter = run.draft else { throw CommandError("bench acceptance needs --draft") }
        let configurations = run.temperatures.flatMap { t in
            draftTemperatureFactor.flatMap { factor in
                draftNoise.map { Self.label(temperature: t, draftFactor: factor, noise: $0) }
            }
        }
        // The estimate: a target step and the bounds of one position.
        let steps = try run.stepSeconds()
        // The bounds of one real position: the first prompt's next-token distributions.
        var boundSeconds = 0.0
        if let first = run.datasets.first?.prompts.first {
            let tokens = try run.tokens(first)
            let settings = SamplingSettings(temperature: parseTemperature(configurations[0]))
            func next(_ model: Transformer) throws -> [Double] {
                let logits = try Scoring.logits(model, tokens: tokens, rows: [tokens.count - 1])
                return try settings.process(logits: logits[0].map(Double.init), history: tokens)
            }
            let (p, q) = (try next(run.target.transformer), try next(drafter.transformer))
            let boundStart = Date()
            for n in drafts { _ = try BoundReport(target: p, draft: q, drafts: n, samples: samples, seed: 0) }
            boundSeconds = Date().timeIntervalSince(boundStart)
        }
        run.announce(
            configurations: configurations,
            secondsPerUnit: Double(run.maxTokens) * (steps.target + boundSeconds),
            detail: "\(run.promptCount) prompts × \(configurations.count) settings")
        try run.forEachUnit(configurations: configurations) { set, prompt, configuration in
            let temperature = parseTemperature(configuration)
            let settings = SamplingSettings(temperature: temperature)
            let draftSettings = SamplingSettings(temperature: temperature * Self.draftFactor(configuration))
            let tokens = try run.tokens(prompt)
            // The target samples the continuation (plain decoding, a seed of its own per unit and temperature —
            // the same for every draft factor, so a resumed run draws what a whole run would and the factors are
            // compared on one text); its distribution at each step is kept.
            var plan = DecodingPlan.plain(
                sampling: settings, stop: StopConditions(maxTokens: run.maxTokens),
                seed: options.seed ^ ResultLog.stableHash("\(set) \(prompt.id) \(temperatureLabel(temperature))"))
            plan.recordDistributions = true
            let session = try GenerationSession(target: run.target, plan: plan)
            try session.start(prompt: tokens)
            var targetVectors: [[Double]] = []
            try session.run { targetVectors += $0.distributions }
            let continuation = session.generated
            // The draft's distributions at the same positions, in one pass.
            let draftVectors = try Scoring.distributions(
                drafter.transformer, context: tokens, continuation: continuation, settings: draftSettings)
            var metrics: [String: [Double]] = [:]
            let sigma = Self.draftNoise(configuration)
            for (position, drafted) in draftVectors.enumerated() {
                let p = targetVectors[position]
                // The noise of a position depends on the prompt and the position only: every σ and factor sees
                // the same draws, so settings compare on common random numbers.
                let q = NoisyDraft.perturb(
                    drafted, sigma: sigma,
                    seed: ResultLog.stableHash("\(set) \(prompt.id) noise") &+ UInt64(position))
                for n in drafts {
                    let report = try BoundReport(
                        target: p, draft: q, drafts: n, samples: samples, seed: options.seed &+ UInt64(position))
                    try check(
                        report, n: n, prompt: prompt.id, position: position, target: p, draft: q,
                        seed: options.seed &+ UInt64(position))
                    for (name, value) in report.acceptance + report.optimal.map({ ("α* " + $0.0, $0.1) }) {
                        metrics["\(name)@\(n)", default: []].append(value)
                    }
                }
            }
            return metrics
        }
        return try report(run, configurations: configurations)
    }

    /// `T=0.7`, or `T=0.7 draft×1.5` when the draft samples at 1.5 times the target's temperature, with
    /// ` noise=σ` when its log-probabilities carry noise.
    static func label(temperature: Double, draftFactor: Double, noise: Double = 0) -> String {
        temperatureLabel(temperature) + (draftFactor == 1 ? "" : " draft×" + String(format: "%g", draftFactor))
            + (noise == 0 ? "" : " noise=" + String(format: "%g", noise))
    }

    static func draftNoise(_ configuration: String) -> Double {
        for part in configuration.split(separator: " ") where part.hasPrefix("noise=") {
            return Double(part.dropFirst("noise=".count)) ?? 0
        }
        return 0
    }

    static func draftFactor(_ configuration: String) -> Double {
        for part in configuration.split(separator: " ") where part.hasPrefix("draft×") {
            return Double(part.dropFirst("draft×".count)) ?? 1
        }
        return 1
    }

    static let rows = [
        "token", "rrs", "rrsw", "kseq", "spechub", "greedy", "α* withReplacement", "α* withoutReplacement",
        "α* greedy",
    ]

    /// Paired comparisons, position by position (`a − b` at the same positions): each verifier against RRS, and
    /// each verifier's gap to the α* of its own draft law (Hu et al.'s measure of how far a verifier is from
    /// optimal).
    static let pairs: [(name: String, minuend: String, subtrahend: String)] = [
        ("rrsw − rrs", "rrsw", "rrs"), ("kseq − rrs", "kseq", "rrs"), ("spechub − rrsw", "spechub", "rrsw"),
        ("greedy − rrsw", "greedy", "rrsw"), ("α* withReplacement − rrs", "α* withReplacement", "rrs"),
        ("α* withReplacement − kseq", "α* withReplacement", "kseq"),
        ("α* withoutReplacement − rrsw", "α* withoutReplacement", "rrsw"),
        ("α* withoutReplacement − α* withReplacement", "α* withoutReplacement", "α* withReplacement"),
        ("α* greedy − α* withoutReplacement", "α* greedy", "α* withoutReplacement"),
    ]

    func report(_ run: BenchRun, configurations: [String]) throws -> String {
        let differences = drafts.flatMap { n in
            Self.pairs.map { ("\($0.name)@\(n)", "\($0.minuend)@\(n)", "\($0.subtrahend)@\(n)") }
        }
        let summaries = run.summaries(configurations: configurations, differences: differences)
        var markdown = "## Acceptance (Hu et al.'s protocol)\n\n\(run.header).\n\n"
        markdown += "Mean acceptance over positions (mean of prompt means ± Student-t 95 % interval over prompts; "
        markdown += "prompts × positions in parentheses). rrsw at n ≥ 3 uses \(samples) Monte-Carlo draft tuples per "
        markdown += "position where no exact method fits this vocabulary; every other value is exact"
        markdown +=
            drafts.contains(4) ? " (α* without replacement at n = 4 has no exact method: left out).\n\n" : ".\n\n"
        let ns = drafts.sorted()
        var chartGroups: [String] = []
        var chartValues: [[Double?]] = []
        var chartHalves: [[Double?]] = []
        let chartSeries = ["rrs", "rrsw", "kseq", "spechub", "greedy", "α* withReplacement", "α* withoutReplacement"]
        for (set, _) in run.datasets {
            for configuration in configurations {
                guard let metrics = summaries["\(set) \(configuration)"] else { continue }
                markdown += "### \(set), \(configuration)\n\n"
                let rows = Self.rows.compactMap { name -> [String]? in
                    let cells = ns.map { Summary.cell(metrics["\(name)@\($0)"]) }
                    return cells.allSatisfy { $0 == "—" } ? nil : [name] + cells
                }
                markdown += MarkdownTable(header: ["verifier / bound"] + ns.map { "n = \($0)" }, rows: rows).rendered
                let positions = metrics["token@\(ns[0])"]?.count ?? 0
                markdown += "\n\(positions) positions."
                if ns.contains(2) {
                    markdown += " At n = 2 SpecHub's hub pair is the greedy law (the draft's top token and one more "
                    markdown += "sampled from the rest) and both verifiers reach its α*: their n = 2 values are one "
                    markdown += "number, equal up to rounding, not a ranking."
                }
                markdown += "\n\n"
                let paired = Self.pairs.compactMap { pair -> [String]? in
                    let cells = ns.map { Summary.cell(metrics["\(pair.name)@\($0)"], digits: 4) }
                    return cells.allSatisfy { $0 == "—" } ? nil : [pair.name] + cells
                }
                if !paired.isEmpty {
                    markdown += "Paired differences (same positions; Student-t 95 % interval over prompt means):\n\n"
                    markdown +=
                        MarkdownTable(header: ["difference"] + ns.map { "n = \($0)" }, rows: paired).rendered + "\n"
                }
                let chartN = ns.contains(2) ? 2 : ns[0]
                chartGroups.append("\(set) \(configuration)")
                chartValues.append(chartSeries.map { metrics["\($0)@\(chartN)"]?.meanOfGroups })
                chartHalves.append(chartSeries.map { metrics["\($0)@\(chartN)"]?.halfWidth })
            }
        }
        let chart = BarChart(
            title: "Acceptance at n = \(ns.contains(2) ? 2 : ns[0]) drafts and α* (Hu et al.'s protocol)",
            yLabel: "acceptance", groups: chartGroups, series: chartSeries, values: chartValues,
            halfWidths: chartHalves)
        try run.report(markdown: markdown, chart: chart)
        return markdown
    }

    /// No verifier may accept more often than the α* of its own draft law, beyond the precision of its value (1e-9
    /// for exact values, four standard errors for a Monte-Carlo estimate): a violation stops the run as a bug.
    /// Stops the run on an acceptance above the α* of its law beyond its precision, after writing the position's
    /// two distributions beside the records so that `specula bound` can replay it.
    func check(
        _ report: BoundReport, n: Int, prompt: String, position: Int, target: [Double], draft: [Double], seed: UInt64
    ) throws {
        guard let first = report.bounds.violations.first else { return }
        // A Monte-Carlo value is estimated again with 100 times the tuples before the run stops on it.
        let confirmed = try report.bounds.confirmedViolations(
            target: target, draft: draft, factor: 100, seed: seed ^ 0x9E37_79B9_7F4A_7C15)
        guard let violation = confirmed.first else {
            FileHandle.standardError.write(
                Data(
                    ("\nnote: prompt \(prompt), position \(position), n = \(n): \(first.verifier)'s estimate "
                        + "\(first.acceptance) was above α* \(first.optimum); with 100× the tuples it is not\n").utf8))
            return
        }
        let stem = (options.out as NSString).appendingPathComponent("violation-\(prompt)-\(position)-n\(n)")
        var replay = ""
        do {
            for (suffix, vector) in [("target", target), ("draft", draft)] {
                let text = "[" + vector.map { String($0) }.joined(separator: ",") + "]\n"
                try text.write(toFile: "\(stem)-\(suffix).json", atomically: true, encoding: .utf8)
            }
            replay =
                "; replay: specula bound --target \(stem)-target.json --draft \(stem)-draft.json --drafts \(n) "
                + "--temperature 1 --samples \(samples) --seed \(seed)"
        } catch {
            replay = "; the distributions could not be written (\(error))"
        }
        throw CommandError(
            "prompt \(prompt), position \(position), n = \(n): \(violation.verifier) acceptance \(violation.acceptance) exceeds α* \(violation.optimum) of its draft law — a bug\(replay)"
        )
    }
}
