import SpeculaEngine
import SpeculaModels
import SpeculaVerify
import Testing

/// Exact enumeration of whole speculative rounds on tiny synthetic models (real GGUF files, real forward passes,
/// real cache commits): every random choice of drafting and verification goes through a ``ChoiceReplay``, and
/// ``Enumeration/law(maximumPaths:_:)`` visits every path with its exact probability. The law of the first emitted
/// tokens must equal the target's own law (plain decoding, one token at a time) to 1e-9, and at the end of every
/// path the caches must be those of plain decoding of the emitted text.
@Suite("Whole rounds enumerated exactly on a synthetic model pair")
struct RoundEnumerationTests {
    static let vocabulary = 6
    static let target = SyntheticModel(vocabularySize: vocabulary, seed: 7)
    static let prompt = [1, 4, 2, 1, 4, 3, 1, 4]

    struct Case: Sendable, CustomStringConvertible {
        var name: String
        var drafter: String = "model"  // model, ngram or suffix
        var chain: SpeculativeDecoder.ChainVerifier = .token
        var depth = 2
        var tree: [[Int]]? = nil
        var verifier: String? = nil
        var settings = SamplingSettings(temperature: 0.9, topK: 3)
        var length = 2
        /// Trees to switch to after each round, in turn (as `--verifier auto` re-plans).
        var switching: [[[Int]]] = []
        /// The chain drafter's lookahead (n-gram proposals fed with the draft's current token).
        var lookahead = 0
        /// Lookup rounds (prompt lookup instead of the draft model) when the text ends with a repeated n-gram.
        var lookup = 0
        /// The caches' capacity: small, rounds shorten (a tree gives way to a chain, a chain to a plain step).
        var capacity = 64
        /// The default mode: each round's kind chosen by an ``AdaptivePolicy`` with fixed costs from the acceptance
        /// of the rounds before (the draft's prompt pass deferred; `vocabulary`: a reduced draft head built when
        /// it first drafts).
        var adaptive = false
        var vocabulary: [Int]? = nil
        /// The policy is in place at ``SpeculativeDecoder/start(prompt:)`` (as in a session): the prompt pass feeds the
        /// root, and the first round is a plain step from that pass's last row, with no pass of its own.
        var policyAtStart = false
        /// The confidence stop (`--draft-stop`): a chain ends when the draft's largest probability falls below it.
        var draftStop = 0.0
        /// The adaptive policy's lookup rate prior (nil: the cases' default): high, suffix trees are chosen where
        /// the text continued several ways.
        var lookupPrior: Double? = nil
        /// Draft layers left out of every draft pass (`--draft-skip-layers`).
        var skippedDraftLayers: Set<Int> = []
        /// The draft's matrices (float32) re-quantized to Q4_0, its output matrix too (`--draft-requantize
        /// q4_0+output`).
        var requantizedDraft = false
        var description: String { name }
    }

    /// Two candidates per choice for the cases with three-draft chains over three tokens: with the default three,
    /// each of them ran 66,000–220,000 paths (3–10 minutes on a 2-core host); with two they run about a hundredth
    /// of that, and every feature they exist for (lookahead rows, the confidence stop, the reduced head) still
    /// occurs on some paths and not on others (the checks below).
    static let narrow = SamplingSettings(temperature: 0.9, topK: 2)

