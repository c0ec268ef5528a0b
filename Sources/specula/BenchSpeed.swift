import ArgumentParser
import Foundation
import SpeculaEngine
import SpeculaKernels
import SpeculaModels
import SpeculaVerify

/// `specula bench speed`: plain against speculative decoding on benchmark prompts, measured side by side — for each
/// prompt and run, both decodings one after the other (which one first alternates), each including its prefill. At
/// temperature 0 the two outputs must be the same tokens; a difference stops the benchmark with an error.
struct BenchSpeed: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "speed",
        abstract: "Speedup of speculative over plain decoding on benchmark prompts (release build).")

    @Option(name: .long, help: "The target model (GGUF).") var model: String
    @Option(name: .long, help: "The draft model (GGUF, same tokenizer).") var draft: String?
    @Option(name: .long, help: "Drafter: model (with --draft) or ngram (prompt lookup).") var drafter: String = "model"
    @Option(name: .long, help: "With --drafter ngram: the longest n-gram looked up.") var ngram: Int = 3
    @Option(
        name: .long,
        help:
            "Prompts: a Spec-Bench question.jsonl (first turns), HumanEval.jsonl (scripts/fetch-models humaneval), or a text file with one prompt per line."
    )
    var prompts: String
    @Option(name: .long, help: "Only prompts of these Spec-Bench categories (default: all).")
    var category: [String] = []
    @Option(name: .long, help: "Prompts to use (spread evenly over the file).") var count: Int = 8
    @Option(name: .long, help: "Tokens to generate per prompt at most.") var maxTokens: Int = 192
    @Option(name: .long, help: "Draft tokens per round (a chain).") var depth: Int = 5
    @Option(name: .long, help: "Draft tree (as in `specula generate --tree`).") var tree: String?
    @Option(name: .long, help: "Verifier (as in `specula generate --verifier`).") var verifier: String = "token"
    @Option(name: .long, help: "Temperature (0 = greedy, outputs checked equal).") var temperature: Double = 0
    @Option(name: .long, help: "Reduced draft head: first N token ids and control tokens (0 = all).")
    var draftVocabulary: Int = 0
    @Option(name: .long, help: "Chains: stop drafting below this draft top probability (0 = off).")
    var draftStop: Double = 0
    @Option(name: .long, help: "Repetitions of each prompt.") var runs: Int = 1
    @Option(name: .long, help: "Seed for sampling.") var seed: UInt64 = 0
    @Option(name: .long, help: "Write the results as JSON to this file.") var json: String?

    func validate() throws {
        if count < 1 { throw ValidationError("--count must be ≥ 1") }
        if maxTokens < 1 { throw ValidationError("--max-tokens must be ≥ 1") }
        if depth < 1 { throw ValidationError("--depth must be ≥ 1") }
        if runs < 1 { throw ValidationError("--runs must be ≥ 1") }
        if drafter != "model" && drafter != "ngram" {
            throw ValidationError("unknown --drafter '\(drafter)' (model, ngram)")
        }
        if drafter == "model" && draft == nil { throw ValidationError("--drafter model needs --draft") }
        if drafter == "ngram" && (draft != nil || tree != nil) {
            throw ValidationError("--drafter ngram drafts chains without a model: drop --draft and --tree")
        }
        if ngram < 1 { throw ValidationError("--ngram must be ≥ 1") }
        if draftVocabulary < 0 { throw ValidationError("--draft-vocabulary must be ≥ 0") }
        if SpeculativeDecoder.ChainVerifier(rawValue: verifier) == nil && nodeVerifier(verifier) == nil {
            throw ValidationError("unknown --verifier '\(verifier)'")
        }
        if tree == nil && SpeculativeDecoder.ChainVerifier(rawValue: verifier) == nil {
            throw ValidationError("--verifier \(verifier) verifies trees: give --tree")
        }
    }

    func loadPrompts() throws -> [(category: String, text: String)] {
        try benchmarkPrompts(path: prompts, categories: category, count: count)
    }

    func run() throws {
        #if DEBUG
            FileHandle.standardError.write(Data("warning: debug build; time with `swift build -c release`\n".utf8))
        #endif
        let settings = SamplingSettings(temperature: temperature)
        let target = try LoadedModel(path: model)
        let draftModel = try draft.map { try LoadedModel(path: $0) }
        if draftVocabulary > 0, let draftModel {
            try draftModel.transformer.restrictOutput(to: draftModel.tokenizer.draftVocabulary(first: draftVocabulary))
        }
        let shape = try tree.map(treeTopology)
        let chosen = try loadPrompts()
        print(
            "target \(model)\ndraft \(draft ?? "n-gram lookup (longest \(ngram))")\n\(chosen.count) prompts × \(runs) runs, \(maxTokens) tokens at most, "
                + "\(tree ?? "chain:\(depth)"), verifier \(settings.isGreedy ? "greedy walk" : verifier), "
                + "temperature \(temperature), draft vocabulary \(draftVocabulary == 0 ? "all" : String(draftVocabulary)), "
                + "draft stop \(draftStop)"
        )
        func now() -> UInt64 { DispatchTime.now().uptimeNanoseconds }
        var rows: [JSONValue] = []
        var ratios: [Double] = []
        var plainTotal = 0.0
        var speculativeTotal = 0.0
        var tokensTotal = 0
        var rounds = 0
        var accepted = 0
        var drafted = 0
        var draftSeconds = 0.0
        var verifySeconds = 0.0
        var roundSeconds = 0.0
        for (index, prompt) in chosen.enumerated() {
            let tokens = try target.promptTokens(prompt.text, chat: true, system: nil)
            let capacity = tokens.count + maxTokens + max(depth, shape?.nodeCount ?? 0) + 2
            for run in 0..<runs {
                var plainOutput: [Int] = []
                var speculativeOutput: [Int] = []
                var plainSeconds = 0.0
                var speculativeSeconds = 0.0
                var telemetry = SpeculativeDecoder.Telemetry()
                func plain() throws {
                    let cache = target.transformer.makeCache(capacity: capacity)
                    var generator = SplitMix64(seed: seed &+ UInt64(run))
                    var history = tokens
                    let start = now()
                    var logits = try target.transformer.forward(tokens: tokens, cache: cache)[0]
                    var output: [Int] = []
                    while output.count < maxTokens {
                        let p = try settings.process(logits: logits.map(Double.init), history: history)
                        let token =
                            settings.isGreedy
                            ? Probability.argmax(p)
                            : (Probability.sampleIndex(p, uniform: generator.nextUniform()) ?? 0)
                        output.append(token)
                        history.append(token)
                        if target.tokenizer.endOfGeneration.contains(token) || output.count == maxTokens { break }
                        logits = try target.transformer.forward(tokens: [token], cache: cache)[0]
                    }
                    plainSeconds = Double(now() - start) / 1e9
                    plainOutput = output
                }
                func speculative() throws {
                    let chainVerifier = SpeculativeDecoder.ChainVerifier(rawValue: verifier) ?? .token
                    let decoder: SpeculativeDecoder
                    if let draftModel {
                        decoder = try SpeculativeDecoder(
                            target: target.transformer, draft: draftModel.transformer,
                            targetTokenizer: target.tokenizer, draftTokenizer: draftModel.tokenizer,
                            settings: settings, depth: shape?.depth ?? depth, verifier: chainVerifier, tree: shape,
                            nodeVerifier: shape == nil ? nil : nodeVerifier(verifier), capacity: capacity,
                            seed: seed &+ UInt64(run))
                    } else {
                        decoder = try SpeculativeDecoder(
                            target: target.transformer, settings: settings, depth: depth, ngram: ngram,
                            verifier: chainVerifier, capacity: capacity, seed: seed &+ UInt64(run))
                    }
                    decoder.draftStop = draftStop
                    let start = now()
                    try decoder.start(prompt: tokens)
                    var output: [Int] = []
                    generation: while output.count < maxTokens {
                        for token in try decoder.round() {
                            output.append(token)
                            if target.tokenizer.endOfGeneration.contains(token) || output.count == maxTokens {
                                break generation
                            }
                        }
                    }
                    speculativeSeconds = Double(now() - start) / 1e9
                    speculativeOutput = output
                    telemetry = decoder.telemetry
                }
                if (index + run) % 2 == 0 {
                    try plain()
                    try speculative()
                } else {
                    try speculative()
                    try plain()
                }
                if settings.isGreedy && plainOutput != speculativeOutput {
                    let at = zip(plainOutput, speculativeOutput).prefix { $0 == $1 }.count
                    throw CommandError(
                        "prompt \(index + 1): speculative output differs from plain at token \(at) (temperature 0)")
                }
                let ratio = plainSeconds / speculativeSeconds
                ratios.append(ratio)
                plainTotal += plainSeconds
                speculativeTotal += speculativeSeconds
                tokensTotal += speculativeOutput.count
                rounds += telemetry.rounds
                accepted += telemetry.acceptedTokens
                drafted += telemetry.draftedTokens
                draftSeconds += telemetry.draftSeconds
                verifySeconds += telemetry.verifySeconds
                roundSeconds += telemetry.roundSeconds
                print(
                    String(
                        format: "%2d %-12@ %4d tokens  plain %6.2f s  speculative %6.2f s  ×%.2f  %.2f tokens/round",
                        index + 1, prompt.category as NSString, speculativeOutput.count, plainSeconds,
                        speculativeSeconds, ratio, telemetry.tokensPerStep))
                rows.append(
                    .object([
                        ("prompt", .integer(index + 1)), ("category", .string(prompt.category)),
                        ("run", .integer(run)), ("tokens", .integer(speculativeOutput.count)),
                        ("plainSeconds", .number(plainSeconds)), ("speculativeSeconds", .number(speculativeSeconds)),
                        ("speedup", .number(ratio)), ("tokensPerRound", .number(telemetry.tokensPerStep)),
                        ("acceptanceRate", .number(telemetry.acceptanceRate)),
                    ]))
            }
        }
        let median = ratios.sorted()[ratios.count / 2]
        let overall = plainTotal / speculativeTotal
        print(
            String(
                format:
                    "speedup: median ×%.2f, overall ×%.2f (plain %.1f tokens/s, speculative %.1f tokens/s); %.2f tokens/round, acceptance %.3f",
                median, overall, Double(tokensTotal) / plainTotal, Double(tokensTotal) / speculativeTotal,
                rounds > 0 ? Double(tokensTotal) / Double(rounds) : 0,
                drafted > 0 ? Double(accepted) / Double(drafted) : 0))
        print(
            String(
                format:
                    "speculative time: rounds %.1f s (draft %.1f s, verify %.1f s, other %.1f s), prefill and setup %.1f s",
                roundSeconds, draftSeconds, verifySeconds, max(0, roundSeconds - draftSeconds - verifySeconds),
                speculativeTotal - roundSeconds))
        if let json {
            let document = JSONValue.object([
                ("benchmark", .string("speed")), ("model", .string(model)),
                ("draft", draft.map { .string($0) } ?? .string("ngram:\(ngram)")),
                ("shape", .string(tree ?? "chain:\(depth)")), ("temperature", .number(temperature)),
                ("draftVocabulary", .integer(draftVocabulary)), ("draftStop", .number(draftStop)),
                ("draftSeconds", .number(draftSeconds)), ("verifySeconds", .number(verifySeconds)),
                ("roundSeconds", .number(roundSeconds)), ("medianSpeedup", .number(median)),
                ("overallSpeedup", .number(overall)), ("runs", .array(rows)),
            ])
            do {
                try Data((document.rendered(indent: 2) + "\n").utf8).write(to: URL(fileURLWithPath: json))
            } catch {
                throw CommandError("cannot write '\(json)': \(error.localizedDescription)")
            }
        }
    }
}

