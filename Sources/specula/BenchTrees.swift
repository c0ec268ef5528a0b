import ArgumentParser
import Foundation
import SpeculaBench
import SpeculaEngine
import SpeculaModels
import SpeculaTheory
import SpeculaVerify

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
            "trees", options: options.runOptions, needsDraft: true, datasets: ["mt-bench"], prompts: 2, maxTokens: 64,
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
            configurations: configurations,
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

    /// The verifier pairs compared prompt by prompt: SpecHub's and the greedy law's claims against RRS without
    /// replacement, and each later verifier against RRS.
    static let comparisons = [
        ("spechub", "rrsw"), ("greedy", "rrsw"), ("rrsw", "rrs"), ("spechub", "rrs"), ("kseq", "rrs"),
    ]

    func report(_ run: BenchRun, configurations: [String]) throws -> String {
        let summaries = run.summaries(configurations: configurations)
        var markdown = "## Trees: tokens per target call\n\n\(run.header).\n\n"
        markdown +=
            "Tokens per target call (accepted drafts + 1), mean over prompts ± Student-t 95 % interval (prompts × values); "
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
                // Verifiers compared prompt by prompt: the difference of each prompt's tokens per call.
                let comparisons = Self.comparisons.filter { verifiers.contains($0.0) && verifiers.contains($0.1) }
                // The verifiers of one prompt run one after another, so wall-clock differences are interleaved too.
                for (metric, title) in [
                    ("tokensPerCall", "Tokens per call"),
                    ("tokensPerSecond", "Wall-clock tokens/s (prefill included, the α* telemetry left out)"),
                ] where !comparisons.isEmpty {
                    markdown += "\(title), paired by prompt (each prompt's difference; Student-t 95 % "
                    markdown += "interval over prompts):\n\n"
                    var pairedRows: [[String]] = []
                    for shape in shapes {
                        let label = "\(temperatureLabel(t)) \(shape)"
                        let cells = comparisons.map { a, b in
                            Summary.cell(
                                run.pairedByPrompt(set: set, "\(label) \(a)", "\(label) \(b)", metric: metric),
                                digits: 3)
                        }
                        if cells.contains(where: { $0 != "—" }) { pairedRows.append([shape] + cells) }
                    }
                    markdown +=
                        MarkdownTable(header: ["tree"] + comparisons.map { "\($0) − \($1)" }, rows: pairedRows)
                        .rendered + "\n"
                }
            }
        }
        let chart = BarChart(
            title: "Tokens per target call by tree and verifier", yLabel: "tokens per call", groups: groups,
            series: verifiers, values: values, halfWidths: halves)
        try run.report(markdown: markdown, chart: chart)
        return markdown
    }
}
