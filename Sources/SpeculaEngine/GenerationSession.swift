import Foundation
import SpeculaModels
import SpeculaVerify

/// Why a generation ended.
public enum FinishReason: String, Sendable, Codable {
    /// An end-of-generation token.
    case stop
    /// The token limit.
    case length
    /// A stop sequence appeared in the text.
    case stopSequence
    /// ``GenerationSession/cancel()`` was called.
    case cancelled
}

/// What one step of a session produced: the tokens accepted in one round (cut at the stop), and the text that is
/// safe to show (held back while it could still be the start of a stop sequence).
public struct GenerationEvent: Sendable, Equatable {
    public var tokens: [Int]
    public var text: String
    /// Set on the last event of a generation.
    public var finishReason: FinishReason?
    /// With ``DecodingPlan/recordDistributions`` (plain decoding): the distribution each token was drawn from.
    public var distributions: [[Double]] = []
    /// With ``GenerationSession/logprobs`` set: each token's log-probability under the target (and the most likely
    /// alternatives).
    public var logprobs: [TokenLogprob] = []
}

/// A token's natural-log probability under the target model's own distribution at that position — the softmax of
/// its logits at temperature 1, before any sampling setting (what OpenAI's API and vLLM report) — with the `top` most
/// likely tokens there (ties: smaller id first).
public struct TokenLogprob: Sendable, Equatable, Codable {
    public var token: Int
    public var logprob: Double
    public var top: [Alternative]

    public struct Alternative: Sendable, Equatable, Codable {
        public var token: Int
        public var logprob: Double
    }

    public init(token: Int, logits: [Float], top count: Int) {
        var largest = -Double.infinity
        for value in logits { largest = max(largest, Double(value)) }
        var sum = 0.0
        for value in logits { sum += Foundation.exp(Double(value) - largest) }
        let logNormalizer = largest + Foundation.log(sum)
        self.token = token
        logprob = Double(logits[token]) - logNormalizer
        top = []
        if count > 0 {
            let values = logits.map(Double.init)
            top = SamplingSettings.topIndices(values, count: min(count, logits.count)).map {
                Alternative(token: $0, logprob: values[$0] - logNormalizer)
            }
        }
    }
}

/// The numbers of one generation, with the names they have in `specula generate --stats` and the server.
public struct GenerationStats: Sendable, Codable, Equatable {
    public var promptTokens = 0
    /// Prompt tokens whose cache rows were reused from an earlier turn (``PrefixCache``).
    public var cachedPromptTokens = 0
    public var generatedTokens = 0
    /// `plain`, `model`, `ngram`.
    public var drafter = "none"
    /// The draft shape and the verifier that ran (`greedy walk` at temperature 0).
    public var shape = ""
    public var verifier = ""
    /// From ``GenerationSession/start(prompt:)`` to now (or to the end), and its prompt passes (the target's and
    /// the draft model's).
    public var seconds = 0.0
    public var prefillSeconds = 0.0
    /// From ``GenerationSession/start(prompt:)`` to the end of the first round that emitted a token (time to first
    /// token, the prompt pass included).
    public var firstTokenSeconds = 0.0
    public var rounds = 0
    /// Tokens per target pass, bonus and correction included.
    public var tokensPerStep = 0.0
    public var acceptanceRate = 0.0
    /// The draft's passes and sampling; the target's forward passes; the rest of the rounds (the target's logits
    /// made into distributions, the verification walk, the commits).
    public var draftSeconds = 0.0
    public var targetPassSeconds = 0.0
    public var verificationSeconds = 0.0
    /// Mean α* over the nodes the walk reached, and the measured acceptance there over it.
    public var optimalAcceptance = 0.0
    public var efficiency = 0.0
    public var finishReason: FinishReason?
    /// The speculative decoder's counters (nil for plain decoding).
    public var telemetry: SpeculativeDecoder.Telemetry?
    /// `auto`: the measured costs, the trees it planned in order, and the acceptance vector at the end.
    public var auto: AutoStats?
    /// The adaptive mode: the rounds of each kind it chose, its cost estimates and acceptance at the end.
    public var adaptive: AdaptiveStats?

