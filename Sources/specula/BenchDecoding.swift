import ArgumentParser
import Foundation
import SpeculaBench
import SpeculaEngine
import SpeculaModels
import SpeculaTheory
import SpeculaVerify

/// Whether `verifier` serves every branching node of the tree spelled `shape`.
func serves(_ verifier: String, _ shape: String) -> Bool {
    guard let kind = VerifierKind(rawValue: verifier), let parsed = try? DraftShape(spelling: shape) else {
        return false
    }
    switch parsed {
    case .tree(let topology, _): return kind != .token && kind != .block && kind.serves(topology)
    case .chain: return kind != .block
    case .auto: return false
    }
}

/// The rows of a tree spelling (root included).
func nodeCount(_ shape: String) throws -> Int {
    do { return try DraftShape(spelling: shape).nodeCount } catch let error as EngineError {
        throw CommandError(error.description)
    }
}

/// The per-prompt metrics of a speculative decoding.
func decodingMetrics(_ outcome: DecodingOutcome) -> [String: [Double]] {
    var metrics: [String: [Double]] = [
        "seconds": [outcome.seconds], "tokens": [Double(outcome.output.count)],
        "tokensPerSecond": [Double(outcome.output.count) / max(outcome.seconds, 1e-9)],
        // After the target's prompt pass (the same for every method; a draft's prompt pass stays in).
        "decodeSeconds": [outcome.seconds - outcome.targetPrefillSeconds],
        "decodeTokensPerSecond": [
            Double(outcome.output.count) / max(outcome.seconds - outcome.targetPrefillSeconds, 1e-9)
        ],
    ]
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

/// `specula bench trees`: real speculative decoding with multi-draft trees (SpecHub's and Hu et al.'s settings);
/// the metric is tokens per target call (accepted drafts plus the bonus or correction), with the per-child
/// acceptance vector.
struct BenchTrees: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "trees",
        abstract: "Tokens per target call of multi-draft trees with every verifier (SpecHub, Hu et al.).",
        discussion: """
            Defaults: dataset mt-bench, 2 prompts, 64 tokens, temperatures 0.6 and 1.0; shapes binary:2…5 \
            (complete binary trees 2^2…2^5), sequoia:4/8/16/32, drafts:2:4, drafts:4:3, eagle; verifiers rrs rrsw \
            spechub greedy kseq (each on the shapes it serves).
            """)

    @OptionGroup var options: BenchOptions
    @Option(name: .long, parsing: .upToNextOption, help: "Tree shapes (as in `specula generate --tree`).")
    var shapes: [String] = [
        "binary:2", "binary:3", "binary:4", "binary:5", "sequoia:4", "sequoia:8", "sequoia:16", "sequoia:32",
        "drafts:2:4", "drafts:4:3", "eagle",
    ]
    @Option(name: .long, parsing: .upToNextOption, help: "Verifiers.")
    var verifiers: [String] = ["rrs", "rrsw", "spechub", "greedy", "kseq"]

    func validate() throws {
        for shape in shapes { _ = try nodeCount(shape) }
        for verifier in verifiers where VerifierKind(rawValue: verifier)?.nodeVerifier == nil || verifier == "token" {
            throw ValidationError("unknown multi-draft verifier '\(verifier)' (rrs, rrsw, kseq, spechub, greedy)")
        }
        if options.temperature.contains(0) {
            throw ValidationError("--temperature must be > 0: at 0 every verifier is the greedy walk")
        }
    }

    func run() throws { _ = try measure() }

    func measure() throws -> String {
        let run = try BenchRun(
            "trees", options: options, needsDraft: true, datasets: ["mt-bench"], prompts: 2, maxTokens: 64,
            temperatures: [0.6, 1.0])
        var configurations: [String] = []
        for t in run.temperatures {
            for shape in shapes {
                for verifier in verifiers where serves(verifier, shape) {
                    configurations.append("\(temperatureLabel(t)) \(shape) \(verifier)")
                }
            }
        }
        let steps = try run.stepSeconds()
        run.announce(
            units: run.promptCount * configurations.count,
            secondsPerUnit: Double(run.maxTokens) / 2.5 * (2 * steps.target + 4 * steps.draft),
            detail: "\(run.promptCount) prompts × \(configurations.count) shape/verifier/temperature settings")
        try run.forEachUnit(configurations: configurations) { _, prompt, configuration in
            let outcome = try run.decode(prompt, configuration: configuration, seed: options.seed, treeOptimum: true)
            try checkOptimum(outcome, configuration: configuration, prompt: prompt.id)
            return decodingMetrics(outcome)
        }
        return try report(run, configurations: configurations)
    }

    /// The walk cannot accept more often than α* allows: at the reached nodes, the accepted count is a sum of
    /// independent Bernoulli draws whose means are at most each node's α*, so it may exceed Σ α* only by sampling
    /// noise (four standard deviations, at least one node). A larger excess is a bug and stops the run.
    func checkOptimum(_ outcome: DecodingOutcome, configuration: String, prompt: String) throws {
        guard let t = outcome.telemetry, t.reachedNodes > 0 else { return }
        let mean = t.optimalAcceptance
        let slack = max(1, 4 * (Double(t.reachedNodes) * mean * (1 - mean)).squareRoot()) + 1e-9
        if Double(t.reachedAccepted) > t.optimalSum + slack {
            throw CommandError(
                "\(configuration), prompt \(prompt): \(t.reachedAccepted) of \(t.reachedNodes) reached nodes accepted, "
                    + "above Σ α* = \(t.optimalSum) — a bug")
        }
    }

    func report(_ run: BenchRun, configurations: [String]) throws -> String {
        let summaries = run.summaries(configurations: configurations)
        var markdown = "## Trees: tokens per target call\n\n\(run.header).\n\n"
        markdown += "Tokens per target call (accepted drafts + 1), mean over prompts ± 95 % interval; "
        markdown += "— where the verifier does not serve the shape (SpecHub: two drafts per node).\n\n"
        var groups: [String] = []
        var values: [[Double?]] = []
        var halves: [[Double?]] = []
        for (set, _) in run.datasets {
            for t in run.temperatures {
                markdown += "### \(set), \(temperatureLabel(t))\n\n"
                var rows: [[String]] = []
                for shape in shapes {
                    let nodes = (try? nodeCount(shape)).map(String.init) ?? "?"
                    var cells = [shape, nodes]
                    var rowValues: [Double?] = []
                    var rowHalves: [Double?] = []
                    for verifier in verifiers {
                        let metrics = summaries["\(set) \(temperatureLabel(t)) \(shape) \(verifier)"]
                        cells.append(Summary.cell(metrics?["tokensPerCall"], digits: 2))
                        rowValues.append(metrics?["tokensPerCall"]?.meanOfGroups)
                        rowHalves.append(metrics?["tokensPerCall"]?.halfWidth)
                    }
                    rows.append(cells)
                    groups.append("\(shape) \(temperatureLabel(t))")
                    values.append(rowValues)
                    halves.append(rowHalves)
                }
                markdown += MarkdownTable(header: ["tree", "nodes"] + verifiers, rows: rows).rendered
                // The per-child acceptance vector (a_r: the walk accepted the child of rank r), pooled by shape.
                markdown += "\nPer-child acceptance a1, a2, a3 (RRSw where it ran, else the first verifier):\n\n"
                var vectorRows: [[String]] = []
                for shape in shapes {
                    let verifier = verifiers.contains("rrsw") ? "rrsw" : verifiers[0]
                    guard let metrics = summaries["\(set) \(temperatureLabel(t)) \(shape) \(verifier)"] else {
                        continue
                    }
                    vectorRows.append(
                        ["\(shape) \(verifier)"] + (1...3).map { Summary.cell(metrics["a\($0)"], digits: 3) })
                }
                markdown += MarkdownTable(header: ["tree", "a1", "a2", "a3"], rows: vectorRows).rendered + "\n"
                // Measured acceptance at the reached nodes next to the mean α* of their draft laws, per verifier.
                markdown += "Acceptance at reached expanded nodes / mean α* of their draft laws (efficiency):\n\n"
                var optimumRows: [[String]] = []
                for shape in shapes {
                    var cells = [shape]
                    for verifier in verifiers {
                        let metrics = summaries["\(set) \(temperatureLabel(t)) \(shape) \(verifier)"]
                        guard let measured = metrics?["reachedAcceptance"]?.meanOfGroups,
                            let optimum = metrics?["optimalAcceptance"]?.meanOfGroups
                        else {
                            cells.append("—")
                            continue
                        }
                        cells.append(String(format: "%.3f / %.3f (%.2f)", measured, optimum, measured / optimum))
                    }
                    optimumRows.append(cells)
                }
                markdown += MarkdownTable(header: ["tree"] + verifiers, rows: optimumRows).rendered + "\n"
            }
        }
        let chart = BarChart(
            title: "Tokens per target call by tree and verifier", yLabel: "tokens per call", groups: groups,
            series: verifiers, values: values, halfWidths: halves)
        try run.report(markdown: markdown, chart: chart)
        return markdown
    }
}

