import ArgumentParser
import Foundation
import SpeculaEngine
import SpeculaModels
import SpeculaVerify

/// `specula generate`: plain decoding, streaming text as it is produced.
struct Generate: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Generate text with a GGUF model (plain decoding).")

    @Option(name: .long, help: "The GGUF model file.") var model: String
    @Option(name: .long, help: "The prompt text.") var prompt: String?
    @Option(name: .long, help: "Read the prompt from a file.") var promptFile: String?
    @Flag(name: .long, help: "Wrap the prompt in the model's chat template as a user turn.") var chat = false
    @Option(name: .long, help: "System message (with --chat).") var system: String?
    @Option(name: .long, help: "Tokens to generate at most.") var maxTokens: Int = 128
    @Option(name: .long, help: "Temperature (0 = greedy).") var temperature: Double = 0
    @Option(name: .customLong("top-k"), help: "Top-k (0 = off).") var topK: Int = 0
    @Option(name: .customLong("top-p"), help: "Top-p (1 = off).") var topP: Double = 1
    @Option(name: .customLong("min-p"), help: "Min-p (0 = off).") var minP: Double = 0
    @Option(name: .long, help: "Seed for sampling.") var seed: UInt64 = 0
    @Option(name: .long, help: "Context capacity of the cache (default: prompt + max tokens).") var context: Int?
    @Flag(name: .long, help: "Print statistics as JSON to standard error.") var stats = false
    @Option(name: .long, help: "Draft model for speculative decoding (same tokenizer as --model).") var draft: String?
    @Option(name: .long, help: "Draft tokens per round (a chain), or per draft with --drafts.") var depth: Int = 4
    @Option(name: .long, help: "Drafts sharing the root, each a chain of --depth tokens (drafts:N:D).")
    var drafts: Int = 1
    @Option(
        name: .long,
        help:
            "Verifier at temperature > 0: token, block (chains); rrs, rrsw, kseq, spechub, greedy (trees); auto (the tree and verifier from this machine's measured costs and the acceptance seen so far)."
    )
    var verifier: String = "token"
    @Option(
        name: .long,
        help:
            "Draft tree: chain:γ, nary:N:D, drafts:N:D (N chains of D), binary:K, sequoia:B[:a1,a2,…], eagle, or a JSON file of child-rank paths."
    )
    var tree: String?
    @Flag(name: .long, help: "Also run plain decoding first and report the speedup (with --draft).") var compare = false
    @Option(
        name: .long,
        help:
            "Reduced draft head: the draft computes logits only for the first N token ids, the control tokens and the prompt's tokens (0 = all)."
    )
    var draftVocabulary: Int = 0
    @Option(
        name: .long,
        help:
            "Chains: stop drafting when the draft's top probability falls below P (0 = always draft --depth tokens).")
    var draftStop: Double = 0
    @Option(
        name: .long,
        help:
            "Chains with --draft: feed up to N tokens proposed by prompt lookup with each draft pass; the drafts and the output are unchanged, proposals the draft agrees with save draft passes (0 = off)."
    )
    var lookahead: Int = 0
    @Option(
        name: .long,
        help:
            "With --draft: a round whose text ends with an n-gram of at least N tokens seen earlier is drafted by prompt lookup alone (the draft model is not run; 0 = off)."
    )
    var lookup: Int = 0
    @Option(name: .long, help: "Drafter: model (with --draft) or ngram (prompt lookup, no draft model).")
    var drafter: String?
    @Option(name: .long, help: "With --drafter ngram: the longest n-gram looked up.") var ngram: Int = 3

    func validate() throws {
        if (prompt == nil) == (promptFile == nil) {
            throw ValidationError("give exactly one of --prompt and --prompt-file")
        }
        if maxTokens < 1 { throw ValidationError("--max-tokens must be ≥ 1") }
        if system != nil && !chat { throw ValidationError("--system needs --chat") }
        if depth < 1 { throw ValidationError("--depth must be ≥ 1") }
        if drafts < 1 { throw ValidationError("--drafts must be ≥ 1") }
        if drafts > 1 && tree != nil { throw ValidationError("give --drafts or --tree, not both") }
        if verifier == "auto" {
            if tree != nil || drafts > 1 {
                throw ValidationError("--verifier auto chooses the tree: drop --tree/--drafts")
            }
            if draft == nil { throw ValidationError("--verifier auto needs --draft") }
            return
        }
        if SpeculativeDecoder.ChainVerifier(rawValue: verifier) == nil && nodeVerifier(verifier) == nil {
            throw ValidationError(
                "unknown --verifier '\(verifier)' (token, block, rrs, rrsw, kseq, spechub, greedy, auto)")
        }
        if verifier == "block" && tree != nil { throw ValidationError("--verifier block verifies chains; drop --tree") }
        if tree == nil && drafts == 1 && SpeculativeDecoder.ChainVerifier(rawValue: verifier) == nil {
            throw ValidationError(
                "--verifier \(verifier) verifies trees: give --tree (or use token or block for chains)")
        }
        if compare && draft == nil && drafter != "ngram" {
            throw ValidationError("--compare needs --draft or --drafter ngram")
        }
        if let drafter {
            if drafter != "model" && drafter != "ngram" {
                throw ValidationError("unknown --drafter '\(drafter)' (model, ngram)")
            }
            if drafter == "ngram" && draft != nil { throw ValidationError("--drafter ngram takes no --draft") }
            if drafter == "ngram" && tree != nil { throw ValidationError("--drafter ngram drafts chains; drop --tree") }
            if drafter == "model" && draft == nil { throw ValidationError("--drafter model needs --draft") }
        }
        if ngram < 1 { throw ValidationError("--ngram must be ≥ 1") }
        if lookahead < 0 { throw ValidationError("--lookahead must be ≥ 0") }
        if lookahead > 0 && draft == nil { throw ValidationError("--lookahead needs --draft") }
        if lookup < 0 { throw ValidationError("--lookup must be ≥ 0") }
        if lookup > 0 && draft == nil {
            throw ValidationError("--lookup needs --draft (--drafter ngram looks up alone)")
        }
        if draftVocabulary < 0 { throw ValidationError("--draft-vocabulary must be ≥ 0") }
        if !(0...1).contains(draftStop) { throw ValidationError("--draft-stop must be in [0, 1]") }
        if draftVocabulary > 0 && draft == nil { throw ValidationError("--draft-vocabulary needs --draft") }
    }

    func run() throws {
        let settings = SamplingSettings(temperature: temperature, topK: topK, topP: topP, minP: minP)
        try settings.validate()
        let loaded = try LoadedModel(path: model)
        let text = try readPrompt(prompt: prompt, file: promptFile)
        let promptTokens = try loaded.promptTokens(text, chat: chat, system: system)
        let capacity = context ?? (promptTokens.count + maxTokens)
        let cache = loaded.transformer.makeCache(capacity: capacity)
        if promptTokens.count + maxTokens > cache.capacity {
            throw CommandError(
                "prompt (\(promptTokens.count) tokens) + --max-tokens \(maxTokens) exceed the context (\(cache.capacity))"
            )
        }
        if draft != nil || drafter == "ngram" {
            try runSpeculative(loaded: loaded, draftPath: draft, promptTokens: promptTokens, settings: settings)
            return
        }
        var generator = SplitMix64(seed: seed)
        var detokenizer = StreamingDetokenizer(tokenizer: loaded.tokenizer)
        var history = promptTokens
        let started = DispatchTime.now().uptimeNanoseconds
        var logits = try loaded.transformer.forward(tokens: promptTokens, cache: cache)[0]
        let prefilled = DispatchTime.now().uptimeNanoseconds
        var generated = 0
        while generated < maxTokens {
            let probabilities = try settings.process(logits: logits.map(Double.init), history: history)
            let token =
                settings.isGreedy
                ? Probability.argmax(probabilities)
                : (Probability.sampleIndex(probabilities, uniform: generator.nextUniform()) ?? 0)
            generated += 1
            history.append(token)
            if loaded.tokenizer.endOfGeneration.contains(token) { break }
            FileHandle.standardOutput.write(Data(detokenizer.append(token).utf8))
            if generated == maxTokens { break }
            logits = try loaded.transformer.forward(tokens: [token], cache: cache)[0]
        }
        FileHandle.standardOutput.write(Data((detokenizer.finish() + "\n").utf8))
        let finished = DispatchTime.now().uptimeNanoseconds
        if stats {
            let prefillSeconds = Double(prefilled - started) / 1e9
            let decodeSeconds = Double(finished - prefilled) / 1e9
            let report = JSONValue.object([
                ("promptTokens", .integer(promptTokens.count)),
                ("generatedTokens", .integer(generated)),
                ("prefillTokensPerSecond", .number(Double(promptTokens.count) / prefillSeconds)),
                ("decodeTokensPerSecond", .number(Double(max(generated - 1, 1)) / decodeSeconds)),
                ("peakResidentBytes", .integer(peakResidentBytes())),
            ])
            FileHandle.standardError.write(Data((report.rendered() + "\n").utf8))
        }
    }
}

