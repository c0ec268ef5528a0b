import Foundation
import SpeculaEngine
import SpeculaModels
import SpeculaTestSupport
import SpeculaVerify
import Testing

enum EngineModels {
    static let directory = TestModels.directory
    static let files = [
        "smollm2": "smollm2-135m-instruct-q4_1.gguf",
        "draft": "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
        "target": "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
    ]
    static var present: Bool {
        files.values.allSatisfy { FileManager.default.fileExists(atPath: directory + "/" + $0) }
    }
    static var required: Bool { TestModels.required }

    static func load(_ name: String) throws -> (Transformer, Tokenizer) {
        let file = try GGUFFile(path: directory + "/" + (files[name] ?? ""))
        return (try Transformer(file: file), try Tokenizer(gguf: file))
    }

    /// Plain greedy decoding of `count` tokens after `prompt`: the library's plain plan (end-of-generation tokens
    /// decoded like any other), the same code `specula generate` runs.
    static func plainGreedy(_ model: Transformer, prompt: [Int], count: Int) throws -> [Int] {
        let loaded = try LoadedModel(transformer: model, tokenizer: Tokenizer(gguf: model.file))
        let plan = DecodingPlan.plain(stop: StopConditions(maxTokens: count, atEndOfGeneration: false))
        let session = try GenerationSession(target: loaded, plan: plan)
        try session.start(prompt: prompt)
        try session.run()
        return session.generated
    }
}

@Suite(
    "Speculative decoding with a draft model", .enabled(if: EngineModels.present || EngineModels.required), .serialized)
struct SpeculativeDecoderTests {
    /// At temperature 0 speculative output equals plain greedy output token for token.
    @Test(arguments: [("smollm2", "smollm2"), ("target", "draft")])
    func greedyEqualsPlain(targetName: String, draftName: String) throws {
        let (target, targetTokenizer) = try EngineModels.load(targetName)
        let (draft, draftTokenizer) = try EngineModels.load(draftName)
        let prompt = targetTokenizer.encode("def fibonacci(n):\n    \"\"\"Return the n-th Fibonacci number.\"\"\"\n")
        let count = 40
        let plain = try EngineModels.plainGreedy(target, prompt: prompt, count: count)
        for depth in [1, 3, 5] {
            let decoder = try SpeculativeDecoder(
                target: target, draft: draft, targetTokenizer: targetTokenizer, draftTokenizer: draftTokenizer,
                settings: .greedy, depth: depth, capacity: prompt.count + count + 16)
            try decoder.start(prompt: prompt)
            var output: [Int] = []
            while output.count < count { output += try decoder.round() }
            #expect(Array(output.prefix(count)) == plain, "\(targetName)/\(draftName) depth \(depth)")
            if targetName == draftName {
                // A model as its own draft accepts every draft.
                #expect(decoder.telemetry.acceptedTokens == decoder.telemetry.draftedTokens)
            }
        }
    }

    /// A model as its own draft accepts every draft token at any temperature (p = q at every position), with
    /// token and block verification; and the caches stay those of plain decoding of the emitted tokens.
    @Test(arguments: SpeculativeDecoder.ChainVerifier.allCases)
    func selfDraftAcceptsEverythingAndCachesMatch(verifier: SpeculativeDecoder.ChainVerifier) throws {
        let (model, tokenizer) = try EngineModels.load("smollm2")
        let prompt = tokenizer.encode("Once upon a time")
        let decoder = try SpeculativeDecoder(
            target: model, draft: model, targetTokenizer: tokenizer, draftTokenizer: tokenizer,
            settings: SamplingSettings(temperature: 0.8), depth: 4, verifier: verifier, capacity: 128, seed: 7)
        try decoder.start(prompt: prompt)
        var emitted: [Int] = []
        for _ in 0..<6 { emitted += try decoder.round() }
        #expect(decoder.telemetry.acceptedTokens == decoder.telemetry.draftedTokens)
        #expect(decoder.telemetry.emittedTokens == 6 * 5)
        if verifier == .token {
            // p = q at every node: α* = 1 and every reached node accepted.
            #expect(decoder.telemetry.reachedNodes == 6 * 4)
            #expect(abs(decoder.telemetry.optimalAcceptance - 1) < 1e-9)
            #expect(abs(decoder.telemetry.efficiency - 1) < 1e-9)
        }
        // Rollback check: the next-token logits after these rounds equal plain decoding of prompt + emitted.
        let next = try decoder.rootLogits()
        let cache = model.makeCache(capacity: 128)
        let plain = try model.forward(tokens: prompt + emitted, cache: cache)[0]
        #expect(next == plain)
    }
}