/// `specula bench block`: chains verified token by token and as a block (Sun et al.), tokens per step and
/// wall clock, and the gain in percent.
struct BenchBlock: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "block",
        abstract: "Token-level vs block verification of draft chains: tokens per step and wall clock.",
        discussion: """
            Defaults: dataset mt-bench, 3 prompts, 96 tokens, temperatures 0.6 and 1.0, γ = 2 4 6 8. The two \
            verifiers run one after the other on each prompt, with the same seed.
            """)

    @OptionGroup var options: BenchOptions
    @Option(name: .long, parsing: .upToNextOption, help: "Chain lengths γ.") var gammas: [Int] = [2, 4, 6, 8]

    func validate() throws {
        if gammas.isEmpty || gammas.contains(where: { $0 < 1 || $0 > 64 }) {
            throw ValidationError("--gammas takes values in 1…64")
        }
        if options.temperature.contains(0) {
            throw ValidationError("--temperature must be > 0: at 0 both are the greedy walk")
        }
    }

    func run() throws { _ = try measure() }

    func measure() throws -> String {
        let run = try BenchRun(
            "block", options: options, needsDraft: true, datasets: ["mt-bench"], prompts: 3, maxTokens: 96,
            temperatures: [0.6, 1.0])
        var configurations: [String] = []
        for t in run.temperatures {
            for gamma in gammas {
                for verifier in ["token", "block"] {
                    configurations.append("\(temperatureLabel(t)) chain:\(gamma) \(verifier)")
                }
            }
        }
        let steps = try run.stepSeconds()
        run.announce(
            units: run.promptCount * configurations.count,
            secondsPerUnit: Double(run.maxTokens) / 2.5 * (1.3 * steps.target + 4 * steps.draft),
            detail: "\(run.promptCount) prompts × \(configurations.count) settings")
        try run.forEachUnit(configurations: configurations) { _, prompt, configuration in
            decodingMetrics(try run.decode(prompt, configuration: configuration, seed: options.seed, pairedBlock: true))
        }
        let summaries = run.summaries(configurations: configurations)
        var markdown = "## Block vs token verification\n\n\(run.header).\n\n"
        markdown += "Tokens per step (target call) and wall-clock tokens/s (prefill included), mean over prompts "
        markdown += "± 95 % interval; gain = block / token − 1 of the means.\n\n"
        var groups: [String] = []
        var values: [[Double?]] = []
        var halves: [[Double?]] = []
        for (set, prompts) in run.datasets {
            let ids = Set(prompts.map { (prompt: BenchmarkPrompt) in prompt.id })
            var rows: [[String]] = []
            for t in run.temperatures {
                for gamma in gammas {
                    let token = summaries["\(set) \(temperatureLabel(t)) chain:\(gamma) token"]
                    let block = summaries["\(set) \(temperatureLabel(t)) chain:\(gamma) block"]
                    func gain(_ metric: String) -> String {
                        guard let a = token?[metric]?.meanOfGroups, let b = block?[metric]?.meanOfGroups, a > 0
                        else { return "—" }
                        return String(format: "%+.1f %%", (b / a - 1) * 100)
                    }
                    rows.append([
                        set, temperatureLabel(t), "\(gamma)", Summary.cell(token?["tokensPerCall"], digits: 2),
                        Summary.cell(block?["tokensPerCall"], digits: 2), gain("tokensPerCall"),
                        Summary.cell(token?["tokensPerSecond"], digits: 1),
                        Summary.cell(block?["tokensPerSecond"], digits: 1), gain("tokensPerSecond"),
                    ])
                    groups.append("γ=\(gamma) \(temperatureLabel(t))")
                    values.append([token?["tokensPerCall"]?.meanOfGroups, block?["tokensPerCall"]?.meanOfGroups])
                    halves.append([token?["tokensPerCall"]?.halfWidth, block?["tokensPerCall"]?.halfWidth])
                }
            }
            markdown +=
                MarkdownTable(
                    header: [
                        "dataset", "T", "γ", "token: tokens/step", "block: tokens/step", "gain", "token: tokens/s",
                        "block: tokens/s", "gain",
                    ], rows: rows
                ).rendered + "\n"
            // Paired: at every round of both runs, the round's own drafts verified both ways (exact expectations),
            // so the sampling noise of different texts cancels.
            var paired: [[String]] = []
            for t in run.temperatures {
                for gamma in gammas {
                    let keys = ["token", "block"].map { "\(set) \(temperatureLabel(t)) chain:\(gamma) \($0)" }
                    // Both runs of a prompt form one group (a prompt's rounds are not independent).
                    func pooled(_ metric: String) -> ClusteredMean? {
                        var byPrompt: [String: [Double]] = [:]
                        for record in run.log.records
                        where keys.contains(record.configuration) && ids.contains(record.prompt) {
                            byPrompt[record.prompt, default: []] += record.metrics[metric] ?? []
                        }
                        let groups = byPrompt.keys.sorted().compactMap { byPrompt[$0] }.filter { !$0.isEmpty }
                        return groups.isEmpty ? nil : ClusteredMean(groups: groups)
                    }
                    paired.append([
                        set, temperatureLabel(t), "\(gamma)", Summary.cell(pooled("pairedToken"), digits: 3),
                        Summary.cell(pooled("pairedBlock"), digits: 3),
                        pooled("pairedGain").map { g in
                            String(format: "%+.2f %%", g.meanOfGroups * 100)
                                + (g.halfWidth.map { String(format: " ± %.2f", $0 * 100) } ?? "")
                        } ?? "—",
                    ])
                }
            }
            markdown += "Paired (the same drafts verified both ways: at every round of both runs, the exact expected "
            markdown += "tokens per step of each verifier for that round's drafts; mean over runs ± 95 % interval):\n\n"
            markdown +=
                MarkdownTable(
                    header: ["dataset", "T", "γ", "token: E[tokens/step]", "block: E[tokens/step]", "block gain"],
                    rows: paired
                ).rendered + "\n"
        }
        let chart = BarChart(
            title: "Tokens per step: token vs block verification", yLabel: "tokens per step", groups: groups,
            series: ["token", "block"], values: values, halfWidths: halves)
        try run.report(markdown: markdown, chart: chart)
        return markdown
    }
}