    static let cases: [Case] = [
        Case(name: "chain token γ=2"),
        Case(
            name: "chain token γ=3, top-p, 3 tokens", depth: 3, settings: .init(temperature: 1.2, topP: 0.8), length: 3),
        Case(name: "chain block γ=2", chain: .block),
        Case(name: "chain block γ=3, min-p", chain: .block, depth: 3, settings: .init(temperature: 1, minP: 0.1)),
        Case(
            name: "chain token γ=2, penalties", depth: 2,
            settings: .init(temperature: 0.8, topK: 3, presencePenalty: 0.3, frequencyPenalty: 0.6), length: 3),
        Case(name: "chain token γ=3, lookahead 2", depth: 3, settings: narrow, length: 3, lookahead: 2),
        Case(name: "chain block γ=3, lookahead 2", chain: .block, depth: 3, settings: narrow, length: 3, lookahead: 2),
        Case(name: "lookup and model rounds, token", depth: 2, length: 3, lookahead: 1, lookup: 2),
        Case(name: "lookup and model rounds, block", chain: .block, depth: 2, length: 3, lookup: 2),
        Case(name: "n-gram token", drafter: "ngram", depth: 3, length: 3),
        Case(name: "n-gram block", drafter: "ngram", chain: .block, depth: 3, length: 3),
        // The prompt ends with "1 4", which occurred twice (followed by 2 and by 3): the first round is a branching
        // tree verified by the candidate rule.
        Case(name: "suffix trees", drafter: "suffix", depth: 3, length: 3),
        Case(
            name: "suffix trees, top-p", drafter: "suffix", depth: 2, settings: .init(temperature: 1.1, topP: 0.9),
            length: 3),
        Case(name: "rrs, 2 then 1", tree: [[], [0], [1], [0, 0]], verifier: "rrs"),
        Case(name: "rrsw, 2 then 2", tree: [[], [0], [1], [0, 0], [0, 1]], verifier: "rrsw"),
        Case(name: "rrsw, 3 drafts", tree: [[], [0], [1], [2]], verifier: "rrsw", settings: .init(topK: 4)),
        Case(name: "kseq, 2 then 1", tree: [[], [0], [1], [1, 0]], verifier: "kseq"),
        Case(name: "spechub, binary", tree: [[], [0], [1], [0, 0], [0, 1]], verifier: "spechub"),
        Case(name: "greedy law, 3 drafts", tree: [[], [0], [1], [2], [0, 0]], verifier: "greedy"),
        Case(name: "token verifier on a chain tree", tree: [[], [0], [0, 0]], verifier: "token"),
        Case(name: "no drafts (one-node tree)", tree: [[]], verifier: "greedy", length: 3),
        Case(
            name: "switching trees between rounds", tree: [[]], verifier: "greedy", length: 3,
            switching: [[[], [0], [1], [0, 0]], [[]], [[], [0], [0, 0]]]),
        // Prompt body 7 rows, capacity 11: the 5-node tree does not fit, a chain of its depth runs instead.
        Case(
            name: "full cache: a tree gives way to a chain", tree: [[], [0], [1], [0, 0], [0, 1]], verifier: "rrsw",
            settings: .init(temperature: 0.9, topK: 4), length: 1, capacity: 11),
        // Capacity 9: a chain of one draft, and after a rejection a round with room for its root only: a plain step.
        Case(name: "full cache: a chain gives way to a plain step", depth: 2, capacity: 9),
        Case(name: "adaptive: chains, lookups and plain steps, token", depth: 3, length: 3, adaptive: true),
        Case(
            name: "adaptive: reduced draft head, block", chain: .block, depth: 3, length: 3, adaptive: true,
            vocabulary: [0, 1, 2, 4]),
        Case(name: "chain token γ=3, confidence stop", depth: 3, settings: narrow, length: 3, draftStop: 0.5),
        Case(
            name: "chain token γ=3, lookahead 2, confidence stop", depth: 3, settings: narrow, length: 3, lookahead: 2,
            draftStop: 0.5),
        // A reduced draft head from the start (`--draft-vocabulary`): ids outside it are never drafted.
        Case(
            name: "chain token γ=3, reduced draft head", depth: 3, settings: narrow, length: 3,
            vocabulary: [0, 1, 2, 4]),
        Case(
            name: "rrsw tree, reduced draft head", tree: [[], [0], [1], [0, 0], [0, 1]], verifier: "rrsw",
            vocabulary: [0, 2, 3, 4]),
        Case(
            name: "chain token γ=3, reduced draft head and confidence stop", depth: 3, settings: narrow, length: 3,
            // 0.6: with this head and two candidates per choice no draft falls below 0.5 on any path.
            vocabulary: [0, 1, 3, 4], draftStop: 0.6),
        Case(
            name: "adaptive: lookups and plain steps, no draft model", drafter: "ngram", depth: 3, length: 3,
            adaptive: true),
        Case(
            name: "adaptive: the first token from the prompt pass, then chains and lookups", depth: 3, length: 3,
            adaptive: true, policyAtStart: true),
        // The prompt's "1 4" continued two ways: the first round is a suffix tree (two candidates, then one below
        // one of them), and later rounds other kinds.
        Case(
            name: "adaptive: suffix trees, lookups and plain steps, no draft model", drafter: "ngram", depth: 3,
            length: 3, adaptive: true, lookupPrior: 0.6),
        Case(
            name: "adaptive: suffix trees, lookups and chains", depth: 3, settings: narrow, length: 3, adaptive: true,
            lookupPrior: 0.6),
        // A draft with one of its two layers left out: another draft law, the same target law.
        Case(
            name: "chain token γ=3, a draft layer skipped", depth: 3, settings: narrow, length: 3,
            skippedDraftLayers: [1]),
        Case(
            name: "adaptive: a draft layer skipped, block", chain: .block, depth: 3, length: 3, adaptive: true,
            skippedDraftLayers: [1]),
        // A draft whose weights are re-quantized to 4 bits: another draft law, the same target law.
        Case(
            name: "chain token γ=3, the draft re-quantized to Q4_0", depth: 3, settings: narrow, length: 3,
            requantizedDraft: true),
        Case(
            name: "adaptive: the draft re-quantized to Q4_0, block", chain: .block, depth: 3, length: 3,
            adaptive: true, requantizedDraft: true),
    ]