@Suite(
    "Speculative decoding with draft trees", .enabled(if: EngineModels.present || EngineModels.required), .serialized)
struct SpeculativeTreeTests {
    /// Temperature 0 with trees: the greedy walk's output equals plain greedy decoding.
    @Test(arguments: ["binary", "eagle"])
    func greedyTreesEqualPlain(shape: String) throws {
        let (target, targetTokenizer) = try EngineModels.load("target")
        let (draft, draftTokenizer) = try EngineModels.load("draft")
        let prompt = targetTokenizer.encode("for i in range(10):\n    print(")
        let count = 24
        let plain = try EngineModels.plainGreedy(target, prompt: prompt, count: count)
        let tree = shape == "binary" ? try TreeTopology.binary(levels: 3) : try TreeTopology.eagle()
        let decoder = try SpeculativeDecoder(
            target: target, draft: draft, targetTokenizer: targetTokenizer, draftTokenizer: draftTokenizer,
            settings: .greedy, depth: tree.depth, tree: tree, nodeVerifier: RRSVerifier(),
            capacity: prompt.count + count + 64)
        try decoder.start(prompt: prompt)
        var output: [Int] = []
        while output.count < count { output += try decoder.round() }
        #expect(Array(output.prefix(count)) == plain)
    }

    /// A model as its own draft: every verifier accepts a whole root-to-leaf path at every step (α = 1 when
    /// p = q), and the caches stay those of plain decoding.
    @Test(arguments: ["rrs", "rrsw", "kseq", "spechub", "greedy", "chain"])
    func selfDraftTreesAcceptWholePaths(rule: String) throws {
        let (model, tokenizer) = try EngineModels.load("smollm2")
        let verifier: any NodeVerifier
        let tree: TreeTopology
        switch rule {
        case "rrs": (verifier, tree) = (RRSVerifier(), try TreeTopology.complete(branching: 3, depth: 2))
        case "rrsw":
            (verifier, tree) = (RRSWithoutReplacementVerifier(), try TreeTopology.complete(branching: 2, depth: 3))
        case "kseq": (verifier, tree) = (KSEQVerifier(), try TreeTopology.complete(branching: 2, depth: 2))
        case "spechub": (verifier, tree) = (SpecHubVerifier(), try TreeTopology.binary(levels: 4))
        case "greedy": (verifier, tree) = (GreedyVerifier(), try TreeTopology.complete(branching: 3, depth: 2))
        default: (verifier, tree) = (TokenVerifier(), try TreeTopology.chain(3))
        }
        let prompt = tokenizer.encode("Once upon a time")
        let decoder = try SpeculativeDecoder(
            target: model, draft: model, targetTokenizer: tokenizer, draftTokenizer: tokenizer,
            settings: SamplingSettings(temperature: 0.8, topK: 40), depth: tree.depth, tree: tree,
            nodeVerifier: verifier, capacity: 160, seed: 11)
        decoder.treeOptimum = true
        try decoder.start(prompt: prompt)
        var emitted: [Int] = []
        for _ in 0..<5 { emitted += try decoder.round() }
        #expect(decoder.telemetry.emittedTokens == 5 * (tree.depth + 1), "\(rule): \(decoder.telemetry)")
        // p = q at every node: α* of any draft law is 1 and the verifier reaches it.
        #expect(decoder.telemetry.reachedNodes == 5 * tree.depth, "\(rule)")
        #expect(abs(decoder.telemetry.optimalAcceptance - 1) < 1e-9, "\(rule): \(decoder.telemetry.optimalAcceptance)")
        #expect(abs(decoder.telemetry.efficiency - 1) < 1e-9, "\(rule)")
        let cache = model.makeCache(capacity: 160)
        let plain = try model.forward(tokens: prompt + emitted, cache: cache)[0]
        #expect(try decoder.rootLogits() == plain, "\(rule): caches differ from plain decoding")
    }
}

