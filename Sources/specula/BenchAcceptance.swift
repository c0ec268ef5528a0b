import ArgumentParser
import Foundation
import SpeculaModels
import SpeculaTheory
import SpeculaVerify

/// `specula bench acceptance`: the acceptance table of Hu et al. on real models at the full vocabulary. For each
/// prompt the target samples a continuation; at every generated position the processed target and draft
/// distributions give each verifier's exact acceptance (closed forms, or Monte Carlo with a stated sample count
/// where none exists at this vocabulary) and α* of each draft law, for n = 1, 2, 3 drafts. Means over positions and
/// over prompts, with 95 % intervals from the spread of the per-prompt means. Any acceptance above its α* (beyond
/// Monte-Carlo error) stops the run: it would be a bug.
struct BenchAcceptance: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "acceptance",
        abstract: "Acceptance of every verifier and α* on real models and prompts (Hu et al.'s table).")

    @Option(name: .long, help: "The target model (GGUF).") var model: String
    @Option(name: .long, help: "The draft model (GGUF, same tokenizer).") var draft: String
    @Option(name: .long, help: "Prompts: Spec-Bench question.jsonl, HumanEval.jsonl, or one prompt per line.")
    var prompts: String
    @Option(name: .long, help: "Only prompts of these Spec-Bench categories.") var category: [String] = []
    @Option(name: .long, help: "Prompts to use (spread over the file).") var count: Int = 4
    @Option(name: .long, help: "Tokens the target samples per prompt.") var maxTokens: Int = 32
    @Option(name: .long, help: "Temperature of the target's sampling and of both distributions.")
    var temperature: Double = 0.7
    @Option(name: .long, parsing: .upToNextOption, help: "Draft counts n.") var drafts: [Int] = [1, 2, 3]
    @Option(name: .long, help: "Monte-Carlo samples where no exact method exists.") var samples: Int = 200
    @Option(name: .long, help: "Seed.") var seed: UInt64 = 0
    @Option(name: .long, help: "Write the results as JSON to this file.") var json: String?

    func validate() throws {
        if count < 1 || maxTokens < 1 { throw ValidationError("--count and --max-tokens must be ≥ 1") }
        if !(temperature > 0) { throw ValidationError("--temperature must be > 0") }
        if drafts.isEmpty || drafts.contains(where: { $0 < 1 || $0 > 3 }) {
            throw ValidationError("--drafts takes values in 1…3")
        }
        if samples < 2 { throw ValidationError("--samples must be ≥ 2") }
    }

    func run() throws {
        let settings = SamplingSettings(temperature: temperature)
        let target = try LoadedModel(path: model)
        let drafter = try LoadedModel(path: draft)
        try target.tokenizer.requireSameVocabulary(as: drafter.tokenizer)
        let chosen = try benchmarkPrompts(path: prompts, categories: category, count: count)
        // values[n][metric][prompt] = per-position values
        var values: [Int: [String: [[Double]]]] = [:]
        var order: [String] = []
        var generator = SplitMix64(seed: seed)
        let started = Date()
        for (index, prompt) in chosen.enumerated() {
            let tokens = try target.promptTokens(prompt.text, chat: true, system: nil)
            // The target samples the continuation; its distribution at each step is kept.
            let cache = target.transformer.makeCache(capacity: tokens.count + maxTokens + 1)
            var logits = try target.transformer.forward(tokens: tokens, cache: cache)[0]
            var continuation: [Int] = []
            var targetVectors: [[Double]] = []
            while continuation.count < maxTokens {
                let p = try settings.process(logits: logits.map(Double.init), history: tokens + continuation)
                targetVectors.append(p)
                let token = Probability.sampleIndex(p, uniform: generator.nextUniform()) ?? 0
                continuation.append(token)
                if target.tokenizer.endOfGeneration.contains(token) || continuation.count == maxTokens { break }
                logits = try target.transformer.forward(tokens: [token], cache: cache)[0]
            }
            // The draft's distributions at the same positions, in one pass.
            let fed = tokens + continuation.dropLast()
            let rows = Array((tokens.count - 1)..<fed.count)
            let draftLogits = try drafter.transformer.forward(
                tokens: fed, cache: drafter.transformer.makeCache(capacity: fed.count + 1), logitRows: rows)
            for (position, row) in draftLogits.enumerated() {
                let q = try settings.process(
                    logits: row.map(Double.init), history: tokens + continuation.prefix(position))
                let p = targetVectors[position]
                for n in drafts {
                    let report = try BoundReport(
                        target: p, draft: q, drafts: n, samples: samples, seed: seed &+ UInt64(position))
                    try check(report, n: n, prompt: index + 1, position: position)
                    for (name, value) in report.acceptance + report.optimal.map({ ("α* " + $0.0, $0.1) }) {
                        if !order.contains(name) { order.append(name) }
                        var table = values[n, default: [:]]
                        var groups = table[name, default: []]
                        while groups.count <= index { groups.append([]) }
                        groups[index].append(value)
                        table[name] = groups
                        values[n] = table
                    }
                }
            }
            let elapsed = Date().timeIntervalSince(started)
            FileHandle.standardError.write(
                Data(
                    "prompt \(index + 1)/\(chosen.count): \(continuation.count) positions, \(String(format: "%.0f", elapsed)) s, about \(String(format: "%.0f", elapsed / Double(index + 1) * Double(chosen.count - index - 1))) s left\n"
                        .utf8))
        }
        // Table: rows are metrics, columns n.
        let ns = drafts.sorted()
        print(
            "acceptance at temperature \(temperature), \(chosen.count) prompts, up to \(maxTokens) positions each "
                + "(mean over positions; mean of prompt means ± 95 % interval)")
        print("| metric | " + ns.map { "n = \($0)" }.joined(separator: " | ") + " |")
        print("| --- | " + ns.map { _ in "---" }.joined(separator: " | ") + " |")
        var records: [(String, JSONValue)] = []
        for name in order {
            var cells: [String] = []
            var byN: [(String, JSONValue)] = []
            for n in ns {
                guard let groups = values[n]?[name] else {
                    cells.append("—")
                    continue
                }
                let summary = ClusteredMean(groups: groups)
                let interval = summary.halfWidth.map { String(format: " ± %.3f", $0) } ?? ""
                cells.append(String(format: "%.4f (%.3f", summary.mean, summary.meanOfGroups) + interval + ")")
                var fields: [(String, JSONValue)] = [
                    ("mean", .number(summary.mean)), ("meanOfPrompts", .number(summary.meanOfGroups)),
                    ("positions", .integer(summary.count)),
                ]
                if let half = summary.halfWidth { fields.append(("halfWidth95", .number(half))) }
                byN.append(("\(n)", JSONValue.object(fields)))
            }
            print("| \(name) | " + cells.joined(separator: " | ") + " |")
            records.append((name, .object(byN)))
        }
        if let json {
            let document = JSONValue.object([
                ("benchmark", .string("acceptance")), ("model", .string(model)), ("draft", .string(draft)),
                ("temperature", .number(temperature)), ("prompts", .integer(chosen.count)),
                ("monteCarloSamples", .integer(samples)), ("metrics", .object(records)),
            ])
            do {
                try Data((document.rendered(indent: 2) + "\n").utf8).write(to: URL(fileURLWithPath: json))
            } catch {
                throw CommandError("cannot write '\(json)': \(error.localizedDescription)")
            }
        }
    }

    /// Every verifier's acceptance is at most α* of its draft law (RRS: with replacement; RRSw, K-SEQ: without —
    /// K-SEQ draws i.i.d. but is compared with the larger of the two; greedy: the greedy law), up to rounding or
    /// four Monte-Carlo standard errors.
    func check(_ report: BoundReport, n: Int, prompt: Int, position: Int) throws {
        let optimal = Dictionary(report.optimal, uniquingKeysWith: { a, _ in a })
        let slack = 1e-9 + 4 / Double(samples).squareRoot()
        let bound: [String: Double?] = [
            "token": optimal["withReplacement"], "rrs": optimal["withReplacement"],
            "rrsw": optimal["withoutReplacement"] ?? nil, "greedy": optimal["greedy"],
            "kseq": max(optimal["withReplacement"] ?? 0, optimal["withoutReplacement"] ?? 0),
        ]
        for (name, value) in report.acceptance {
            guard let limit = bound[name] ?? nil else { continue }
            if value > limit + slack {
                throw CommandError(
                    "prompt \(prompt), position \(position), n = \(n): \(name) acceptance \(value) exceeds α* \(limit) — a bug"
                )
            }
        }
    }
}