    public struct AdaptiveStats: Sendable, Codable, Equatable {
        /// Rounds by kind: `plain`, `lookup`, `chain`.
        public var rounds: [String: Int] = [:]
        /// t(1), the target's cost per extra row, a draft's cost per drafted token and per row caught up on.
        public var targetStepSeconds: Double?
        public var targetRowSeconds: Double?
        public var draftTokenSeconds: Double?
        public var draftRowSeconds: Double?
        /// Per-position acceptance: the draft model's, and lookup's after matches of 1, 2 and ≥ 3 tokens.
        public var modelAcceptance = 0.0
        public var lookupAcceptance: [Double] = []
    }

    public struct AutoStats: Sendable, Codable, Equatable {
        public var measureSeconds = 0.0
        public var draftStepSeconds = 0.0
        public var targetPassSeconds: [String: Double] = [:]
        public var trees: [String] = []
        public var acceptance: [Double] = []
    }

    public var tokensPerSecond: Double { seconds > 0 ? Double(generatedTokens) / seconds : 0 }
}

/// One conversation with a target model (and a draft model, or the n-gram drafter): owns the caches, decodes by a
/// ``DecodingPlan`` round by round, and stops at the plan's stop conditions or when cancelled.
///
/// ```swift
/// let target = try LoadedModel(path: "target.gguf")
/// let draft = try LoadedModel(path: "draft.gguf")
/// let plan = DecodingPlan(drafter: .model, shape: .chain(5), stop: StopConditions(maxTokens: 128, sequences: ["\n\n"]))
/// let session = try GenerationSession(target: target, draft: draft, plan: plan)
/// try session.start(messages: [ChatMessage(role: "user", content: "Write a prime test in Python.")])
/// while let event = try session.next() { print(event.text, terminator: "") }
/// print(session.finishReason!, session.stats.tokensPerStep)
/// ```
///
/// Plain decoding is the plan with no drafter. A session is used from one thread at a time; ``cancel()`` may be
/// called from any thread and takes effect between rounds. Models may be shared by many sessions: everything per
/// conversation (caches, a reduced draft head) is the session's own.
public final class GenerationSession: @unchecked Sendable {
    public let target: LoadedModel
    public let draft: LoadedModel?
    public let plan: DecodingPlan
    /// The cache capacity asked for (nil: the prompt, the token limit and the largest draft shape).
    public let context: Int?

    /// The speculative decoder (nil for plain decoding or before ``start(prompt:)``).
    public private(set) var decoder: SpeculativeDecoder?
    public private(set) var promptTokens: [Int] = []
    /// Every token generated so far (an end-of-generation token included).
    public private(set) var generated: [Int] = []
    public private(set) var finishReason: FinishReason?
    /// Caches from an earlier turn to reuse (taken at ``start(prompt:)``, given back when the generation ends).
    public var prefixCache: PrefixCache?
    /// Prompt tokens whose cache rows came from ``prefixCache`` (not fed again).
    public private(set) var cachedPromptTokens = 0
    /// Log-probabilities in every event: nil for none, else how many alternatives per token. Set before
    /// ``start(prompt:)``. They come from the target rows each round computed anyway (no extra pass).
    public var logprobs: Int?
    /// The adaptive modes: a policy from an earlier generation on the same models whose measured costs this one
    /// starts from (``AdaptivePolicy/inheritCosts(from:)``); nil: learn them from this generation's rounds alone.
    public var adaptiveCosts: AdaptivePolicy?
    /// Where the target's passes over this generation's cache spend their time, part by part (nil: not measured;
    /// `bench batch --phases`). In a batched pass the first member's profile times the whole pass.
    public var targetProfile: ForwardProfile?
    /// Runs this generation's passes together with other generations' (continuous batching): set before
    /// ``start(prompt:)``. The output is the same token for token as alone (``ForwardBatcher``); the generation
    /// leaves the batcher when it ends, or at ``leaveBatch()``.
    public var batcher: ForwardBatcher?
    /// A node verifier of the caller's own in place of the plan's, for a tree plan (set before
    /// ``start(prompt:)``): a new verification rule can be run — and audited against plain sampling
    /// (``SamplingAudit``) — without a ``VerifierKind`` for it. Its drafts follow its own ``NodeVerifier/draftLaw``.
    public var nodeVerifier: (any NodeVerifier)?
    private var member: ForwardBatcher.Member?
    /// The target's logits at each token of the round being consumed.
    private var roundLogits: [[Float]] = []