/// `specula bench speed`: wall-clock tokens/s of plain decoding and of each method, side by side on each prompt
/// (plain first, then the methods in turn; the order rotates from prompt to prompt), medians and ratios. At
/// temperature 0 every method's output must equal plain decoding's token for token; a difference stops the run.
struct BenchSpeed: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "speed",
        abstract: "Wall-clock speed of plain decoding and each speculative method, side by side (release build).",
        discussion: """
            Defaults: datasets humaneval summarization mt-bench, 3 prompts each, 128 tokens, temperatures 0 and \
            0.7; methods chain:5/token, chain:5+lookahead+lookup/token, chain:4/block, binary:3/spechub, \
            drafts:2:3/rrsw, ngram (SHAPE/VERIFIER as in `specula generate`, +lookahead/+lookup/+stop:P its \
            --lookahead 2, --lookup 2, --draft-stop P; at temperature 0 every verifier is the greedy walk).
            """)

    @OptionGroup var options: BenchOptions
    @Option(
        name: .long, parsing: .upToNextOption,
        help: "Methods: SHAPE[+lookahead[:N]][+lookup[:N]][+stop:P]/VERIFIER, ngram.")
    var methods: [String] = [
        "chain:5/token", "chain:5+lookahead+lookup/token", "chain:4/block", "binary:3/spechub", "drafts:2:3/rrsw",
        "ngram",
    ]

    func validate() throws {
        for method in methods { _ = try DecodingPlan.method(method) }
    }

    func run() throws { _ = try measure() }

    func measure() throws -> String {
        #if DEBUG
            FileHandle.standardError.write(Data("warning: debug build; time with `swift build -c release`\n".utf8))
        #endif
        let parsed = try self.methods.map(DecodingPlan.method)
        let needsDraft = parsed.contains { $0.drafter == .model }
        let run = try BenchRun(
            "speed", options: options, needsDraft: needsDraft, datasets: ["humaneval", "summarization", "mt-bench"],
            prompts: 3, maxTokens: 128, temperatures: [0, 0.7])
        // At temperature 0 the verifier does not matter: one method per shape.
        func methodsAt(_ t: Double) -> [DecodingPlan] {
            guard t == 0 else { return parsed }
            var seen: Set<String> = []
            return parsed.compactMap { method in
                let key = method.variant
                if seen.contains(key) { return nil }
                seen.insert(key)
                var greedy = method
                greedy.verifier = method.drafter == .model ? .greedy : .token
                return greedy
            }
        }
        let configurations = run.temperatures.map(temperatureLabel)
        let steps = try run.stepSeconds()
        run.announce(
            units: run.promptCount * configurations.count,
            secondsPerUnit: Double(run.maxTokens) * steps.target * (1 + 0.8 * Double(parsed.count)) as Double,
            detail: "\(run.promptCount) prompts × \(configurations.count) temperatures, plain + \(parsed.count) methods"
        )
        var unit = 0
        try run.forEachUnit(configurations: configurations) { _, prompt, configuration in
            let t = parseTemperature(configuration)
            let settings = SamplingSettings(temperature: t)
            let tokens = try run.tokens(prompt)
            let all = [DecodingPlan.plain()] + methodsAt(t)
            // Rotate the order so that no method always runs first (or right after plain).
            let order = all.indices.map { all[($0 + unit) % all.count] }
            unit += 1
            var outcomes: [String: DecodingOutcome] = [:]
            for method in order {
                outcomes[method.label] = try run.decode(tokens, method: method, settings: settings, seed: options.seed)
            }
            guard let plain = outcomes["plain"] else { throw CommandError("plain decoding did not run") }
            var metrics: [String: [Double]] = [:]
            for method in all {
                guard let outcome = outcomes[method.label] else { continue }
                if settings.isGreedy && outcome.output != plain.output {
                    let at = zip(plain.output, outcome.output).prefix { $0 == $1 }.count
                    throw CommandError(
                        "prompt \(prompt.id): \(method.label) differs from plain decoding at token \(at) (temperature 0)"
                    )
                }
                for (name, values) in decodingMetrics(outcome) { metrics["\(method.label)|\(name)"] = values }
                metrics["\(method.label)|speedup"] = [plain.seconds / max(outcome.seconds, 1e-9)]
                metrics["\(method.label)|decodeSpeedup"] = [
                    (plain.seconds - plain.targetPrefillSeconds)
                        / max(outcome.seconds - outcome.targetPrefillSeconds, 1e-9)
                ]
            }
            return metrics
        }
        let summaries = run.summaries(configurations: configurations)
        var markdown = "## Speed: plain vs speculative, side by side\n\n\(run.header).\n\n"
        markdown += "Per prompt, plain decoding and every method run one after another (the order rotates). "
        markdown += "End to end: times include the prompt passes. After prefill: the target's prompt pass (the same "
        markdown += "work for every method) is left out of both times, a draft model's prompt pass stays in. Median "
        markdown += "over prompts of tokens/s and of the per-prompt ratios to plain; tokens per call is the mean "
        markdown += "± 95 % interval.\n\n"
        var groups: [String] = []
        var values: [[Double?]] = []
        var series: [String] = []
        let records = run.log.records
        for (set, prompts) in run.datasets {
            let ids = Set(prompts.map { (prompt: BenchmarkPrompt) in prompt.id })
            for t in run.temperatures {
                let key = "\(set) \(temperatureLabel(t))"
                guard let metrics = summaries[key] else { continue }
                let mine = records.filter { $0.configuration == key && ids.contains($0.prompt) }
                func median(_ name: String) -> Double? {
                    let xs = mine.compactMap { $0.metrics[name]?.first }.sorted()
                    return xs.isEmpty ? nil : xs[xs.count / 2]
                }
                markdown += "### \(set), \(temperatureLabel(t))\n\n"
                var rows: [[String]] = []
                var rowValues: [Double?] = []
                for method in [DecodingPlan.plain()] + methodsAt(t) {
                    let label = method.label
                    rows.append([
                        label, median("\(label)|tokensPerSecond").map { String(format: "%.1f", $0) } ?? "—",
                        median("\(label)|speedup").map { String(format: "×%.2f", $0) } ?? "—",
                        median("\(label)|decodeTokensPerSecond").map { String(format: "%.1f", $0) } ?? "—",
                        median("\(label)|decodeSpeedup").map { String(format: "×%.2f", $0) } ?? "—",
                        method.isPlain ? "1" : Summary.cell(metrics["\(label)|tokensPerCall"], digits: 2),
                        method.isPlain ? "" : Summary.cell(metrics["\(label)|acceptance"], digits: 2),
                    ])
                    if !method.isPlain {
                        let name = method.variant + (t == 0 ? "" : " " + method.verifier.rawValue)
                        if !series.contains(name) { series.append(name) }
                    }
                }
                for name in series {
                    let label = methodsAt(t).first { $0.variant + (t == 0 ? "" : " " + $0.verifier.rawValue) == name }?
                        .label
                    rowValues.append(label.flatMap { median("\($0)|speedup") })
                }
                markdown +=
                    MarkdownTable(
                        header: [
                            "method", "tokens/s", "speedup", "tokens/s after prefill", "speedup after prefill",
                            "tokens/call", "acceptance",
                        ],
                        rows: rows
                    ).rendered + "\n"
                groups.append(key)
                values.append(rowValues)
            }
        }
        let chart = BarChart(
            title: "Speedup over plain decoding (median of per-prompt ratios)", yLabel: "speedup", groups: groups,
            series: series, values: values.map { row in row + Array(repeating: nil, count: series.count - row.count) },
            halfWidths: [])
        try run.report(markdown: markdown, chart: chart)
        return markdown
    }
}