/// The node verifier a CLI name stands for.
func nodeVerifier(_ name: String) -> (any NodeVerifier)? {
    switch name {
    case "token": return TokenVerifier()
    case "rrs": return RRSVerifier()
    case "rrsw": return RRSWithoutReplacementVerifier()
    case "kseq": return KSEQVerifier()
    case "spechub": return SpecHubVerifier()
    case "greedy": return GreedyVerifier()
    default: return nil
    }
}

/// A tree from its CLI spelling.
func treeTopology(_ spec: String) throws -> TreeTopology {
    let parts = spec.split(separator: ":").map(String.init)
    func number(_ index: Int) throws -> Int {
        guard index < parts.count, let value = Int(parts[index]) else {
            throw CommandError(
                "bad --tree '\(spec)': expected chain:γ, nary:N:D, drafts:N:D, binary:K, sequoia:B, eagle or a JSON file"
            )
        }
        return value
    }
    switch parts.first {
    case "chain": return try TreeTopology.chain(try number(1))
    case "drafts": return try TreeTopology.sequences(count: try number(1), depth: try number(2))
    case "sequoia":
        let acceptance: [Double]
        if parts.count > 2 {
            let values = parts[2].split(separator: ",").map { Double($0) }
            guard !values.isEmpty, values.allSatisfy({ $0 != nil }) else {
                throw CommandError("bad --tree '\(spec)': sequoia:BUDGET[:a1,a2,…] takes a comma-separated vector")
            }
            acceptance = values.compactMap { $0 }
        } else {
            acceptance = SequoiaDefaults.acceptance
        }
        let budget = try number(1)
        let planner = try SequoiaPlanner(acceptance: acceptance, maxNodes: budget, maxLevels: min(budget, 12))
        return try planner.tree(nodes: budget, levels: min(budget, 12))
    case "nary": return try TreeTopology.complete(branching: try number(1), depth: try number(2))
    case "binary": return try TreeTopology.binary(levels: try number(1))
    case "eagle": return try TreeTopology.eagle()
    default:
        guard let data = FileManager.default.contents(atPath: spec) else {
            throw CommandError(
                "bad --tree '\(spec)': not chain:γ, nary:N:D, drafts:N:D, binary:K, sequoia:B, eagle, nor a readable file"
            )
        }
        return try TreeTopology.json(data)
    }
}