@Suite(
    "Cheaper drafting: reduced draft head and confidence stop",
    .enabled(if: EngineModels.present || EngineModels.required), .serialized)
struct CheapDraftingTests {
    /// A restricted output computes exactly the full model's logits for the kept tokens (their rows gathered and
    /// packed, each row's sum in the same order) and −∞ for the others; control tokens at the end are kept.
    @Test func restrictedOutputKeepsTheChosenLogits() throws {
        let (full, tokenizer) = try EngineModels.load("draft")
        let (reduced, _) = try EngineModels.load("draft")
        let ranges = tokenizer.draftVocabulary(first: 32768)
        #expect(ranges.first == 0..<32768)
        #expect(ranges.count >= 2, "the end-of-turn markers follow the head")
        try reduced.restrictOutput(to: ranges)
        let prompt = tokenizer.encode("def add(a, b):\n    return")
        let a = try full.forward(tokens: prompt, cache: full.makeCache(capacity: 64))[0]
        let b = try reduced.forward(tokens: prompt, cache: reduced.makeCache(capacity: 64))[0]
        #expect(Array(a[0..<32768]) == Array(b[0..<32768]), "the kept logits are the full head's")
        let kept = Set(ranges.flatMap { Array($0) })
        for id in stride(from: 32768, to: a.count, by: 1) {
            if kept.contains(id) {
                #expect(a[id] == b[id], "token \(id)")
            } else if b[id] != -.infinity {
                Issue.record("token \(id) outside the head has logit \(b[id])")
                break
            }
        }
        #expect(throws: ModelError.self) { try reduced.restrictOutput(to: [10..<20, 5..<8]) }
        // Scattered ids (as a head with the prompt's tokens is): gathered into one matrix, the same logits.
        let scattered = [151_645, 7, 99_999, 40_000, 7, 3, 120_001] + Array(1000..<1037)
        try reduced.restrictOutput(toTokens: scattered)
        #expect(reduced.outputTokenCount == Set(scattered).count)
        let c = try reduced.forward(tokens: prompt, cache: reduced.makeCache(capacity: 64))[0]
        for id in Set(scattered) { #expect(a[id] == c[id], "token \(id)") }
        #expect(c.filter { $0 != -.infinity }.count == Set(scattered).count)
        #expect(throws: ModelError.self) { try reduced.restrictOutput(toTokens: [5, 151_936]) }
        #expect(throws: ModelError.self) { try reduced.restrictOutput(toTokens: []) }
    }

    /// A draft with layers left out computes other logits, reads fewer bytes a step (exactly the skipped layers'
    /// tensors), and comes back whole with an empty set; a layer it does not have, or all of them, is an error.
    @Test func skippedDraftLayersGiveAnotherCheaperDraft() throws {
        let (draft, tokenizer) = try EngineModels.load("draft")
        let loaded = try LoadedModel(path: EngineModels.directory + "/" + (EngineModels.files["draft"] ?? ""))
        let prompt = tokenizer.encode("def add(a, b):\n    return")
        func logits() throws -> [Float] { try draft.forward(tokens: prompt, cache: draft.makeCache(capacity: 64))[0] }
        let whole = try logits()
        try draft.skipLayers([20, 21])
        #expect(draft.skippedLayers == [20, 21])
        #expect(try logits() != whole)
        try draft.skipLayers([])
        #expect(try logits() == whole)
        let layerBytes = loaded.transformer.file.tensors.filter { $0.name.hasPrefix("blk.20.") }.reduce(0) {
            $0 + $1.byteCount
        }
        let before = loaded.stepBytes
        try loaded.transformer.skipLayers([20])
        #expect(layerBytes > 0 && loaded.stepBytes == before - layerBytes)
        let count = draft.config.layerCount
        #expect(throws: ModelError.self) { try draft.skipLayers([count]) }
        #expect(throws: ModelError.self) { try draft.skipLayers([-1]) }
        #expect(throws: ModelError.self) { try draft.skipLayers(Set(0..<count)) }
        #expect(draft.skippedLayers.isEmpty)
    }

    /// A draft re-quantized to Q4_0 computes other logits (close to the stored model's: the same top token on a
    /// plain code prompt), converts exactly the matrices stored with more than 4.5 bits per weight, and reads
    /// fewer bytes a step by exactly those tensors' difference; a format it cannot convert to is an error.
    @Test func aRequantizedDraftIsAnotherCheaperDraft() throws {
        let loaded = try LoadedModel(path: EngineModels.directory + "/" + (EngineModels.files["draft"] ?? ""))
        let draft = loaded.transformer
        let prompt = loaded.tokenizer.encode("def add(a, b):\n    return")
        func logits() throws -> [Float] { try draft.forward(tokens: prompt, cache: draft.makeCache(capacity: 64))[0] }
        let stored = try logits()
        // The tensors to convert, from the file's own table: 2-D layer tensors of more than 18 bytes per 32 values.
        let wide = loaded.file.tensors.filter {
            $0.name.hasPrefix("blk.") && $0.dimensions.count == 2 && $0.byteCount * 32 > $0.elementCount * 18
        }
        let saved = wide.reduce(0) { $0 + $1.byteCount - $1.elementCount / 32 * 18 }
        let before = loaded.stepBytes
        let outputBefore = loaded.outputBytes
        #expect(throws: ModelError.self) { try draft.requantize(to: .q8_0, output: false) }
        #expect(try draft.requantize(to: .q4_0, output: false) == wide.count)
        #expect(wide.count > 0 && saved > 0 && loaded.stepBytes == before - saved)
        #expect(loaded.outputBytes == outputBefore)
        let requantized = try logits()
        #expect(requantized != stored)
        func top(_ row: [Float]) -> Int { row.indices.max { row[$0] < row[$1] } ?? -1 }
        #expect(top(requantized) == top(stored))
        // Re-quantized while loading (each matrix packed once, from its new rows): the same model.
        let atLoad = try LoadedModel(
            path: loaded.path, requantization: Requantization(type: .q4_0, output: false))
        let atLoadLogits = try atLoad.transformer.forward(
            tokens: prompt, cache: atLoad.transformer.makeCache(capacity: 64))[0]
        #expect(atLoadLogits == requantized)
        #expect(atLoad.stepBytes == loaded.stepBytes)
        #expect(throws: ModelError.self) {
            try LoadedModel(path: loaded.path, requantization: Requantization(type: .q6_K, output: false))
        }
        // Nothing is left above 4.5 bits per weight: a second call converts nothing.
        #expect(try draft.requantize(to: .q4_0, output: false) == 0)
        let output = try #require(loaded.file.tensors.first { $0.name == "output.weight" })
        #expect(try draft.requantize(to: .q4_0, output: true) == 1)
        #expect(loaded.outputBytes == output.elementCount / 32 * 18)
        #expect(loaded.stepBytes == before - saved - (output.byteCount - output.elementCount / 32 * 18))
    }

