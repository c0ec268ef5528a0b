import ArgumentParser
import Foundation
import SpeculaBench
import SpeculaEngine
import SpeculaModels
import SpeculaTheory
import SpeculaVerify

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
            "block", options: options.runOptions, needsDraft: true, datasets: ["mt-bench"], prompts: 3, maxTokens: 96,
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
            configurations: configurations,
            secondsPerUnit: Double(run.maxTokens) / 2.5 * (1.3 * steps.target + 4 * steps.draft),
            detail: "\(run.promptCount) prompts × \(configurations.count) settings")
        try run.forEachUnit(configurations: configurations) { _, prompt, configuration in
            decodingMetrics(try run.decode(prompt, configuration: configuration, seed: options.seed, pairedBlock: true))
        }
        let summaries = run.summaries(configurations: configurations)
        var markdown = "## Block vs token verification\n\n\(run.header).\n\n"
        markdown += "Tokens per step (target call) and wall-clock tokens/s (prefill included), mean over prompts "
        markdown += "± Student-t 95 % interval (prompts × values); gain = block / token − 1 of the means.\n\n"
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
                        // Wall clock: the two runs of a prompt follow each other, so the per-prompt difference is
                        // an interleaved, paired one.
                        Summary.cell(
                            run.pairedByPrompt(
                                set: set, "\(temperatureLabel(t)) chain:\(gamma) block",
                                "\(temperatureLabel(t)) chain:\(gamma) token", metric: "tokensPerSecond"), digits: 2),
                    ])
                }
            }
            markdown += "Paired (the same drafts verified both ways: at every round of both runs, the exact expected "
            markdown +=
                "tokens per step of each verifier for that round's drafts; mean over prompts ± Student-t 95 % interval; "
                + "wall clock: each prompt's block run minus its token run, which ran just before it):\n\n"
            markdown +=
                MarkdownTable(
                    header: [
                        "dataset", "T", "γ", "token: E[tokens/step]", "block: E[tokens/step]", "block gain",
                        "block − token tokens/s (by prompt)",
                    ],
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