/// Benchmark prompts: first turns of a Spec-Bench `question.jsonl`, HumanEval tasks (`HumanEval.jsonl`), or the
/// non-empty lines of a text file; only `categories` when given; `count` of them spread evenly over the file.
func benchmarkPrompts(path: String, categories: [String], count: Int) throws -> [(category: String, text: String)] {
    guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8)
    else { throw CommandError("cannot read prompts '\(path)'") }
    var all: [(category: String, text: String)] = []
    for (number, line) in text.split(separator: "\n", omittingEmptySubsequences: true).enumerated() {
        if path.hasSuffix(".jsonl") {
            let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
            if let turns = object?["turns"] as? [String], let first = turns.first {
                all.append(((object?["category"] as? String) ?? "", first))
            } else if let code = object?["prompt"] as? String {
                // HumanEval: a function signature and docstring to complete.
                all.append(("humaneval", "Complete the following Python function.\n\n```python\n\(code)```"))
            } else {
                throw CommandError(
                    "\(path):\(number + 1): neither a Spec-Bench question (\"turns\") nor a HumanEval task (\"prompt\")"
                )
            }
        } else {
            all.append(("", String(line)))
        }
    }
    if !categories.isEmpty { all = all.filter { categories.contains($0.category) } }
    guard !all.isEmpty else { throw CommandError("no prompts in '\(path)' match") }
    let n = min(count, all.count)
    return (0..<n).map { all[$0 * all.count / n] }
}