    /// The policy of the adaptive cases: t(n) = 1 + 0.1·(n − 1), a draft 0.3, a row of catch-up 0.01; priors that
    /// make the first round a chain (a lookup without a draft model) and a rejection turn the next to another kind.
    static func policy(hasDraftModel: Bool, lookupPrior: Double? = nil) -> AdaptivePolicy {
        var policy = AdaptivePolicy(hasDraftModel: hasDraftModel, maxChain: 3, maxLookup: 3, maxTree: 3)
        policy.setCosts(targetStep: 1, targetPerRow: 0.1, draftPerToken: 0.3, draftPerRow: 0.01)
        policy.model = .init(prior: 0.7, weight: 1)
        let lookup = lookupPrior ?? (hasDraftModel ? 0.3 : 0.2)
        policy.lookup = Array(repeating: .init(prior: lookup, weight: 1), count: 3)
        return policy
    }

    static func nodeVerifier(_ name: String?) -> (any NodeVerifier)? {
        switch name {
        case "rrs": return RRSVerifier()
        case "rrsw": return RRSWithoutReplacementVerifier()
        case "kseq": return KSEQVerifier()
        case "spechub": return SpecHubVerifier()
        case "greedy": return GreedyVerifier()
        case "token": return TokenVerifier()
        default: return nil
        }
    }

    /// The target's joint law of the next `length` tokens after `context`, decoding one token at a time.
    static func targetLaw(_ model: Transformer, context: [Int], length: Int, settings: SamplingSettings) throws
        -> [[Int]: Double]
    {
        var law: [[Int]: Double] = [:]
        func extend(_ sequence: [Int], _ probability: Double) throws {
            if sequence.count == length {
                law[sequence] = probability
                return
            }
            let cache = model.makeCache(capacity: 64)
            let logits = try model.forward(tokens: context + sequence, cache: cache)[0]
            let p = try settings.process(logits: logits.map(Double.init), history: context + sequence)
            for token in p.indices where p[token] > 0 { try extend(sequence + [token], probability * p[token]) }
        }
        try extend([], 1)
        return law
    }