    /// The lookahead only saves draft passes: with it and without it, the same seed gives the same rounds and
    /// output at temperature 0 and above, and every draft taken from a lookahead row is one pass fewer.
    @Test func lookaheadChangesOnlyTheDraftPasses() throws {
        let (target, targetTokenizer) = try EngineModels.load("target")
        let (draft, draftTokenizer) = try EngineModels.load("draft")
        let prompt = targetTokenizer.encode(
            "def count_words(text):\n    \"\"\"Count the words of text.\"\"\"\n    return len(text.split())\n\n"
                + "def count_lines(text):\n    \"\"\"Count the lines of text.\"\"\"\n")
        let count = 40
        for settings in [SamplingSettings.greedy, SamplingSettings(temperature: 0.8, topK: 40)] {
            var runs: [(output: [Int], telemetry: SpeculativeDecoder.Telemetry)] = []
            for lookahead in [0, 3] {
                let decoder = try SpeculativeDecoder(
                    target: target, draft: draft, targetTokenizer: targetTokenizer, draftTokenizer: draftTokenizer,
                    settings: settings, depth: 5, capacity: prompt.count + count + 16, seed: 11)
                decoder.lookahead = lookahead
                try decoder.start(prompt: prompt)
                var output: [Int] = []
                while output.count < count { output += try decoder.round() }
                runs.append((output, decoder.telemetry))
            }
            let (without, with) = (runs[0], runs[1])
            #expect(with.output == without.output, "T = \(settings.temperature)")
            #expect(with.telemetry.acceptedTokens == without.telemetry.acceptedTokens)
            #expect(with.telemetry.lookaheadDrafts > 0, "the prompt's repeated text must be proposed")
            #expect(without.telemetry.lookaheadDrafts == 0)
            #expect(with.telemetry.draftPasses == without.telemetry.draftPasses - with.telemetry.lookaheadDrafts)
        }
    }