    // Plain decoding: the cache, the next token's logits (or the token still to feed), the sampling stream.
    private var plainCache: KVCache?
    private var plainLogits: [Float] = []
    private var promptLogits: [Float] = []
    private var plainFeed: Int?
    private var plainRandom = SplitMix64(seed: 0)
    private var plainRounds = 0
    private var lastDistribution: [Double] = []
    private var plainTargetSeconds = 0.0

    // `auto`: the planner, its period counter, what it planned.
    private var planner: AutoPlanner?
    private var plainPeriods = 0
    private var autoStats: GenerationStats.AutoStats?

    // Text: the detokenizer, and bytes held back while they could begin a stop sequence.
    private var detokenizer: StreamingDetokenizer
    private var held: [UInt8] = []
    private let stopBytes: [[UInt8]]

    private var started: ContinuousClock.Instant?
    private var finished: ContinuousClock.Instant?
    private var prefillSeconds = 0.0
    private var firstToken: Double?
    private let cancelLock = NSLock()
    private var cancelRequested = false

    /// Checks the plan against the models (a draft model is needed and must share the target's vocabulary).
    public init(target: LoadedModel, draft: LoadedModel? = nil, plan: DecodingPlan, context: Int? = nil) throws {
        try plan.validate(hasDraftModel: draft != nil)
        if let context, context < 1 {
            throw EngineError.badInput(field: "context", reason: "must be ≥ 1 (got \(context))")
        }
        if let draft, plan.drafter == .model { try Self.requireDraft(draft, for: target) }
        self.target = target
        self.draft = plan.drafter == .model ? draft : nil
        self.plan = plan
        self.context = context
        detokenizer = StreamingDetokenizer(tokenizer: target.tokenizer)
        stopBytes = plan.stop.sequences.map { Array($0.utf8) }
    }

    /// Checks that `draft` can draft for `target`: the same vocabulary and the same output size.
    public static func requireDraft(_ draft: LoadedModel, for target: LoadedModel) throws {
        do {
            try target.tokenizer.requireSameVocabulary(as: draft.tokenizer)
        } catch {
            throw EngineError.badInput(
                field: "draft", reason: "\(draft.path) cannot draft for \(target.path): \(error)")
        }
        if target.transformer.vocabularySize != draft.transformer.vocabularySize {
            throw EngineError.badInput(
                field: "draft",
                reason:
                    "output sizes differ (\(target.transformer.vocabularySize) vs \(draft.transformer.vocabularySize))"
            )
        }
    }

    /// Starts a conversation rendered by the target's chat template.
    public func start(messages: [ChatMessage]) throws {
        let tokens: [Int]
        do { tokens = try target.promptTokens(messages: messages) } catch let error as ModelError {
            throw EngineError.badInput(field: "messages", reason: error.description)
        }
        try start(prompt: tokens)
    }

    /// Starts from raw text (`special`: special-token text parsed as such).
    public func start(text: String, special: Bool = false) throws {
        try start(prompt: target.promptTokens(text: text, special: special))
    }