    @Test(arguments: cases)
    func firstTokensFollowTheTarget(_ testCase: Case) throws {
        let target = try Self.target.load()
        let draft = try Self.target.draft(perturbation: 0.6).load()
        try draft.skipLayers(testCase.skippedDraftLayers)
        if testCase.requantizedDraft { #expect(try draft.requantize(to: .q4_0, output: true) == 15) }
        let decoder: SpeculativeDecoder
        if testCase.drafter == "ngram" || testCase.drafter == "suffix" {
            decoder = try SpeculativeDecoder(
                target: target, settings: testCase.settings, depth: testCase.depth, ngram: 2,
                verifier: testCase.chain, capacity: testCase.capacity)
            if testCase.drafter == "suffix" { decoder.suffixNodes = 4 }
        } else {
            decoder = try SpeculativeDecoder(
                target: target, draft: draft, settings: testCase.settings, depth: testCase.depth,
                verifier: testCase.chain, tree: try testCase.tree.map { try TreeTopology(paths: $0) },
                nodeVerifier: Self.nodeVerifier(testCase.verifier), capacity: testCase.capacity)
        }
        decoder.lookahead = testCase.lookahead
        decoder.lookupMatch = testCase.lookup
        let policy = Self.policy(hasDraftModel: testCase.drafter == "model", lookupPrior: testCase.lookupPrior)
        decoder.draftStop = testCase.draftStop
        if testCase.adaptive {
            decoder.deferDraftPrefill = true
            decoder.lazyDraftVocabulary = testCase.vocabulary
        } else if let kept = testCase.vocabulary {
            decoder.draftOutputHead = try draft.makeOutputHead(tokens: kept)
        }
        if testCase.policyAtStart { decoder.adaptive = policy }
        try decoder.start(prompt: Self.prompt)
        if testCase.policyAtStart {
            // The root was fed with the prompt; every path's restart returns to that.
            #expect(decoder.targetCache.length == Self.prompt.count)
        }
        let plainCache = target.makeCache(capacity: 64)
        let plainDraftCache = draft.makeCache(capacity: 64)
        var plainLogits: [[Int]: [Float]] = [:]
        var plainDraftLogits: [[Int]: [Float]] = [:]
        let switching = try testCase.switching.map { try TreeTopology(paths: $0) }
        let first = try testCase.tree.map { try TreeTopology(paths: $0) }
        var cacheMismatches = 0
        var checkedPaths = 0
        var fullPaths = 0
        let law = try Enumeration.law(maximumPaths: 400_000) { source -> [Int] in
            decoder.random = source
            try decoder.restart(prompt: Self.prompt)
            // Every path starts from the same policy (it learns within a path only).
            if testCase.adaptive { decoder.adaptive = policy }
            if let first, !switching.isEmpty { try decoder.setTree(first) }
            var emitted: [Int] = []
            var rounds = 0
            while emitted.count < testCase.length {
                emitted += try decoder.round()
                if !switching.isEmpty {
                    try decoder.setTree(switching[rounds % switching.count])
                    rounds += 1
                }
            }
            // Rollback: the caches hold exactly the emitted text (the target's next logits equal plain decoding's).
            if plainLogits[emitted] == nil {
                _ = plainCache.trim(to: 0)
                plainLogits[emitted] = try target.forward(tokens: Self.prompt + emitted, cache: plainCache)[0]
            }
            // A path that filled the cache leaves no row to check with (the law is still checked).
            do {
                if try decoder.rootLogits() != plainLogits[emitted] { cacheMismatches += 1 }
                if testCase.drafter == "model" {
                    if plainDraftLogits[emitted] == nil {
                        _ = plainDraftCache.trim(to: 0)
                        plainDraftLogits[emitted] = try draft.forward(
                            tokens: Self.prompt + emitted, cache: plainDraftCache)[0]
                    }
                    // With a reduced draft head only the kept ids are computed (the rest −∞).
                    let kept = testCase.vocabulary.map(Set.init) ?? Set(0..<Self.vocabulary)
                    let plainRow = (plainDraftLogits[emitted] ?? []).enumerated().map {
                        kept.contains($0.offset) ? $0.element : -Float.infinity
                    }
                    if try decoder.draftRootLogits() != plainRow { cacheMismatches += 1 }
                }
                checkedPaths += 1
            } catch ModelError.contextOverflow {
                fullPaths += 1
            }
            return Array(emitted.prefix(testCase.length))
        }
        let expected = try Self.targetLaw(
            target, context: Self.prompt, length: testCase.length, settings: testCase.settings)
        #expect(expected.count > 3, "the case must have several outcomes to mean something")
        let keys = Set(law.keys).union(expected.keys)
        let distance = keys.map { abs((law[$0] ?? 0) - (expected[$0] ?? 0)) }.max() ?? 0
        #expect(distance < 1e-9, "\(testCase): max |Δ| = \(distance)")
        #expect(cacheMismatches == 0, "\(testCase): \(cacheMismatches) paths left caches unlike plain decoding")
        // Every path is checked unless the case fills its cache on purpose.
        if testCase.capacity == 64 { #expect(fullPaths == 0 && checkedPaths > 0) }
        // The round did speculate: some paths accepted drafts (except with no drafts at all).
        if testCase.tree != [[]] || !testCase.switching.isEmpty {
            #expect(decoder.telemetry.acceptedTokens > 0, "\(testCase): no draft was ever accepted")
        }
        if testCase.drafter == "suffix" {
            #expect(decoder.telemetry.suffixTreeRounds > 0, "\(testCase): no branching tree was verified")
        }
        if testCase.lookup > 0 {
            let t = decoder.telemetry
            #expect(t.lookupRounds > 0 && t.lookupRounds < t.rounds, "\(testCase): both kinds of round must occur")
        }
        if testCase.lookahead > 0 {
            #expect(decoder.telemetry.lookaheadDrafts > 0, "\(testCase): no draft came from a lookahead row")
        }
        if testCase.draftStop > 0 {
            let t = decoder.telemetry
            #expect(
                t.stoppedEarly > 0 && t.stoppedEarly < t.rounds,
                "\(testCase): the stop must cut some chains and not all (\(t.stoppedEarly) of \(t.rounds))")
        }
        if testCase.vocabulary != nil {
            #expect(decoder.draftOutputHead != nil, "\(testCase): the reduced draft head must be in use")
        }
        if testCase.lookupPrior != nil {
            // Suffix trees were chosen, and rounds of other kinds too.
            let t = decoder.telemetry
            #expect(t.suffixTreeRounds > 0, "\(testCase): no suffix tree")
            #expect(t.rounds > t.suffixTreeRounds, "\(testCase): only suffix trees")
            if testCase.drafter == "model" {
                #expect(t.rounds - t.plainRounds - t.lookupRounds > 0, "\(testCase): no chain")
            }
        } else if testCase.adaptive {
            // The choice did depend on the past: paths ran rounds of more than one kind.
            let t = decoder.telemetry
            #expect(t.plainRounds > 0, "\(testCase): no plain step")
            if testCase.drafter == "model" {
                #expect(t.lookupRounds > 0, "\(testCase): no lookup round")
                #expect(t.rounds - t.plainRounds - t.lookupRounds > 0, "\(testCase): no chain")
                // Chains verified token by token stop on the draft's confidence: some did, so the law above covers
                // the stop.
                // (The case whose first round is the prompt's runs fewer chains; the others cover the stop.)
                if testCase.chain == .token && !testCase.policyAtStart {
                    #expect(t.stoppedEarly > 0, "\(testCase): no chain stopped early")
                }
                #expect(decoder.draftOutputHead != nil || testCase.vocabulary == nil)
            }
        }
    }

    /// The paired block comparison's closed forms (`pairedBlock`): over every outcome of one round, the path-weighted
    /// mean of each verifier's expected tokens per step for that round's drafts equals the expected number of tokens
    /// the round really emits with that verifier.
    @Test(arguments: [SpeculativeDecoder.ChainVerifier.token, .block])
    func pairedExpectationsMatchTheRounds(verifier: SpeculativeDecoder.ChainVerifier) throws {
        let target = try Self.target.load()
        let draft = try Self.target.draft(perturbation: 0.6).load()
        let decoder = try SpeculativeDecoder(
            target: target, draft: draft, settings: .init(temperature: 0.9, topK: 4), depth: 3, verifier: verifier,
            capacity: 64)
        decoder.pairedBlock = true
        try decoder.start(prompt: Self.prompt)
        var predicted = 0.0
        var before = (token: 0.0, block: 0.0)
        let law = try Enumeration.law(maximumPaths: 400_000) { source -> Int in
            decoder.random = source
            try decoder.restart(prompt: Self.prompt)
            let emitted = try decoder.round().count
            let t = decoder.telemetry
            let steps = verifier == .token ? t.pairedTokenSteps - before.token : t.pairedBlockSteps - before.block
            before = (t.pairedTokenSteps, t.pairedBlockSteps)
            predicted += source.probability * steps
            return emitted
        }
        let measured = law.reduce(0) { $0 + Double($1.key) * $1.value }
        #expect(law.count >= 3, "rounds must emit different numbers of tokens")
        #expect(abs(predicted - measured) < 1e-9, "\(verifier): predicted \(predicted), enumerated \(measured)")
        #expect(decoder.telemetry.pairedBlockSteps >= 0 && decoder.telemetry.pairedRounds > 0)
    }

    /// The enumeration itself: a known two-step computation.
    @Test func enumerationGivesExactLaws() throws {
        let law = try Enumeration.law { source -> [Int] in
            var random: any RandomSource = source
            let first = random.categorical([1, 0, 3]) ?? -1
            let second = random.bernoulli(1, over: 4) ? 1 : 0
            let pair = random.withoutReplacement([0, 2, 1, 1], count: 2, includeZeroMass: false)
            return [first, second] + pair
        }
        var expected: [[Int]: Double] = [:]
        let pairs: [([Int], Double)] = [
            ([1, 2], 0.5 * 0.5), ([1, 3], 0.5 * 0.5), ([2, 1], 0.25 * 2 / 3), ([2, 3], 0.25 / 3),
            ([3, 1], 0.25 * 2 / 3), ([3, 2], 0.25 / 3),
        ]
        for (first, pFirst) in [(0, 0.25), (2, 0.75)] {
            for (second, pSecond) in [(1, 0.25), (0, 0.75)] {
                for (pair, pPair) in pairs { expected[[first, second] + pair] = pFirst * pSecond * pPair }
            }
        }
        #expect(law.count == expected.count)
        for (key, value) in expected { #expect(abs((law[key] ?? 0) - value) < 1e-15, "\(key)") }
    }
}