extension Generate {
    /// Speculative decoding with a draft model (or the n-gram drafter when `draftPath` is nil); with `--compare`,
    /// plain decoding first (not printed) for the speedup.
    func runSpeculative(loaded: LoadedModel, draftPath: String?, promptTokens: [Int], settings: SamplingSettings) throws
    {
        let draftModel = try draftPath.map { try LoadedModel(path: $0) }
        if draftVocabulary > 0, let draftModel {
            try draftModel.restrictDraftHead(first: draftVocabulary, keeping: promptTokens)
        }
        let auto = verifier == "auto"
        let spelled = drafts > 1 ? "drafts:\(drafts):\(depth)" : tree
        let shape = try spelled.map(treeTopology)
        let autoNodes = 32
        let capacity =
            context ?? (promptTokens.count + maxTokens + max(depth, shape?.nodeCount ?? 0, auto ? autoNodes : 0) + 2)
        var plainSeconds: Double? = nil
        if compare {
            let cache = loaded.transformer.makeCache(capacity: capacity)
            var generator = SplitMix64(seed: seed)
            var history = promptTokens
            let start = DispatchTime.now().uptimeNanoseconds
            var logits = try loaded.transformer.forward(tokens: promptTokens, cache: cache)[0]
            for _ in 0..<maxTokens {
                let p = try settings.process(logits: logits.map(Double.init), history: history)
                let token =
                    settings.isGreedy
                    ? Probability.argmax(p) : (Probability.sampleIndex(p, uniform: generator.nextUniform()) ?? 0)
                history.append(token)
                if loaded.tokenizer.endOfGeneration.contains(token) { break }
                logits = try loaded.transformer.forward(tokens: [token], cache: cache)[0]
            }
            plainSeconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        }
        let chainVerifier = SpeculativeDecoder.ChainVerifier(rawValue: verifier) ?? .token
        let decoder: SpeculativeDecoder
        // --verifier auto: measure this machine's costs, plan the fastest tree from a prior acceptance vector, and
        // re-plan every few rounds from the acceptance observed (chains at temperature 0, where the greedy walk
        // keeps one child per node; the greedy-law verifier at branching nodes otherwise).
        var planner: AutoPlanner? = nil
        var autoTrees: [String] = []
        var autoSeconds = 0.0
        if auto, let draftModel {
            let start = DispatchTime.now().uptimeNanoseconds
            let cost = try CostModel.measure(
                target: loaded.transformer, draft: draftModel.transformer, context: promptTokens, maxNodes: autoNodes)
            let prior = settings.isGreedy ? [0.8] : SequoiaDefaults.acceptance
            planner = AutoPlanner(cost: cost, prior: prior, maxNodes: autoNodes)
            autoSeconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        }
        let autoShape = try planner.map { try $0.plan(acceptance: $0.prior) }
        if let autoShape { autoTrees.append(describe(autoShape)) }
        if let draftModel, let autoShape {
            decoder = try SpeculativeDecoder(
                target: loaded.transformer, draft: draftModel.transformer, targetTokenizer: loaded.tokenizer,
                draftTokenizer: draftModel.tokenizer, settings: settings, depth: autoShape.depth, tree: autoShape,
                nodeVerifier: GreedyVerifier(), capacity: capacity, seed: seed)
        } else if let draftModel {
            decoder = try SpeculativeDecoder(
                target: loaded.transformer, draft: draftModel.transformer, targetTokenizer: loaded.tokenizer,
                draftTokenizer: draftModel.tokenizer, settings: settings, depth: shape?.depth ?? depth,
                verifier: chainVerifier, tree: shape, nodeVerifier: shape == nil ? nil : nodeVerifier(verifier),
                capacity: capacity, seed: seed)
        } else {
            decoder = try SpeculativeDecoder(
                target: loaded.transformer, settings: settings, depth: depth, ngram: ngram, verifier: chainVerifier,
                capacity: capacity, seed: seed)
        }
        decoder.draftStop = draftStop
        decoder.lookahead = lookahead
        decoder.lookupMatch = lookup
        decoder.treeOptimum = stats
        var detokenizer = StreamingDetokenizer(tokenizer: loaded.tokenizer)
        let start = DispatchTime.now().uptimeNanoseconds
        try decoder.start(prompt: promptTokens)
        var generated = 0
        var plainPeriods = 0  // auto: planning periods in a row that chose plain steps
        generation: while generated < maxTokens {
            for token in try decoder.round() {
                generated += 1
                if loaded.tokenizer.endOfGeneration.contains(token) { break generation }
                FileHandle.standardOutput.write(Data(detokenizer.append(token).utf8))
                if generated == maxTokens { break generation }
            }
            if let planner, decoder.telemetry.rounds % 8 == 0 {
                let t = decoder.telemetry
                let next = try planner.next(
                    acceptance: planner.acceptance(reached: t.rankReached, accepted: t.rankAccepted),
                    plainPeriods: &plainPeriods)
                if next != decoder.tree {
                    try decoder.setTree(next)
                    autoTrees.append(describe(next))
                }
            }
        }
        FileHandle.standardOutput.write(Data((detokenizer.finish() + "\n").utf8))
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        if stats || compare {
            let t = decoder.telemetry
            var fields: [(String, JSONValue)] = [
                ("promptTokens", .integer(promptTokens.count)), ("generatedTokens", .integer(generated)),
                ("rounds", .integer(t.rounds)), ("tokensPerStep", .number(t.tokensPerStep)),
                ("acceptanceRate", .number(t.acceptanceRate)),
                ("depth", .integer(decoder.tree?.depth ?? depth)),
                ("treeNodes", .integer(decoder.tree?.nodeCount ?? depth + 1)),
                ("verifier", .string(settings.isGreedy ? "greedy walk" : auto ? "greedy (auto)" : verifier)),
                ("drafter", .string(draftModel == nil ? "ngram" : "model")),
                ("tokensPerSecond", .number(Double(generated) / seconds)),
                ("draftSeconds", .number(t.draftSeconds)), ("verifySeconds", .number(t.verifySeconds)),
                ("otherRoundSeconds", .number(t.otherSeconds)), ("stoppedEarly", .integer(t.stoppedEarly)),
                ("draftPasses", .integer(t.draftPasses)), ("lookaheadDrafts", .integer(t.lookaheadDrafts)),
                ("lookupRounds", .integer(t.lookupRounds)), ("lookupAccepted", .integer(t.lookupAccepted)),
                ("reachedNodes", .integer(t.reachedNodes)), ("optimalAcceptance", .number(t.optimalAcceptance)),
                ("efficiency", .number(t.efficiency)), ("optimalSeconds", .number(t.optimalSeconds)),
                (
                    "acceptanceByDepth",
                    .array(
                        t.draftedAtDepth.indices.map {
                            .number(Double(t.acceptedAtDepth[$0]) / Double(max(1, t.draftedAtDepth[$0])))
                        })
                ),
                ("childAcceptance", .array(t.childAcceptance.map { .number($0) })),
            ]
            if let planner {
                fields.append(
                    (
                        "auto",
                        .object([
                            ("measureSeconds", .number(autoSeconds)),
                            ("draftStepSeconds", .number(planner.cost.draftStep)),
                            (
                                "verifySeconds",
                                .object(planner.cost.verify.map { ("\($0.nodes)", JSONValue.number($0.seconds)) })
                            ),
                            ("trees", .array(autoTrees.map { .string($0) })),
                            (
                                "acceptance",
                                .array(
                                    planner.acceptance(reached: t.rankReached, accepted: t.rankAccepted).map {
                                        .number($0)
                                    })
                            ),
                        ])
                    ))
            }
            fields += [
                ("peakResidentBytes", .integer(peakResidentBytes()))
            ]
            if let plainSeconds {
                fields.append(("plainSeconds", .number(plainSeconds)))
                fields.append(("speculativeSeconds", .number(seconds)))
                fields.append(("speedup", .number(plainSeconds / seconds)))
            }
            FileHandle.standardError.write(Data((JSONValue.object(fields).rendered() + "\n").utf8))
        }
    }
}