    /// Temperature 0: output equals plain greedy decoding with a reduced draft head, the confidence stop, the
    /// lookahead and lookup rounds.
    @Test func greedyStaysExactWithCheaperDrafts() throws {
        let (target, targetTokenizer) = try EngineModels.load("target")
        let (draft, draftTokenizer) = try EngineModels.load("draft")
        try draft.restrictOutput(to: draftTokenizer.draftVocabulary(first: 16384))
        let prompt = targetTokenizer.encode(
            "def is_palindrome(text):\n    \"\"\"Return whether text reads the same backwards.\"\"\"\n")
        let count = 40
        let plain = try EngineModels.plainGreedy(target, prompt: prompt, count: count)
        for (stop, lookahead, lookup) in [(0.0, 0, 0), (0.6, 0, 0), (0.6, 3, 0), (0.0, 2, 2)] {
            let decoder = try SpeculativeDecoder(
                target: target, draft: draft, targetTokenizer: targetTokenizer, draftTokenizer: draftTokenizer,
                settings: .greedy, depth: 5, capacity: prompt.count + count + 16)
            decoder.draftStop = stop
            decoder.lookahead = lookahead
            decoder.lookupMatch = lookup
            try decoder.start(prompt: prompt)
            var output: [Int] = []
            while output.count < count { output += try decoder.round() }
            #expect(
                Array(output.prefix(count)) == plain, "draft stop \(stop), lookahead \(lookahead), lookup \(lookup)")
            if stop > 0 { #expect(decoder.telemetry.stoppedEarly > 0) }
            if lookup > 0 { #expect(decoder.telemetry.lookupRounds > 0, "the docstring's words repeat") }
        }
    }

    /// Chains cut short keep both caches right: a model as its own draft (every draft accepted) with a stop that
    /// fires often, then the next-token logits equal plain decoding of everything emitted.
    @Test func stoppedChainsCommitTheRightRows() throws {
        let (model, tokenizer) = try EngineModels.load("smollm2")
        let prompt = tokenizer.encode("The capital of France is")
        let decoder = try SpeculativeDecoder(
            target: model, draft: model, targetTokenizer: tokenizer, draftTokenizer: tokenizer,
            settings: SamplingSettings(temperature: 0.8), depth: 4, capacity: 160, seed: 3)
        decoder.draftStop = 0.9
        try decoder.start(prompt: prompt)
        var emitted: [Int] = []
        for _ in 0..<10 { emitted += try decoder.round() }
        #expect(decoder.telemetry.stoppedEarly > 0)
        #expect(decoder.telemetry.acceptedTokens == decoder.telemetry.draftedTokens)
        let plain = try model.forward(tokens: prompt + emitted, cache: model.makeCache(capacity: 160))[0]
        #expect(try decoder.rootLogits() == plain)
    }
}

/// The default mode on the real models at temperature 0: whatever rounds it chooses (plain steps, lookup rounds,
/// draft chains with a reduced head and a deferred prompt pass), the output is plain decoding's, token for token —
/// with the draft model on the pinned pair, and with lookup alone on every pinned model.
@Suite(
    "The adaptive mode gives plain decoding's output on the pinned models",
    .enabled(if: EngineModels.present || EngineModels.required), .serialized)
struct AdaptiveModeTests {
    static let prompts = [
        "Write a Python function that checks whether a number is prime.",
        "Summarize: The cat sat on the mat. The cat sat on the mat because the mat was warm. The mat was warm.",
        "Translate to German: The weather is nice today, and we are going to the park.",
    ]

