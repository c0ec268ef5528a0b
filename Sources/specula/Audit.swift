import ArgumentParser
import Foundation
import SpeculaEngine
import SpeculaModels
import SpeculaTheory
import SpeculaVerify

/// `specula audit`: a user-runnable exactness check. Many short generations from one prompt with the chosen
/// drafter and verifier, as many with plain sampling, same settings; the two distributions of token sequences are
/// compared by a chi-square test of homogeneity (and their total-variation distance is printed). Exit code 1 when
/// the p-value is below `--alpha`: speculative decoding would then not be sampling the target's distribution.
struct Audit: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check that speculative sampling gives the target's distribution (chi-square against plain sampling)."
    )

    @Option(name: .long, help: "The target model (GGUF).") var model: String
    @Option(name: .long, help: "The draft model (GGUF); or --drafter ngram.") var draft: String?
    @Option(name: .long, help: "Drafter: model (with --draft) or ngram.") var drafter: String = "model"
    @Option(name: .long, help: "With --drafter ngram: the longest n-gram looked up.") var ngram: Int = 3
    @Option(name: .long, help: "The prompt text.") var prompt: String
    @Flag(name: .long, help: "Wrap the prompt in the model's chat template.") var chat = false
    @Option(name: .long, help: "Tokens per generation (the sequences compared).") var tokens: Int = 2
    @Option(name: .long, help: "Generations per method.") var samples: Int = 400
    // The defaults concentrate the distribution on a few dozen sequences, so that the test has cells to compare.
    @Option(name: .long, help: "Temperature (> 0).") var temperature: Double = 0.8
    @Option(name: .customLong("top-k"), help: "Top-k (0 = off).") var topK: Int = 8
    @Option(name: .customLong("top-p"), help: "Top-p (1 = off).") var topP: Double = 1
    @Option(name: .customLong("min-p"), help: "Min-p (0 = off).") var minP: Double = 0
    @Option(name: .long, help: "Draft tokens per round (a chain).") var depth: Int = 3
    @Option(name: .long, help: "Draft tree (as in `specula generate --tree`).") var tree: String?
    @Option(name: .long, help: "Verifier (as in `specula generate --verifier`).") var verifier: String = "token"
    @Option(
        name: .long, help: "Reduced draft head: first N token ids, control tokens and the prompt's tokens (0 = all).")
    var draftVocabulary: Int = 0
    @Option(name: .long, help: "Fail when the chi-square p-value is below this.") var alpha: Double = 1e-3
    @Option(name: .long, help: "Seed.") var seed: UInt64 = 1

    func validate() throws {
        if !(temperature > 0) { throw ValidationError("--temperature must be > 0 (at 0 both methods are greedy)") }
        if tokens < 1 { throw ValidationError("--tokens must be ≥ 1") }
        if samples < 10 { throw ValidationError("--samples must be ≥ 10") }
        if !(alpha > 0 && alpha < 1) { throw ValidationError("--alpha must be in (0, 1)") }
        if drafter != "model" && drafter != "ngram" { throw ValidationError("unknown --drafter '\(drafter)'") }
        if drafter == "model" && draft == nil { throw ValidationError("--drafter model needs --draft") }
        if drafter == "ngram" && (draft != nil || tree != nil) {
            throw ValidationError("--drafter ngram drafts chains without a model: drop --draft and --tree")
        }
        if SpeculativeDecoder.ChainVerifier(rawValue: verifier) == nil && nodeVerifier(verifier) == nil {
            throw ValidationError("unknown --verifier '\(verifier)'")
        }
        if tree == nil && SpeculativeDecoder.ChainVerifier(rawValue: verifier) == nil {
            throw ValidationError("--verifier \(verifier) verifies trees: give --tree")
        }
    }

    func run() throws {
        let settings = SamplingSettings(temperature: temperature, topK: topK, topP: topP, minP: minP)
        try settings.validate()
        let target = try LoadedModel(path: model)
        let draftModel = try draft.map { try LoadedModel(path: $0) }
        let promptTokens = try target.promptTokens(prompt, chat: chat, system: nil)
        if draftVocabulary > 0, let draftModel {
            try draftModel.restrictDraftHead(first: draftVocabulary, keeping: promptTokens)
        }
        let shape = try tree.map(treeTopology)
        let capacity = promptTokens.count + tokens + max(depth, shape?.nodeCount ?? 0) + 2
        // Plain sampling: the prompt once, then `tokens` tokens per sample from a trimmed cache.
        let cache = target.transformer.makeCache(capacity: capacity)
        let promptLogits = try target.transformer.forward(tokens: promptTokens, cache: cache)[0]
        var generator = SplitMix64(seed: seed)
        var plainSequences: [[Int]] = []
        for _ in 0..<samples {
            _ = cache.trim(to: promptTokens.count)
            var logits = promptLogits
            var sequence: [Int] = []
            while sequence.count < tokens {
                let p = try settings.process(logits: logits.map(Double.init), history: promptTokens + sequence)
                let token = Probability.sampleIndex(p, uniform: generator.nextUniform()) ?? 0
                sequence.append(token)
                if sequence.count < tokens { logits = try target.transformer.forward(tokens: [token], cache: cache)[0] }
            }
            plainSequences.append(sequence)
        }
        // Speculative sampling, the same number of times, from the same prompt (caches rewound each time).
        let chainVerifier = SpeculativeDecoder.ChainVerifier(rawValue: verifier) ?? .token
        let decoder: SpeculativeDecoder
        if let draftModel {
            decoder = try SpeculativeDecoder(
                target: target.transformer, draft: draftModel.transformer, targetTokenizer: target.tokenizer,
                draftTokenizer: draftModel.tokenizer, settings: settings, depth: shape?.depth ?? depth,
                verifier: chainVerifier, tree: shape, nodeVerifier: shape == nil ? nil : nodeVerifier(verifier),
                capacity: capacity, seed: seed &+ 0x5EED)
        } else {
            decoder = try SpeculativeDecoder(
                target: target.transformer, settings: settings, depth: depth, ngram: ngram, verifier: chainVerifier,
                capacity: capacity, seed: seed &+ 0x5EED)
        }
        try decoder.start(prompt: promptTokens)
        var speculativeSequences: [[Int]] = []
        for index in 0..<samples {
            if index > 0 { try decoder.restart(prompt: promptTokens) }
            var sequence: [Int] = []
            while sequence.count < tokens { sequence += try decoder.round() }
            speculativeSequences.append(Array(sequence.prefix(tokens)))
        }
        // Categories: every sequence seen by either method.
        var index: [[Int]: Int] = [:]
        for sequence in plainSequences + speculativeSequences where index[sequence] == nil {
            index[sequence] = index.count
        }
        var speculativeCounts = [Int](repeating: 0, count: index.count)
        var plainCounts = [Int](repeating: 0, count: index.count)
        for sequence in speculativeSequences { speculativeCounts[index[sequence] ?? 0] += 1 }
        for sequence in plainSequences { plainCounts[index[sequence] ?? 0] += 1 }
        let result = TwoSampleTest.compare(speculativeCounts, plainCounts)
        let t = decoder.telemetry
        let drafterName = draftModel == nil ? "ngram:\(ngram)" : (tree ?? "chain:\(depth)")
        print(
            "audit: \(samples) speculative (\(drafterName), \(verifier)) and \(samples) plain samples of \(tokens) tokens, temperature \(temperature)"
        )
        print(
            String(
                format:
                    "%d distinct sequences, %d cells; total variation %.4f; chi-square %.2f on %d df, p = %.4g (fail below %.3g); acceptance %.3f, %.2f tokens/round",
                index.count, result.cells, result.totalVariation, result.statistic, result.degreesOfFreedom,
                result.pValue, alpha, t.acceptanceRate, t.tokensPerStep))
        if result.pValue < alpha {
            print("FAIL: the speculative and plain samples differ beyond chance")
            throw ExitCode(1)
        }
        print("pass: no difference beyond chance")
    }
}