/// A model file opened for inference: the transformer, its tokenizer and chat template.
struct LoadedModel {
    let file: GGUFFile
    let transformer: Transformer
    let tokenizer: Tokenizer
    let template: ChatTemplate?

    init(path: String) throws {
        file = try GGUFFile(path: path)
        transformer = try Transformer(file: file)
        tokenizer = try Tokenizer(gguf: file)
        template = try ChatTemplate.forModel(file)
    }

    /// The prompt's tokens: raw text (BOS as the metadata asks), or a chat turn rendered by the template with the
    /// generation prompt (special tokens parsed, no extra BOS: the template writes it when the model wants one).
    /// `--draft-vocabulary N`: logits only for the first `count` token ids, the control tokens and the prompt's own
    /// tokens (answers reuse the prompt's names, which the first ids often miss).
    func restrictDraftHead(first count: Int, keeping prompt: [Int]) throws {
        try transformer.restrictOutput(
            toTokens: tokenizer.draftVocabulary(first: count).flatMap { Array($0) } + prompt)
    }

    func promptTokens(_ text: String, chat: Bool, system: String?) throws -> [Int] {
        if !chat { return tokenizer.encode(text) }
        guard let template else { throw CommandError("\(file.path) has no chat template") }
        var messages: [ChatMessage] = []
        if let system { messages.append(ChatMessage(role: "system", content: system)) }
        messages.append(ChatMessage(role: "user", content: text))
        let bos = tokenizer.bos.map { tokenizer.tokens[$0] } ?? ""
        let eos = tokenizer.eos.map { tokenizer.tokens[$0] } ?? ""
        let rendered = try template.render(messages: messages, addGenerationPrompt: true, bosToken: bos, eosToken: eos)
        return tokenizer.encode(rendered, addSpecial: false, parseSpecial: true)
    }
}

