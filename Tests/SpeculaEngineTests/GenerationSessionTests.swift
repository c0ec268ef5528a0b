import Foundation
import SpeculaEngine
import SpeculaModels
import SpeculaVerify
import Testing

/// The generation API on the synthetic pair (byte tokenizer, ChatML template): every plan gives plain decoding's
/// tokens at temperature 0, stop sequences cut the text exactly, cancellation and bad input end cleanly.
@Suite("Generation sessions")
struct GenerationSessionTests {
    static let target = SyntheticModel(seed: 11)
    static func models() throws -> (target: LoadedModel, draft: LoadedModel) {
        func loaded(_ model: SyntheticModel) throws -> LoadedModel {
            let transformer = try model.load()
            return try LoadedModel(transformer: transformer, tokenizer: Tokenizer(gguf: transformer.file))
        }
        return (try loaded(target), try loaded(target.draft(perturbation: 0.6)))
    }
    static let prompts: [[Int]] = [Array("the cat sat on".utf8).map(Int.init), [104, 105], Array(0..<40)]

    static func generate(
        _ target: LoadedModel, _ draft: LoadedModel?, _ plan: DecodingPlan, prompt: [Int]
    ) throws -> (tokens: [Int], text: String, reason: FinishReason?) {
        let session = try GenerationSession(target: target, draft: draft, plan: plan)
        try session.start(prompt: prompt)
        let text = try session.run()
        return (session.generated, text, session.finishReason)
    }

    @Test(arguments: [
        "chain:4/token", "chain:3/block", "binary:3/spechub", "drafts:2:3/rrsw", "sequoia:8/greedy", "eagle/rrs",
        "nary:3:2/kseq", "ngram", "ngram:2", "chain:5+lookahead+lookup/token", "chain:6+stop:0.5/token", "adaptive",
        "adaptive+lookahead/block", "ngram-adaptive", "suffix", "suffix:3",
    ])
    func everyPlanGivesPlainTokensAtTemperatureZero(method: String) throws {
        let (target, draft) = try Self.models()
        let stop = StopConditions(maxTokens: 48, atEndOfGeneration: false)
        for prompt in Self.prompts {
            let plain = try Self.generate(target, nil, .plain(stop: stop), prompt: prompt)
            let plan = try DecodingPlan(method: method, base: DecodingPlan(stop: stop))
            let speculative = try Self.generate(target, draft, plan, prompt: prompt)
            #expect(plain.tokens.count == 48)
            #expect(speculative.tokens == plain.tokens, "\(method), prompt \(prompt.prefix(4))")
            #expect(speculative.text == plain.text)
            #expect(speculative.reason == .length)
        }
    }