    /// Starts from prompt tokens: checks that the prompt and the token limit fit the context, makes the caches and
    /// runs the prompt pass.
    public func start(prompt: [Int]) throws {
        if prompt.isEmpty {
            throw EngineError.badInput(field: "prompt", reason: "the prompt is empty (it encodes to no token)")
        }
        let vocabulary = target.transformer.vocabularySize
        if let bad = prompt.first(where: { $0 < 0 || $0 >= vocabulary }) {
            throw EngineError.badInput(
                field: "prompt", reason: "token \(bad) is outside the vocabulary 0..<\(vocabulary)")
        }
        let maxTokens = plan.stop.maxTokens
        let trained = target.transformer.config.contextLength
        let limit = min(context ?? trained, trained)
        if prompt.count > limit || maxTokens > limit - prompt.count {
            throw EngineError.contextLengthExceeded(promptTokens: prompt.count, maxTokens: maxTokens, context: limit)
        }
        // Room for the last round's drafts beyond the token limit (rounds shorten themselves near a full cache).
        let extra = plan.isPlain ? 0 : plan.shape.nodeCount + 1
        let capacity = context ?? min(trained, prompt.count + maxTokens + extra)
        reset()
        promptTokens = prompt
        cachedPromptTokens = 0
        let clock = ContinuousClock.now
        started = clock
        leaveBatch()
        member = batcher?.join()
        do {
            try begin(prompt: prompt, capacity: capacity)
        } catch {
            leaveBatch()
            throw EngineError.classify(error)
        }
        prefillSeconds = Self.seconds(since: clock)
    }

    /// The same prompt again without its prompt pass (caches trimmed back to it): a new sample whose random stream
    /// continues the last one. Counters of a speculative decoder accumulate.
    public func restart() throws {
        guard started != nil else { throw EngineError.fault("restart before start") }
        let prompt = promptTokens
        reset()
        promptTokens = prompt
        started = ContinuousClock.now
        leaveBatch()
        member = batcher?.join()
        for cache in [decoder?.targetCache, decoder?.draftCache ?? nil, plainCache] { cache?.batchMember = member }
        if let decoder {
            try decoder.restart(prompt: prompt)
        } else if let plainCache {
            _ = plainCache.trim(to: prompt.count)
            plainLogits = promptLogits
            plainFeed = nil
        }
    }

    /// Ends the generation before its next round (from any thread).
    public func cancel() {
        cancelLock.lock()
        cancelRequested = true
        cancelLock.unlock()
    }

    private var isCancelled: Bool {
        cancelLock.lock()
        defer { cancelLock.unlock() }
        return cancelRequested
    }

    /// Runs one round; nil once the generation has ended (``finishReason`` says why).
    public func next() throws -> GenerationEvent? {
        guard started != nil else { throw EngineError.fault("next() before start") }
        if finishReason != nil { return nil }
        if isCancelled { return finish(.cancelled, tokens: []) }
        let tokens: [Int]
        do { tokens = try round() } catch {
            leaveBatch()
            throw EngineError.classify(error)
        }
        if firstToken == nil, let started, !tokens.isEmpty { firstToken = Self.seconds(since: started) }
        var event = consume(tokens)
        if let count = logprobs {
            event.logprobs = zip(event.tokens, roundLogits).map { TokenLogprob(token: $0, logits: $1, top: count) }
            roundLogits = []
        }
        if plan.recordDistributions && decoder == nil { event.distributions = [lastDistribution] }
        return event
    }

    /// Runs to the end, handing every event to `body`; returns the whole text.
    @discardableResult
    public func run(_ body: (GenerationEvent) throws -> Void = { _ in }) throws -> String {
        var text = ""
        while let event = try next() {
            text += event.text
            try body(event)
        }
        return text
    }

