import ArgumentParser
import Foundation
import SpeculaBench
import SpeculaEngine
import SpeculaModels
import SpeculaVerify

/// `specula generate`: builds a ``DecodingPlan`` from the flags, runs a ``GenerationSession`` and streams its text.
struct Generate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Generate text with a GGUF model: plain decoding, or speculative with a draft model or prompt lookup."
    )

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
    @Option(
        name: .long,
        help:
            "Draft tokens per round (a fixed chain), or per draft with --drafts (default 4). With no --depth, --tree, --drafts, --lookahead, --lookup or --draft-stop the mode is adaptive: each round is a plain step, a prompt-lookup round or a draft chain, whichever is fastest now."
    )
    var depth: Int?
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
            "Leave these draft layers out of every draft pass (0-based, e.g. 18-21 or 5,9): a cheaper, weaker draft; the output keeps the target's distribution."
    )
    var draftSkipLayers: String?
    @Option(
        name: .long,
        help:
            "Re-quantize the draft's layer matrices stored with more bits per weight to this format at load (q4_0; q4_0+output: the output matrix too): a cheaper, less precise draft; the output keeps the target's distribution."
    )
    var draftRequantize: String?
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
    @Option(
        name: .long,
        help:
            "Drafter: model (with --draft), ngram (prompt lookup, no draft model) or suffix[:NODES] (a tree of the text's earlier continuations, 8 nodes by default, no draft model)."
    )
    var drafter: String?
    @Option(name: .long, help: "With --drafter ngram or suffix: the longest n-gram looked up.") var ngram: Int = 3
    @Option(
        name: .long,
        help:
            "The adaptive mode: the most nodes of a suffix tree (the text's earlier continuations, where it went on several ways) a round may verify instead of a lookup chain (0 = lookup chains only)."
    )
    var suffixTrees: Int = DecodingPlan.suffixTreesDefault

    @Option(
        name: .long,
        help: "Stop where this text appears in the output (repeatable; the text and what follows are not printed).")
    var stop: [String] = []
    @Flag(name: .long, help: "Parse special-token text in a raw prompt (such as <|im_start|>) as special tokens.")
    var special = false
    @Flag(
        name: .long,
        help:
            "The adaptive mode: print each round as a JSON line on standard error (its kind, costs, drafts kept, the estimates after it)."
    )
    var trace = false

    func validate() throws {
        if (prompt == nil) == (promptFile == nil) {
            throw ValidationError("give exactly one of --prompt and --prompt-file")
        }
        if maxTokens < 1 { throw ValidationError("--max-tokens must be ≥ 1") }
        if system != nil && !chat { throw ValidationError("--system needs --chat") }
        if special && chat { throw ValidationError("--special applies to a raw prompt; --chat parses the template's") }
        if let context, context < 1 { throw ValidationError("--context must be ≥ 1") }
        if compare && draft == nil && drafter == nil {
            throw ValidationError("--compare needs --draft or --drafter ngram|suffix")
        }
        if lookahead > 0 && draft == nil { throw ValidationError("--lookahead needs --draft") }
        if lookup > 0 && draft == nil {
            throw ValidationError("--lookup needs --draft (--drafter ngram looks up alone)")
        }
        if draftVocabulary > 0 && draft == nil { throw ValidationError("--draft-vocabulary needs --draft") }
        if let draftSkipLayers {
            if draft == nil { throw ValidationError("--draft-skip-layers needs --draft") }
            _ = try parseLayerList(draftSkipLayers)
        }
        if let draftRequantize {
            if draft == nil { throw ValidationError("--draft-requantize needs --draft") }
            _ = try RequantizeRequest(parsing: draftRequantize)
        }
        if verifier == "auto" && draft == nil { throw ValidationError("--verifier auto needs --draft") }
        if draft == nil && drafter == nil && (tree != nil || drafts > 1 || verifier != "token") {
            throw ValidationError("--tree, --drafts and --verifier need --draft (or --drafter ngram)")
        }
        // Every other rule (ranges, verifier and tree spellings, the cross-setting rules) is the plan's own.
        _ = try plan(hasDraftModel: draft != nil)
    }

    /// The decoding these flags describe.
    func plan(hasDraftModel: Bool) throws -> DecodingPlan {
        let base = DecodingPlan(
            sampling: SamplingSettings(temperature: temperature, topK: topK, topP: topP, minP: minP),
            stop: StopConditions(maxTokens: maxTokens, sequences: stop), seed: seed, lookahead: lookahead,
            lookup: lookup, draftStop: draftStop, draftVocabulary: draftVocabulary, treeOptimum: stats)
        do {
            var plan = try DecodingPlan(
                hasDraftModel: hasDraftModel, drafter: drafter, ngram: ngram, depth: depth, drafts: drafts, tree: tree,
                verifier: verifier, base: base)
            plan.suffixTrees = suffixTrees
            try plan.validate(hasDraftModel: hasDraftModel)
            return plan
        } catch let error as EngineError {
            throw ValidationError(error.description)
        }
    }

    func run() throws {
        let plan = try plan(hasDraftModel: draft != nil)
        let text = try readPrompt(prompt: prompt, file: promptFile)
        let loadStart = ContinuousClock.now
        let target = try LoadedModel(path: model)
        let requantization = try draftRequantize.map { try RequantizeRequest(parsing: $0).requantization }
        let draftModel = try draft.map {
            try LoadedModel(path: $0, requantization: requantization, sharingTokenizerWith: target)
        }
        let loadSeconds = (ContinuousClock.now - loadStart).inSeconds
        if let draftSkipLayers, let draftModel { try skipLayers(of: draftModel.transformer, draftSkipLayers) }
        let promptTokens =
            chat
            ? try target.promptTokens(chat: text, system: system) : target.promptTokens(text: text, special: special)
        // With --compare, plain decoding first (not printed): its time, and at temperature 0 its text, which the
        // speculative run must reproduce.
        var plain: (text: String, tokens: [Int], seconds: Double, firstToken: Double)? = nil
        if compare {
            let session = try GenerationSession(target: target, plan: plan.plainCounterpart, context: context)
            try session.start(prompt: promptTokens)
            let output = try session.run()
            plain = (output, session.generated, session.stats.seconds, session.stats.firstTokenSeconds)
        }
        let session = try GenerationSession(target: target, draft: draftModel, plan: plan, context: context)
        try session.start(prompt: promptTokens)
        if trace {
            let encoder = JSONEncoder()
            encoder.outputFormatting = .sortedKeys
            session.decoder?.roundObserver = { round in
                if let line = try? encoder.encode(round) {
                    FileHandle.standardError.write(line + Data("\n".utf8))
                }
            }
        }
        try session.run { event in FileHandle.standardOutput.write(Data(event.text.utf8)) }
        FileHandle.standardOutput.write(Data("\n".utf8))
        let result = session.stats
        if stats || compare {
            var fields = statsFields(result)
            fields.append(("loadSeconds", .number(loadSeconds)))
            fields.append(("weights", .string(target.weightCacheStatus.description)))
            if let draftModel { fields.append(("draftWeights", .string(draftModel.weightCacheStatus.description))) }
            if let plain {
                fields.append(("plainSeconds", .number(plain.seconds)))
                fields.append(("speculativeSeconds", .number(result.seconds)))
                // Tokens per second over plain decoding's (`speedRatio`): at T > 0 the two texts differ in length.
                fields.append(("plainTokens", .number(Double(plain.tokens.count))))
                fields.append(
                    (
                        "speedup",
                        .number(
                            speedRatio(
                                tokens: session.generated.count, seconds: result.seconds,
                                plainTokens: plain.tokens.count, plainSeconds: plain.seconds))
                    ))
                fields.append(("plainFirstTokenSeconds", .number(plain.firstToken)))
                if plan.sampling.isGreedy {
                    fields.append(("sameOutput", .bool(plain.tokens == session.generated)))
                }
            }
            FileHandle.standardError.write(Data((JSONValue.object(fields).rendered() + "\n").utf8))
        }
        if let plain, plan.sampling.isGreedy, plain.tokens != session.generated {
            let at = zip(plain.tokens, session.generated).prefix { $0 == $1 }.count
            throw CommandError(
                "speculative output differs from plain decoding at token \(at) at temperature 0 (a bug: please report it)"
            )
        }
    }

    /// The JSON statistics: counts and speeds, then (speculative) the rounds, the time split, α*, `auto`'s plans.
    func statsFields(_ s: GenerationStats) -> [(String, JSONValue)] {
        var fields: [(String, JSONValue)] = [
            ("promptTokens", .integer(s.promptTokens)), ("generatedTokens", .integer(s.generatedTokens)),
            ("finishReason", .string(s.finishReason?.rawValue ?? "none")),
            ("prefillTokensPerSecond", .number(Double(s.promptTokens) / max(s.prefillSeconds, 1e-9))),
            ("firstTokenSeconds", .number(s.firstTokenSeconds)),
            (
                "decodeTokensPerSecond",
                .number(Double(max(s.generatedTokens - 1, 1)) / max(s.seconds - s.prefillSeconds, 1e-9))
            ),
            ("tokensPerSecond", .number(s.tokensPerSecond)),
        ]
        if let t = s.telemetry {
            fields += [
                ("rounds", .integer(s.rounds)), ("tokensPerStep", .number(s.tokensPerStep)),
                ("acceptanceRate", .number(s.acceptanceRate)), ("shape", .string(s.shape)),
                ("verifier", .string(s.verifier)), ("drafter", .string(s.drafter)),
                ("draftSeconds", .number(s.draftSeconds)), ("targetPassSeconds", .number(s.targetPassSeconds)),
                ("verificationSeconds", .number(s.verificationSeconds)), ("stoppedEarly", .integer(t.stoppedEarly)),
                ("draftPasses", .integer(t.draftPasses)), ("lookaheadDrafts", .integer(t.lookaheadDrafts)),
                ("lookupRounds", .integer(t.lookupRounds)), ("lookupAccepted", .integer(t.lookupAccepted)),
                ("suffixTreeRounds", .integer(t.suffixTreeRounds)),
                ("reachedNodes", .integer(t.reachedNodes)), ("optimalAcceptance", .number(s.optimalAcceptance)),
                ("efficiency", .number(s.efficiency)), ("optimalSeconds", .number(t.optimalSeconds)),
                (
                    "acceptanceByDepth",
                    .array(
                        t.draftedAtDepth.indices.map {
                            .number(Double(t.acceptedAtDepth[$0]) / Double(max(1, t.draftedAtDepth[$0])))
                        })
                ),
                ("childAcceptance", .array(t.childAcceptance.map { .number($0) })),
            ]
        }
        if let auto = s.auto {
            fields.append(
                (
                    "auto",
                    .object([
                        ("measureSeconds", .number(auto.measureSeconds)),
                        ("draftStepSeconds", .number(auto.draftStepSeconds)),
                        (
                            "targetPassSeconds",
                            .object(
                                auto.targetPassSeconds.sorted { (Int($0.key) ?? 0) < (Int($1.key) ?? 0) }.map {
                                    ($0.key, JSONValue.number($0.value))
                                })
                        ),
                        ("trees", .array(auto.trees.map { .string($0) })),
                        ("acceptance", .array(auto.acceptance.map { .number($0) })),
                    ])
                ))
        }
        if let adaptive = s.adaptive {
            func optional(_ value: Double?) -> JSONValue { .number(value ?? 0) }
            fields.append(
                (
                    "adaptive",
                    .object([
                        (
                            "rounds",
                            .object(adaptive.rounds.sorted { $0.key < $1.key }.map { ($0.key, .integer($0.value)) })
                        ),
                        ("targetStepSeconds", optional(adaptive.targetStepSeconds)),
                        ("targetRowSeconds", optional(adaptive.targetRowSeconds)),
                        ("draftTokenSeconds", optional(adaptive.draftTokenSeconds)),
                        ("draftRowSeconds", optional(adaptive.draftRowSeconds)),
                        ("modelAcceptance", .number(adaptive.modelAcceptance)),
                        ("lookupAcceptance", .array(adaptive.lookupAcceptance.map { .number($0) })),
                    ])
                ))
        }
        fields.append(("peakResidentBytes", .integer(peakResidentBytes())))
        return fields
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