func readPrompt(prompt: String?, file: String?) throws -> String {
    if let prompt { return prompt }
    guard let file, let data = FileManager.default.contents(atPath: file) else {
        throw CommandError("cannot read the prompt file '\(file ?? "")'")
    }
    return String(decoding: data, as: UTF8.self)
}

/// Peak resident set size of this process (VmHWM), in bytes.
func peakResidentBytes() -> Int {
    guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return 0 }
    for line in status.split(separator: "\n") where line.hasPrefix("VmHWM:") {
        let digits = line.split(separator: " ").compactMap { Int($0) }
        return (digits.first ?? 0) * 1024
    }
    return 0
}

/// The per-child acceptance vector `sequoia:BUDGET` plans with when none is given.
enum SequoiaDefaults {
    /// Measured on the pinned pair: a_r, the fraction of rounds in which the walk accepted the draft of child rank
    /// r at a root with 8 drafts drawn without replacement (`--tree nary:8:1 --verifier rrsw --temperature 0.6`,
    /// `childAcceptance` in `--stats`; 3 chat prompts, 138 rounds; ranks 5–8 pooled, being rare).
    static let acceptance: [Double] = [0.83, 0.08, 0.03, 0.015, 0.004, 0.004, 0.004, 0.004]
}

/// A tree in a few characters for the stats: nodes, depth, and the children of the root.
func describe(_ tree: TreeTopology) -> String {
    tree.nodeCount == 1
        ? "no drafts (plain steps)"
        : tree.children.allSatisfy { $0.count <= 1 }
            ? "chain:\(tree.depth)" : "\(tree.nodeCount) nodes, depth \(tree.depth), root \(tree.children[0].count)"
}