    public var stats: GenerationStats {
        var stats = GenerationStats()
        stats.promptTokens = promptTokens.count
        stats.cachedPromptTokens = cachedPromptTokens
        stats.generatedTokens = generated.count
        stats.finishReason = finishReason
        stats.prefillSeconds = prefillSeconds
        stats.firstTokenSeconds = firstToken ?? 0
        if let started { stats.seconds = Self.seconds(between: started, and: finished ?? ContinuousClock.now) }
        stats.verifier =
            plan.sampling.isGreedy
            ? "greedy walk" : (plan.shape == .auto ? "greedy (auto)" : plan.verifier.rawValue)
        switch plan.drafter {
        case .none:
            stats.drafter = "none"
            stats.shape = "plain"
            stats.verifier = "none"
            stats.rounds = plainRounds
            stats.tokensPerStep = plainRounds == 0 ? 0 : 1
            stats.targetPassSeconds = plainTargetSeconds
        case .model, .ngram, .suffix:
            switch plan.drafter {
            case .model: stats.drafter = "model"
            case .suffix: stats.drafter = "suffix"
            default: stats.drafter = "ngram"
            }
            stats.shape = plan.shape.spelling
            if let t = decoder?.telemetry {
                stats.telemetry = t
                stats.rounds = t.rounds
                stats.tokensPerStep = t.tokensPerStep
                stats.acceptanceRate = t.acceptanceRate
                stats.draftSeconds = t.draftSeconds
                stats.targetPassSeconds = t.targetPassSeconds
                stats.verificationSeconds = t.verificationSeconds
                stats.optimalAcceptance = t.optimalAcceptance
                stats.efficiency = t.efficiency
            }
        }
        if let policy = decoder?.adaptive {
            stats.adaptive = GenerationStats.AdaptiveStats(
                rounds: policy.choices, targetStepSeconds: policy.targetStep,
                targetRowSeconds: policy.targetPerRow ?? policy.prefillPerToken,
                draftTokenSeconds: policy.draftPerToken, draftRowSeconds: policy.draftPerRow,
                modelAcceptance: policy.model.value, lookupAcceptance: policy.lookup.map(\.value))
        }
        if var auto = autoStats, let planner, let t = decoder?.telemetry {
            auto.acceptance = planner.acceptance(reached: t.rankReached, accepted: t.rankAccepted)
            stats.auto = auto
        }
        return stats
    }

    // MARK: - Rounds

    private func reset() {
        generated = []
        firstToken = nil
        finishReason = nil
        held = []
        detokenizer = StreamingDetokenizer(tokenizer: target.tokenizer)
        finished = nil
        plainPeriods = 0
        cancelLock.lock()
        cancelRequested = false
        cancelLock.unlock()
    }