    /// The default mode's first token comes with the prompt pass, as plain decoding's does: one target pass (the
    /// prompt's, which feeds its last token too) before the first token, not two. A fixed shape (here n-gram chains,
    /// so that every pass counted is the target's) feeds the last token with its first round's drafts, so its first
    /// token takes a second pass. Counted by a batcher the generation runs alone in.
    @Test(arguments: [("adaptive", 1), ("ngram-adaptive", 1), ("plain", 1), ("ngram", 2)])
    func theDefaultModesFirstTokenComesWithThePromptPass(method: String, passes: Int) throws {
        let (target, draft) = try Self.models()
        let stop = StopConditions(maxTokens: 12, atEndOfGeneration: false)
        let plan =
            method == "plain" ? .plain(stop: stop) : try DecodingPlan(method: method, base: DecodingPlan(stop: stop))
        let batcher = ForwardBatcher()
        let session = try GenerationSession(target: target, draft: draft, plan: plan)
        session.batcher = batcher
        let prompt = Self.prompts[0]
        try session.start(prompt: prompt)
        let first = try #require(try session.next())
        #expect(!first.tokens.isEmpty)
        let targetPasses = batcher.statistics.passes
        #expect(targetPasses == passes, "\(method): \(targetPasses) passes before the first token")
        while try session.next() != nil {}
        let plain = try Self.generate(target, nil, .plain(stop: stop), prompt: prompt)
        #expect(session.generated == plain.tokens)
        // A restart returns to the state after the prompt pass: the same first token without a pass.
        try session.restart()
        let before = batcher.statistics.passes
        let again = try #require(try session.next())
        #expect(again.tokens.first == plain.tokens.first)
        if method.hasSuffix("adaptive") { #expect(batcher.statistics.passes == before) }
    }

    @Test(arguments: ["chain:6/token", "binary:4/rrsw", "eagle/rrs", "ngram"])
    func aFullContextShortensTheLastRounds(method: String) throws {
        // A context of exactly the prompt and the token limit: trees give way to chains, chains shorten, and the
        // last rounds are plain steps — the output is still plain decoding's, at T = 0 and (by law) at T > 0.
        let (target, draft) = try Self.models()
        let prompt = Self.prompts[0]
        let stop = StopConditions(maxTokens: 30, atEndOfGeneration: false)
        let plain = try Self.generate(target, nil, .plain(stop: stop), prompt: prompt)
        let plan = try DecodingPlan(method: method, base: DecodingPlan(stop: stop))
        let session = try GenerationSession(target: target, draft: draft, plan: plan, context: prompt.count + 30)
        try session.start(prompt: prompt)
        try session.run()
        #expect(session.generated == plain.tokens)
        #expect(session.finishReason == .length)
        var sampled = plan
        sampled.sampling = SamplingSettings(temperature: 0.9)
        let hot = try GenerationSession(target: target, draft: draft, plan: sampled, context: prompt.count + 30)
        try hot.start(prompt: prompt)
        try hot.run()
        #expect(hot.generated.count == 30)
    }

    @Test func reducedDraftHeadStaysExactAndStaysInItsSession() throws {
        let (target, draft) = try Self.models()
        let stop = StopConditions(maxTokens: 32, atEndOfGeneration: false)
        let prompt = Self.prompts[0]
        let plain = try Self.generate(target, nil, .plain(stop: stop), prompt: prompt)
        var plan = DecodingPlan(drafter: .model, shape: .chain(4), stop: stop)
        plan.draftVocabulary = 40
        let session = try GenerationSession(target: target, draft: draft, plan: plan)
        try session.start(prompt: prompt)
        try session.run()
        #expect(session.generated == plain.tokens)
        // The session's draft head computes only its tokens …
        let head = try #require(session.decoder?.draftOutputHead)
        #expect(Set(head.tokens) == Set(draft.draftVocabulary(first: 40, keeping: prompt)))
        let restricted = try #require(try session.decoder?.draftRootLogits())
        #expect(restricted.filter { $0 == -.infinity }.count == restricted.count - head.tokens.count)
        // … while the model, and another session on it, keep the whole vocabulary.
        let whole = try Scoring.logits(draft.transformer, tokens: prompt, rows: [prompt.count - 1])[0]
        #expect(whole.allSatisfy { $0.isFinite })
        let other = try GenerationSession(
            target: target, draft: draft, plan: DecodingPlan(drafter: .model, shape: .chain(4), stop: stop))
        try other.start(prompt: prompt)
        let otherLogits = try #require(try other.decoder?.draftRootLogits())
        #expect(otherLogits.allSatisfy { $0.isFinite })
    }

    @Test func stopSequencesCutTheTextWhereTheyBegin() throws {
        let (target, draft) = try Self.models()
        let prompt = Self.prompts[0]
        let full = try Self.generate(
            target, nil, .plain(stop: StopConditions(maxTokens: 60, atEndOfGeneration: false)), prompt: prompt)
        let characters = Array(full.text)
        try #require(characters.count > 20)
        for start in [3, 9, 15] {
            let stopText = String(characters[start..<(start + 3)])
            let firstAt = try #require(full.text.range(of: stopText))
            let expected = String(full.text[..<firstAt.lowerBound])
            for (plan, model) in [(DecodingPlan.plain(), nil as LoadedModel?), (DecodingPlan(drafter: .model), draft)] {
                var plan = plan
                plan.stop = StopConditions(
                    maxTokens: 60, sequences: ["\u{1}never", stopText], atEndOfGeneration: false)
                let session = try GenerationSession(target: target, draft: model, plan: plan)
                try session.start(prompt: prompt)
                var pieces: [String] = []
                while let event = try session.next() {
                    pieces.append(event.text)
                    // No event shows any part of the stop sequence's match.
                    #expect(!pieces.joined().contains(stopText))
                }
                #expect(pieces.joined() == expected, "stop '\(stopText)'")
                #expect(session.finishReason == .stopSequence)
                #expect(session.generated.count < 60)
            }
        }
        // A stop sequence whose beginning ends the text is held back and then released: the text is whole.
        let tail = String(characters.suffix(2)) + "\u{1}x"
        var plan = DecodingPlan.plain(stop: StopConditions(maxTokens: 60, sequences: [tail], atEndOfGeneration: false))
        plan.seed = 0
        let held = try Self.generate(target, nil, plan, prompt: prompt)
        #expect(held.text == full.text)
        #expect(held.reason == .length)
    }

    /// The end-of-generation token ends a generation right after it, plain and speculative: the same seeded run
    /// without the stop, cut after its first end token. Sampled at temperature 1 over seeds until a run says the end
    /// token within 200 tokens (the synthetic model's greedy path may never say it); a seed must be found.
    @Test func endOfGenerationStopsWithoutItsText() throws {
        let (target, draft) = try Self.models()
        let ends = target.tokenizer.endOfGeneration
        try #require(!ends.isEmpty)
        for (name, drafter) in [("plain", Drafter.none), ("speculative", .model)] {
            var checked = false
            for seed in 0..<40 where !checked {
                var plan = DecodingPlan(
                    drafter: drafter, sampling: SamplingSettings(temperature: 1),
                    stop: StopConditions(maxTokens: 200, atEndOfGeneration: false), seed: UInt64(seed))
                let free = try Self.generate(target, drafter == .none ? nil : draft, plan, prompt: Self.prompts[2])
                // Any of the end tokens ends it (a set: the synthetic tokenizer has more than one).
                guard let at = free.tokens.firstIndex(where: ends.contains) else { continue }
                plan.stop = StopConditions(maxTokens: 200)
                let stopped = try Self.generate(target, drafter == .none ? nil : draft, plan, prompt: Self.prompts[2])
                #expect(stopped.reason == .stop, "\(name), seed \(seed)")
                #expect(stopped.tokens == Array(free.tokens[...at]), "\(name), seed \(seed)")
                #expect(!stopped.text.contains("<|endoftext|>"), "\(name): the end token's text was shown")
                checked = true
            }
            #expect(checked, "\(name): no seed of 40 said the end token within 200 tokens")
        }
    }

    @Test func cancelEndsBeforeTheNextRound() throws {
        let (target, draft) = try Self.models()
        let session = try GenerationSession(
            target: target, draft: draft, plan: DecodingPlan(drafter: .model, stop: StopConditions(maxTokens: 64)))
        try session.start(prompt: Self.prompts[0])
        let first = try #require(try session.next())
        #expect(!first.tokens.isEmpty)
        let before = session.generated
        session.cancel()
        let last = try #require(try session.next())
        #expect(last.finishReason == .cancelled && last.tokens.isEmpty)
        #expect(session.generated == before)
        #expect(try session.next() == nil)
        #expect(session.stats.finishReason == .cancelled)
    }

    @Test func badInputIsAnErrorNamingIt() throws {
        let (target, draft) = try Self.models()
        let plain = try GenerationSession(target: target, plan: .plain())
        #expect(throws: EngineError.badInput(field: "prompt", reason: "the prompt is empty (it encodes to no token)")) {
            try plain.start(prompt: [])
        }
        #expect(throws: EngineError.self) { try plain.start(prompt: [5, 100_000]) }
        let small = try GenerationSession(
            target: target, plan: .plain(stop: StopConditions(maxTokens: 10)), context: 12)
        #expect(throws: EngineError.contextLengthExceeded(promptTokens: 5, maxTokens: 10, context: 12)) {
            try small.start(prompt: [1, 2, 3, 4, 5])
        }
        #expect(throws: EngineError.self) { try GenerationSession(target: target, plan: .plain(), context: -1) }
        #expect(throws: EngineError.self) { try small.next() }  // before start
        // Plans that cannot run.
        let bad: [DecodingPlan] = [
            DecodingPlan(drafter: .model, shape: try DraftShape(spelling: "binary:3"), verifier: .block),
            DecodingPlan(drafter: .model, shape: try DraftShape(spelling: "binary:3"), verifier: .token),
            DecodingPlan(drafter: .model, shape: try DraftShape(spelling: "drafts:3:2"), verifier: .spechub),
            DecodingPlan(drafter: .ngram(longest: 3), shape: try DraftShape(spelling: "binary:3")),
            DecodingPlan(drafter: .ngram(longest: 3), lookahead: 2),
            DecodingPlan(drafter: .none, stop: StopConditions(maxTokens: 0)),
            DecodingPlan(drafter: .none, stop: StopConditions(maxTokens: 4, sequences: [""])),
            DecodingPlan(drafter: .model, shape: .chain(0)),
            DecodingPlan(drafter: .model, shape: .chain(Int.max)),
            DecodingPlan(drafter: .model, lookahead: Int.max),
            DecodingPlan(drafter: .none, sampling: SamplingSettings(temperature: -1)),
        ]
        for plan in bad {
            #expect(throws: EngineError.self, "\(plan.spelling)") {
                try GenerationSession(target: target, draft: draft, plan: plan)
            }
        }
        // A draft model is needed, and must share the target's vocabulary.
        #expect(throws: EngineError.self) { try GenerationSession(target: target, plan: DecodingPlan(drafter: .model)) }
        let other = try SyntheticModel(vocabularySize: 300, seed: 2).load()
        let mismatched = try LoadedModel(transformer: other, tokenizer: target.tokenizer)
        #expect(throws: EngineError.self) {
            try GenerationSession(target: target, draft: mismatched, plan: DecodingPlan(drafter: .model))
        }
    }

    @Test func restartDrawsAnotherSampleFromTheSamePrompt() throws {
        let (target, _) = try Self.models()
        let plan = DecodingPlan.plain(
            sampling: SamplingSettings(temperature: 1), stop: StopConditions(maxTokens: 6, atEndOfGeneration: false),
            seed: 3)
        let session = try GenerationSession(target: target, plan: plan)
        try session.start(prompt: Self.prompts[0])
        var samples: Set<[Int]> = []
        for index in 0..<20 {
            if index > 0 { try session.restart() }
            try session.run()
            #expect(session.generated.count == 6)
            samples.insert(session.generated)
        }
        #expect(samples.count > 1)
        // The first sample is what a fresh session with the same seed draws.
        let fresh = try GenerationSession(target: target, plan: plan)
        try fresh.start(prompt: Self.prompts[0])
        try fresh.run()
        try session.restart()
        #expect(fresh.generated.count == 6)
    }

    @Test func messagesAreRenderedByTheTemplate() throws {
        let (target, _) = try Self.models()
        let messages = [
            ChatMessage(role: "system", content: "be brief"), ChatMessage(role: "user", content: "hi"),
            ChatMessage(role: "assistant", content: "hello"), ChatMessage(role: "user", content: "again"),
        ]
        let tokens = try target.promptTokens(messages: messages)
        let text = target.tokenizer.decode(tokens)
        #expect(text.contains("be brief") && text.contains("hello") && text.hasSuffix("assistant\n"))
        #expect(throws: ModelError.self) { try target.promptTokens(messages: []) }
        let session = try GenerationSession(target: target, plan: .plain(stop: StopConditions(maxTokens: 3)))
        try session.start(messages: messages)
        #expect(session.promptTokens == tokens)
    }
}

