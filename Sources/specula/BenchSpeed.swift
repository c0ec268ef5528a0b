import ArgumentParser
import Foundation
import SpeculaBench
import SpeculaEngine
import SpeculaModels
import SpeculaTheory
import SpeculaVerify

/// `specula bench speed`: wall-clock tokens/s of plain decoding and of each method, side by side on each prompt
/// (plain first, then the methods in turn; the order rotates from prompt to prompt), medians and ratios. At
/// temperature 0 every method's output must equal plain decoding's token for token; a difference stops the run.
struct BenchSpeed: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "speed",
        abstract: "Wall-clock speed of plain decoding and each speculative method, side by side (release build).",
        discussion: """
            Defaults: datasets humaneval summarization mt-bench, 3 prompts each, 128 tokens, temperatures 0 and \
            0.7; methods adaptive (the default mode of `specula generate --draft D`), chain:5/token, \
            chain:5+lookahead+lookup/token, chain:4/block, binary:3/spechub, drafts:2:3/rrsw, ngram \
            (SHAPE/VERIFIER as in `specula generate`, +lookahead/+lookup/+stop:P its --lookahead 2, --lookup 2, \
            --draft-stop P; ngram-adaptive: lookup rounds, suffix trees or plain steps, no draft model; +trees:N on \
            adaptive or ngram-adaptive: suffix trees of at most N nodes, 0 for none, --suffix-trees N; at temperature \
            0 every verifier is the greedy walk). --dataset spec-bench-tasks runs Spec-Bench's six tasks, a table each.
            """)

    @OptionGroup var options: BenchOptions
    @Option(
        name: .long, parsing: .upToNextOption,
        help:
            "Methods: adaptive[+trees:N], SHAPE[+lookahead[:N]][+lookup[:N]][+stop:P]/VERIFIER, ngram, ngram-adaptive[+trees:N], suffix[:NODES]."
    )
    var methods: [String] = [
        "adaptive", "chain:5/token", "chain:5+lookahead+lookup/token", "chain:4/block", "binary:3/spechub",
        "drafts:2:3/rrsw",
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
            "speed", options: options.runOptions, needsDraft: needsDraft,
            datasets: ["humaneval", "summarization", "mt-bench"],
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
            configurations: configurations,
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
                // Ratios of tokens per second (`speedRatio`): at T > 0 the two runs' texts differ in length.
                metrics["\(method.label)|speedup"] = [
                    speedRatio(
                        tokens: outcome.output.count, seconds: outcome.seconds, plainTokens: plain.output.count,
                        plainSeconds: plain.seconds)
                ]
                metrics["\(method.label)|decodeSpeedup"] = [
                    speedRatio(
                        tokens: outcome.output.count, seconds: outcome.seconds - outcome.targetPrefillSeconds,
                        plainTokens: plain.output.count, plainSeconds: plain.seconds - plain.targetPrefillSeconds)
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
        markdown += "± Student-t 95 % interval (prompts × values).\n\n"
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