    private func begin(prompt: [Int], capacity: Int) throws {
        let model = target.transformer
        switch plan.drafter {
        case .none:
            decoder = nil
            var cache = model.makeCache(capacity: capacity)
            var kept = 0
            if let (reused, tokens) = prefixCache?.takeTarget(capacity: capacity) {
                kept = min(SpeculativeDecoder.commonPrefix(tokens, prompt), prompt.count - 1)
                _ = reused.trim(to: kept)
                reused.outputHead = nil
                cache = reused
            }
            cachedPromptTokens = kept
            cache.batchMember = member
            cache.profile = targetProfile
            plainCache = cache
            plainRandom = SplitMix64(seed: plan.seed)
            plainRounds = 0
            plainTargetSeconds = 0
            let passStart = ContinuousClock.now
            guard let logits = try model.forward(tokens: Array(prompt[kept...]), cache: cache).last else {
                throw EngineError.fault("the prompt pass returned no logits")
            }
            plainTargetSeconds += Self.seconds(since: passStart)
            promptLogits = logits
            plainLogits = logits
            plainFeed = nil
        case .ngram(let longest):
            let length: Int
            switch plan.shape {
            case .chain(let chain): length = chain
            case .adaptive: length = DraftShape.adaptiveLongest
            default: throw EngineError.fault("n-gram plan with a tree")
            }
            decoder = try SpeculativeDecoder(
                target: model, settings: plan.sampling, depth: length, ngram: longest,
                verifier: plan.verifier.chainRule, capacity: capacity, seed: plan.seed)
            if plan.shape == .adaptive {
                var policy = AdaptivePolicy(hasDraftModel: false, maxTree: plan.suffixTrees)
                if let adaptiveCosts { policy.inheritCosts(from: adaptiveCosts) }
                decoder?.adaptive = policy
            }
            try configureAndStart(prompt)
        case .suffix(let longest, let nodes):
            guard case .chain(let levels) = plan.shape else { throw EngineError.fault("suffix plan with a tree") }
            decoder = try SpeculativeDecoder(
                target: model, settings: plan.sampling, depth: levels, ngram: longest,
                verifier: plan.verifier.chainRule, capacity: capacity, seed: plan.seed)
            decoder?.suffixNodes = nodes
            try configureAndStart(prompt)
        case .model:
            guard let draft else { throw EngineError.badInput(field: "draft", reason: "the plan needs a draft model") }
            let decoder: SpeculativeDecoder
            switch plan.shape {
            case .chain(let length):
                decoder = try SpeculativeDecoder(
                    target: model, draft: draft.transformer, settings: plan.sampling, depth: length,
                    verifier: plan.verifier.chainRule, capacity: capacity, seed: plan.seed)
            case .tree(let topology, _):
                decoder = try SpeculativeDecoder(
                    target: model, draft: draft.transformer, settings: plan.sampling, depth: topology.depth,
                    tree: topology, nodeVerifier: nodeVerifier ?? plan.verifier.nodeVerifier, capacity: capacity,
                    seed: plan.seed)
            case .adaptive:
                // No measurement: the policy learns the costs from the rounds; the draft catches up on the prompt
                // when it first drafts.
                decoder = try SpeculativeDecoder(
                    target: model, draft: draft.transformer, settings: plan.sampling,
                    depth: DraftShape.adaptiveLongest, verifier: plan.verifier.chainRule, capacity: capacity,
                    seed: plan.seed)
                decoder.adaptive = AdaptivePolicy(
                    hasDraftModel: true,
                    draftCostRatio: Double(draft.stepBytes) / Double(max(1, target.stepBytes)),
                    maxChain: DraftShape.adaptiveLongest, maxLookup: DraftShape.adaptiveLongest,
                    maxTree: plan.suffixTrees)
                if let adaptiveCosts { decoder.adaptive?.inheritCosts(from: adaptiveCosts) }
                decoder.deferDraftPrefill = true
                // A reduced draft head where the output matrix is a large share of what a draft step reads (a
                // third for the pinned draft): built when the draft first drafts.
                let share = Double(draft.outputBytes) / Double(max(1, draft.stepBytes))
                let vocabulary = draft.transformer.vocabularySize
                if plan.draftVocabulary == 0 && share > AdaptivePolicy.reducedHeadShare
                    && vocabulary > 2 * AdaptivePolicy.reducedHeadTokens
                {
                    decoder.lazyDraftVocabulary = draft.draftVocabulary(
                        first: AdaptivePolicy.reducedHeadTokens, keeping: prompt)
                }
            case .auto:
                // Measure this machine's costs, plan the fastest tree from a prior acceptance vector, and re-plan
                // every few rounds from the acceptance observed (chains at temperature 0, where the greedy walk
                // keeps one child per node; the greedy-law verifier at branching nodes otherwise).
                let measureStart = ContinuousClock.now
                let maxNodes = AutoPlanner.defaultMaxNodes
                let cost = try CostModel.measure(
                    target: model, draft: draft.transformer, context: prompt, maxNodes: maxNodes)
                let prior = plan.sampling.isGreedy ? [0.8] : SequoiaDefaults.acceptance
                let planner = AutoPlanner(cost: cost, prior: prior, maxNodes: maxNodes)
                let first = try planner.plan(acceptance: planner.prior)
                self.planner = planner
                autoStats = GenerationStats.AutoStats(
                    measureSeconds: Self.seconds(since: measureStart), draftStepSeconds: cost.draftStep,
                    targetPassSeconds: Dictionary(
                        cost.verify.map { ("\($0.nodes)", $0.seconds) }, uniquingKeysWith: { a, _ in a }),
                    trees: [AutoPlanner.describe(first)], acceptance: [])
                decoder = try SpeculativeDecoder(
                    target: model, draft: draft.transformer, settings: plan.sampling, depth: max(1, first.depth),
                    tree: first, nodeVerifier: GreedyVerifier(), capacity: capacity, seed: plan.seed)
            }
            self.decoder = decoder
            if plan.draftVocabulary > 0 {
                decoder.draftOutputHead = try draft.transformer.makeOutputHead(
                    tokens: draft.draftVocabulary(first: plan.draftVocabulary, keeping: prompt))
            }
            try configureAndStart(prompt)
        }
    }