/// `specula bench all`: acceptance, trees, block and speed in turn with the same options, then `results.md` in the
/// output directory with all four reports.
struct BenchAll: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "all", abstract: "Run acceptance, trees, block and speed with their defaults; write results.md.")

    @OptionGroup var options: BenchOptions

    func run() throws {
        var sections: [String] = []
        sections.append(try command(BenchAcceptance.self, options: options) { $0.options = $1 }.measure())
        sections.append(try command(BenchTrees.self, options: options) { $0.options = $1 }.measure())
        sections.append(try command(BenchBlock.self, options: options) { $0.options = $1 }.measure())
        sections.append(try command(BenchSpeed.self, options: options) { $0.options = $1 }.measure())
        let path = (options.out as NSString).appendingPathComponent("results.md")
        let text = "# Specula benchmark results\n\n" + sections.joined(separator: "\n")
        do {
            try Data(text.utf8).write(to: URL(fileURLWithPath: path))
        } catch {
            throw CommandError("cannot write '\(path)': \(error.localizedDescription)")
        }
        print("wrote \(path)")
    }
}

/// A benchmark command with its own defaults and the shared options of `bench all`.
func command<C: ParsableCommand>(_ type: C.Type, options: BenchOptions, set: (inout C, BenchOptions) -> Void) throws
    -> C
{
    // Parse with a placeholder to get the command's defaults, then put in the real options and validate them.
    var command = try type.parse(["--target", options.target])
    set(&command, options)
    try command.validate()
    return command
}