    static func loaded(_ file: String) throws -> LoadedModel {
        try LoadedModel(path: EngineModels.directory + "/" + file)
    }

    static func run(
        _ target: LoadedModel, _ draft: LoadedModel?, _ plan: DecodingPlan, _ prompt: [Int],
        costs: AdaptivePolicy? = nil
    ) throws -> (tokens: [Int], stats: GenerationStats) {
        let session = try GenerationSession(target: target, draft: draft, plan: plan)
        session.adaptiveCosts = costs
        try session.start(prompt: prompt)
        try session.run()
        return (session.generated, session.stats)
    }

    @Test func withTheDraftModel() throws {
        let target = try Self.loaded(EngineModels.files["target"]!)
        let draft = try Self.loaded(EngineModels.files["draft"]!)
        let stop = StopConditions(maxTokens: 64, atEndOfGeneration: false)
        var kinds: [String: Int] = [:]
        for text in Self.prompts {
            let prompt = try target.promptTokens(chat: text)
            let plain = try Self.run(target, nil, .plain(stop: stop), prompt)
            let plan = DecodingPlan(drafter: .model, shape: .adaptive, stop: stop)
            // Live costs on a host where drafting cannot pay choose plain steps and lookups only; so that every
            // kind of round is exercised whatever the host, the costs are pinned to an AVX-512 host's (target
            // step 55 ms, 4 ms a further row; draft 12 ms a token).
            var costs = AdaptivePolicy(hasDraftModel: true)
            costs.setCosts(targetStep: 0.055, targetPerRow: 0.004, draftPerToken: 0.012, draftPerRow: 0.001)
            let adaptive = try Self.run(target, draft, plan, prompt, costs: costs)
            #expect(adaptive.tokens == plain.tokens, "\(text.prefix(20))")
            for (kind, count) in adaptive.stats.adaptive?.rounds ?? [:] { kinds[kind, default: 0] += count }
            #expect(adaptive.stats.adaptive?.targetStepSeconds == 0.055, "the pinned costs were kept")
        }
        // The prompts were chosen so that the mode drafts with the model and looks up.
        #expect((kinds["chain"] ?? 0) > 0 && (kinds["lookup"] ?? 0) > 0, "\(kinds)")
    }