    private func configureAndStart(_ prompt: [Int]) throws {
        guard let decoder else { return }
        if let prefixCache, let (target, tokens) = prefixCache.takeTarget(capacity: decoder.targetCache.capacity) {
            let draft = decoder.draftCache.flatMap { prefixCache.takeDraft(capacity: $0.capacity) }
            try decoder.adopt(target: target, holding: tokens, draft: draft?.0, holding: draft?.1 ?? [])
        }
        decoder.targetCache.batchMember = member
        decoder.targetCache.profile = targetProfile
        decoder.draftCache?.batchMember = member
        decoder.tokensLeft = plan.stop.maxTokens
        decoder.recordEmittedLogits = logprobs != nil
        decoder.draftStop = plan.draftStop
        decoder.lookahead = plan.lookahead
        decoder.lookupMatch = plan.lookup
        decoder.treeOptimum = plan.treeOptimum
        decoder.pairedBlock = plan.pairedBlock
        try decoder.start(prompt: prompt)
        cachedPromptTokens = decoder.reusedPromptTokens
    }

    /// One round's tokens: a plain step, or a speculative round (then, with `auto`, a re-plan every 8 rounds).
    private func round() throws -> [Int] {
        guard let decoder else { return [try plainStep()] }
        decoder.tokensLeft = plan.stop.maxTokens - generated.count
        let tokens = try decoder.round()
        if logprobs != nil { roundLogits = decoder.emittedLogits }
        if let planner, decoder.telemetry.rounds % 8 == 0 {
            let t = decoder.telemetry
            let next = try planner.next(
                acceptance: planner.acceptance(reached: t.rankReached, accepted: t.rankAccepted),
                plainPeriods: &plainPeriods)
            if next != decoder.tree {
                try decoder.setTree(next)
                autoStats?.trees.append(AutoPlanner.describe(next))
            }
        }
        return tokens
    }

    /// One plain step: feed the last token (if any), then choose the next from the target's distribution.
    private func plainStep() throws -> Int {
        guard let cache = plainCache else { throw EngineError.fault("plain step before start") }
        if let feed = plainFeed {
            let passStart = ContinuousClock.now
            guard let logits = try target.transformer.forward(tokens: [feed], cache: cache).first else {
                throw EngineError.fault("a decoding pass returned no logits")
            }
            plainTargetSeconds += Self.seconds(since: passStart)
            plainLogits = logits
        }
        plainRounds += 1
        if logprobs != nil { roundLogits = [plainLogits] }
        if plan.sampling.isPlainGreedy && !plan.recordDistributions {
            let token = try SamplingSettings.greedyToken(plainLogits)
            plainFeed = token
            return token
        }
        let probabilities = try plan.sampling.process(
            logits: plainLogits.map(Double.init), history: promptTokens + generated)
        let token = try plan.sampling.choose(from: probabilities, using: &plainRandom)
        plainFeed = token
        if plan.recordDistributions { lastDistribution = probabilities }
        return token
    }