/// The one vocabulary of plans: the CLI's flags and the benchmarks' method spellings give the same plans, and bad
/// or huge spellings are errors before any work.
@Suite("Decoding plans")
struct DecodingPlanTests {
    @Test func flagsAndMethodSpellingsAgree() throws {
        let base = DecodingPlan(stop: StopConditions(maxTokens: 16))
        let pairs: [(String, (tree: String?, depth: Int, drafts: Int, verifier: String))] = [
            ("chain:4/block", ("chain:4", 4, 1, "block")),
            ("chain:4/block", (nil, 4, 1, "block")),
            ("chain:6/token", (nil, 6, 1, "token")),
            ("drafts:2:3/rrsw", (nil, 3, 2, "rrsw")),
            ("binary:3/spechub", ("binary:3", 4, 1, "spechub")),
        ]
        for (method, flags) in pairs {
            let fromMethod = try DecodingPlan(method: method, base: base)
            let fromFlags = try DecodingPlan(
                hasDraftModel: true, drafter: nil, ngram: 3, depth: flags.depth, drafts: flags.drafts, tree: flags.tree,
                verifier: flags.verifier, base: base)
            #expect(fromMethod == fromFlags, "\(method)")
            try fromMethod.validate(hasDraftModel: true)
        }
        // A chain is a chain however it is spelled.
        #expect(try DraftShape(spelling: "drafts:1:5") == .chain(5))
        #expect(try DraftShape(spelling: "nary:1:3") == .chain(3))
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("chain-\(getpid()).json")
        try Data("[[0],[0,0]]".utf8).write(to: file)
        defer { try? FileManager.default.removeItem(at: file) }
        #expect(try DraftShape(spelling: file.path) == .chain(2))
        #expect(
            try DecodingPlan(method: "chain:5+lookahead+lookup:3/token").spelling
                == "chain:5+lookahead:2+lookup:3/token")
        // The adaptive mode's suffix-tree budget: spelled only when not the default, refused elsewhere.
        let noTrees = try DecodingPlan(method: "adaptive+trees:0/block")
        #expect(noTrees.shape == .adaptive && noTrees.suffixTrees == 0 && noTrees.verifier == .block)
        #expect(noTrees.spelling == "adaptive+trees:0/block")
        #expect(try DecodingPlan(method: "ngram-adaptive+trees:4").variant == "ngram-adaptive+trees:4")
        #expect(try DecodingPlan(method: "adaptive+trees:8").variant == "adaptive")
        for bad in ["chain:4+trees:2", "adaptive+trees:-1", "adaptive+trees", "ngram+trees:3", "adaptive+trees:99999"] {
            #expect(throws: EngineError.self, "\(bad)") { try DecodingPlan(method: bad) }
        }
        var fixed = try DecodingPlan(method: "chain:4/token")
        fixed.suffixTrees = 2
        #expect(throws: EngineError.self) { try fixed.validate(hasDraftModel: true) }
    }

    @Test(arguments: [
        "chain:100000", "chain:-1", "chain:", "chain:4:5", "drafts:9223372036854775807:2",
        "drafts:2:9223372036854775807",
        "nary:3037000500:3037000500", "nary:2:100", "binary:100", "binary:1", "sequoia:9223372036854775807",
        "sequoia:8:x,y", "sequoia:0", "eagle:3", "nonsense", "missing.json",
        "sequoia:64:" + Array(repeating: "0.5", count: 33).joined(separator: ","),
    ])
    func badShapesAreErrors(spelling: String) {
        #expect(throws: EngineError.self) { try DraftShape(spelling: spelling) }
    }

    /// A named shape is measured from its numbers and refused past the bound before it is built: the fuzz target
    /// found `nary:1:3665` (a chain of 3,665) taking over 10 s to build in the fuzz build, only to be refused for
    /// its size after. The largest shape of each kind that fits is accepted, one more node is not.
    @Test func namedShapesPastTheBoundAreRefusedBeforeTheyAreBuilt() throws {
        for spelling in [
            "nary:1:3665", "chain:256", "nary:2:8", "binary:9", "drafts:16:16", "nary:1:9223372036854775807",
        ] {
            #expect("\(spelling)") {
                try DraftShape(spelling: spelling, readingFiles: false, maxNodes: 256)
            } throws: { error in
                "\(error)".contains("has more than 256 nodes")
            }
        }
        for spelling in ["chain:255", "nary:2:7", "binary:8", "drafts:5:51", "nary:15:2"] {
            #expect(try DraftShape(spelling: spelling, readingFiles: false, maxNodes: 256).nodeCount <= 256)
        }
        #expect(try DraftShape(spelling: "drafts:5:51", readingFiles: false, maxNodes: 256).nodeCount == 256)
    }

    @Test(arguments: [
        "chain:4/nope", "chain:4+turbo/token", "plain/token", "ngram+lookup", "ngram:x", "a/b/c",
        "ngram-adaptive+lookup",
        "ngram-adaptive/token",
    ])
    func badMethodsAreErrors(method: String) {
        #expect(throws: EngineError.self) { try DecodingPlan(method: method) }
    }
}