    @Test(arguments: [
        "smollm2-135m-instruct-q4_1.gguf", "gemma-3-270m-q4_k_m.gguf", "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
    ])
    func withLookupAlone(file: String) throws {
        let model = try Self.loaded(file)
        let stop = StopConditions(maxTokens: 48, atEndOfGeneration: false)
        for text in Self.prompts.prefix(2) {
            let prompt = try model.promptTokens(chat: text)
            let plain = try Self.run(model, nil, .plain(stop: stop), prompt)
            let plan = DecodingPlan(drafter: .ngram(longest: 3), shape: .adaptive, stop: stop)
            let adaptive = try Self.run(model, nil, plan, prompt)
            #expect(adaptive.tokens == plain.tokens, "\(file) \(text.prefix(20))")
        }
    }
}

/// Temperature 0: speculative output equals plain greedy decoding token for token on all four pinned models, on
/// several prompts, for every draft shape and drafter the library offers — chains (token and block, lookahead and
/// lookup, the confidence stop), trees (binary, Hu et al.'s, Sequoia's, EAGLE's), `auto`, the default adaptive mode
/// and the n-gram drafters. (At T = 0 every verifier is the greedy walk, so the verifier named with a tree changes
/// nothing; the shapes and the drafters do.) SmolLM2, Gemma 3 and the Qwen draft draft for themselves through a
/// reduced head, so their drafts are really rejected.
@Suite(
    "Greedy speculative output equals plain decoding across models, prompts and plans",
    .enabled(if: EngineModels.present || EngineModels.required), .serialized)
struct GreedyEqualityBreadthTests {
    static let prompts = [
        "Write a Python function that checks whether a number is prime.",
        "Translate to German: The weather is nice today, and we are going to the park.",
        "List three facts about the Moon, one per line.",
    ]
    static let plans = [
        "chain:4/token", "chain:3/block", "chain:5+lookahead+lookup/token", "chain:6+stop:0.5/token",
        "binary:3/spechub", "drafts:2:4/rrsw", "drafts:4:3/rrs", "sequoia:8/greedy", "eagle/kseq", "auto", "adaptive",
        "ngram", "ngram-adaptive", "suffix",
    ]

    /// (target file, draft file or nil for the target itself, reduced draft head).
    static let pairs: [(String, String?, Int)] = [
        ("qwen2.5-coder-1.5b-instruct-q4_k_m.gguf", "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf", 0),
        ("qwen2.5-coder-0.5b-instruct-q4_k_m.gguf", nil, 4096),
        ("smollm2-135m-instruct-q4_1.gguf", nil, 2048),
        ("gemma-3-270m-q4_k_m.gguf", nil, 4096),
    ]

    @Test(arguments: 0..<4)
    func everyPlanOnEveryModel(pair: Int) throws {
        let (targetFile, draftFile, vocabulary) = Self.pairs[pair]
        let target = try LoadedModel(path: EngineModels.directory + "/" + targetFile)
        let draft = try draftFile.map { try LoadedModel(path: EngineModels.directory + "/" + $0) } ?? target
        let stop = StopConditions(maxTokens: 24, atEndOfGeneration: false)
        var drafted = 0
        var rejected = 0
        for text in Self.prompts {
            let prompt = try target.promptTokens(chat: text)
            let plainSession = try GenerationSession(target: target, plan: .plain(stop: stop))
            try plainSession.start(prompt: prompt)
            try plainSession.run()
            let plain = plainSession.generated
            for method in Self.plans {
                var plan = try DecodingPlan(method: method, base: DecodingPlan(stop: stop))
                if plan.drafter == .model { plan.draftVocabulary = vocabulary }
                let session = try GenerationSession(
                    target: target, draft: plan.drafter == .model ? draft : nil, plan: plan)
                if plan.shape == .adaptive && plan.drafter == .model {
                    // Costs where drafting pays, so that chains run whatever this host's speed.
                    var costs = AdaptivePolicy(hasDraftModel: true)
                    costs.setCosts(targetStep: 0.055, targetPerRow: 0.004, draftPerToken: 0.012, draftPerRow: 0.001)
                    session.adaptiveCosts = costs
                }
                try session.start(prompt: prompt)
                try session.run()
                #expect(session.generated == plain, "\(targetFile), \(method), \(text.prefix(24))")
                if let telemetry = session.stats.telemetry {
                    drafted += telemetry.draftedTokens
                    rejected += telemetry.draftedTokens - telemetry.acceptedTokens
                }
            }
        }
        // The drafts were really tested: many drafted, some rejected.
        #expect(drafted > 100 && rejected > 10, "\(targetFile): \(drafted) drafted, \(rejected) rejected")
    }
}