    // MARK: - Text and stops

    /// Takes a round's tokens up to the first stop; the text that is safe to show.
    private func consume(_ tokens: [Int]) -> GenerationEvent {
        var taken: [Int] = []
        var text: [UInt8] = []
        for token in tokens {
            generated.append(token)
            taken.append(token)
            if plan.stop.atEndOfGeneration && target.tokenizer.endOfGeneration.contains(token) {
                return finish(.stop, tokens: taken, text: text)
            }
            held += Array(detokenizer.append(token).utf8)
            if let cut = earliestStop() {
                text += held[..<cut]
                held = []
                return finish(.stopSequence, tokens: taken, text: text)
            }
            text += releasable()
            if generated.count >= plan.stop.maxTokens { return finish(.length, tokens: taken, text: text) }
        }
        return GenerationEvent(tokens: taken, text: String(decoding: text, as: UTF8.self), finishReason: nil)
    }

    /// The byte offset in `held` where the earliest stop sequence begins, if one is complete.
    private func earliestStop() -> Int? {
        var best: Int? = nil
        for sequence in stopBytes where sequence.count <= held.count {
            var start = 0
            while start + sequence.count <= held.count {
                if held[start] == sequence[0] && held[start..<(start + sequence.count)].elementsEqual(sequence) {
                    if best.map({ start < $0 }) ?? true { best = start }
                    break
                }
                start += 1
            }
        }
        return best
    }

    /// Takes out of `held` everything but its longest suffix that begins some stop sequence.
    private func releasable() -> [UInt8] {
        var keep = 0
        for sequence in stopBytes {
            var length = min(sequence.count - 1, held.count)
            while length > keep {
                if held[(held.count - length)...].elementsEqual(sequence[..<length]) {
                    keep = length
                    break
                }
                length -= 1
            }
        }
        let released = Array(held[..<(held.count - keep)])
        held.removeFirst(held.count - keep)
        return released
    }

    private func finish(_ reason: FinishReason, tokens: [Int], text: [UInt8] = []) -> GenerationEvent {
        var text = text
        var reason = reason
        if reason != .stopSequence {
            // What the detokenizer still buffers, and text held for a stop sequence that did not come.
            held += Array(detokenizer.finish().utf8)
            if let cut = earliestStop() {
                text += held[..<cut]
                reason = .stopSequence
            } else {
                text += held
            }
            held = []
        }
        finishReason = reason
        finished = ContinuousClock.now
        leaveBatch()
        returnCaches()
        return GenerationEvent(tokens: tokens, text: String(decoding: text, as: UTF8.self), finishReason: reason)
    }

    /// Stops running passes with the batcher's other generations (the generation ended, or its owner gives up on
    /// it after an error): they no longer wait for this one. Its caches run any later pass alone.
    public func leaveBatch() {
        member?.leave()
        member = nil
    }

    deinit { member?.leave() }

    /// Gives the caches to ``prefixCache`` with the tokens their rows hold.
    private func returnCaches() {
        guard let prefixCache else { return }
        if let decoder {
            prefixCache.give(target: decoder.targetCache, holding: decoder.cachedTargetTokens)
            if let draftCache = decoder.draftCache {
                prefixCache.give(draft: draftCache, holding: decoder.cachedDraftTokens)
            }
        } else if let plainCache {
            prefixCache.give(target: plainCache, holding: Array((promptTokens + generated).prefix(plainCache.length)))
        }
    }

    static func seconds(since start: ContinuousClock.Instant) -> Double {
        seconds(between: start, and: ContinuousClock.now)
    }

    static func seconds(between start: ContinuousClock.Instant, and end: ContinuousClock.Instant) -> Double {
        (end - start).inSeconds
    }
}
