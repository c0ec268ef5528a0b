import SpeculaKernels
import SpeculaModels
import SpeculaTheory
import SpeculaVerify

/// Speculative decoding of chains with a draft model: draft γ tokens, one target pass over them, verify, commit
/// the accepted path in both caches, and continue from the correction or bonus token.
///
/// Chains or trees: a chain is verified token by token (Leviathan et al.) or as a block (Sun et al.); a tree is
/// drafted level by level with each node's children drawn by the node verifier's draft law, and walked with that
/// verifier (RRS, RRSw, K-SEQ, SpecHub, greedy; token verification at one-child nodes). Temperature 0 uses the greedy
/// walk, whose output equals plain greedy decoding token for token because the forward pass is batch-invariant.
public final class SpeculativeDecoder {
    public enum ChainVerifier: String, Sendable, CaseIterable {
        case token
        case block
    }

    public let target: Transformer
    /// The draft model (nil with the n-gram drafter).
    public let draft: Transformer?
    /// With the n-gram drafter: the longest n-gram looked up (0: a draft model drafts).
    public let ngram: Int
    public let settings: SamplingSettings
    public let depth: Int
    public let verifier: ChainVerifier
    /// A tree shape and the rule at nodes with several children (nil: chains).
    public internal(set) var tree: TreeTopology?
    public let nodeVerifier: (any NodeVerifier)?
    public private(set) var targetCache: KVCache
    public private(set) var draftCache: KVCache?
    /// A reduced output head for the draft, in this decoder's draft cache only (``Transformer/makeOutputHead(tokens:)``):
    /// the drafts change, the verification keeps the target's law whatever they are.
    public var draftOutputHead: OutputHead? {
        get { draftCache?.outputHead }
        set { draftCache?.outputHead = newValue }
    }
    /// Where every draft and verification choice comes from: a seeded generator (the `seed` argument) unless
    /// replaced, e.g. by a ``ChoiceReplay`` to enumerate every outcome of a round with its exact probability.
    public var random: any RandomSource
    var step: UInt64 = 0
    /// Tokens emitted so far (prompt included), for the penalties.
    public internal(set) var history: [Int] = []
    /// The prompt's length (`history` beyond it was generated).
    var promptLength = 0
    /// The last emitted token: the root of the next round (no KV entry yet in either cache).
    var root: Int = 0
    /// Draft-cache rows missing before the root (a fully accepted chain's last draft was never fed).
    var draftBacklog: [Int] = []
    /// What adopted caches hold (consumed by the next ``start(prompt:)``).
    private var adoptedTarget: [Int] = []
    private var adoptedDraft: [Int] = []
    /// With ``recordEmittedLogits``: the target's logits at each token the last round emitted (the row it was chosen
    /// from), for log-probabilities. The rows are the round's own target pass, so nothing is computed for them.
    public var recordEmittedLogits = false
    public internal(set) var emittedLogits: [[Float]] = []
    /// The last target pass's logit rows, by batch index (kept until the round ends).
    var passLogits: [[Float]] = []
    /// Prompt tokens whose rows the last ``start(prompt:)`` kept from an adopted cache instead of feeding them.
    public private(set) var reusedPromptTokens = 0
    public internal(set) var telemetry = Telemetry()
    /// Chains only: stop drafting when the draft's own most likely next token has probability below this (its
    /// softmax at temperature 1, before any sampling setting). 0 drafts `depth` tokens every round. The choice
    /// depends on the draft side alone, so verification stays exact; not used with block verification.
    public var draftStop: Double = 0
    /// Trees: compute α* of the draft law at every node the walk reached (exact closed forms at the full vocabulary,
    /// about 10 ms a node at 151,936 tokens; the time is counted in `optimalSeconds`). Chains always do (it is one
    /// overlap sum per node).
    public var treeOptimum = false
    /// Chains with a draft model: how many tokens prompt lookup (n-grams of the text and the drafts so far) may
    /// propose for the draft's next positions, fed with the current one in the same draft pass (0: one token per
    /// pass). Drafts are sampled from the draft's own
    /// distributions exactly as without it — the same tokens from the same random stream — so the drafts, the
    /// verification and the output are unchanged; a proposal the draft agrees with saves its draft passes.
    public var lookahead = 0
    /// With a draft model: a round whose text ends with an n-gram of at least this many tokens that occurred
    /// earlier is drafted by prompt lookup alone — the tokens that followed it, verified by the target without
    /// running the draft (which catches up on the accepted tokens in its next pass). 0: never. Whether a round
    /// looks up depends on the emitted text alone, and each round keeps the target's law, so the output does too.
    public var lookupMatch = 0
    /// Without a draft model: propose a tree of at most this many nodes (``SuffixDrafter``: the continuations after
    /// every earlier occurrence of the text's longest repeated suffix, up to `ngram` tokens, `depth` levels), verified
    /// with ``CandidateVerifier`` (0: the n-gram chain of ``NGramDrafter``). A round whose proposal is a chain runs
    /// as an n-gram round on it.
    public var suffixNodes = 0
    /// The default mode: each round's kind — a plain step, a lookup round, a draft-model chain and its length — is
    /// chosen by this policy from the costs and acceptance of the rounds before (nil: the fixed shape).
    public var adaptive: AdaptivePolicy?
    /// The adaptive mode's chain round: the expected tokens per second of the round chosen (0: no stop on the
    /// draft's confidence), the other rows of the batch's last pass, and the confidences of the last chain's drafts (the
    /// policy reads them after chain rounds only).
    var chainRate = 0.0
    var chainOtherRows = 0
    var chainConfidences: [Double] = []
    /// Tokens the generation may still emit (the adaptive policy spreads the draft's catch-up over them).
    public var tokensLeft = Int.max
    /// ``start(prompt:)`` leaves the prompt for the draft to catch up on when it first drafts (a generation that never
    /// drafts never runs the draft model).
    public var deferDraftPrefill = false
    /// Called after every round of the adaptive mode (for traces).
    public var roundObserver: ((AdaptiveRound) -> Void)?
    /// The token ids of a reduced draft head to build when the adaptive mode first drafts (nil: none pending).
    public var lazyDraftVocabulary: [Int]?
    /// The default mode's first round is a plain step (nothing is known yet to plan from): ``start(prompt:)`` feeds
    /// the whole prompt and keeps its last row's logits here (nil when it left the last token to the first round),
    /// and that round chooses from them without a pass of its own — the first token comes with the prompt pass, as
    /// in plain decoding, not one pass later. The logits are the ones that round's one-row pass would give (each
    /// row's are computed as in a pass of its own), and its random stream is the same, so the output is too.
    /// ``restart(prompt:)`` returns to that state.
    var startRootLogits: [Float]?
    /// The root's logits while the root is fed and no round has run since the prompt (``startRootLogits``).
    var promptRootLogits: [Float]? { history.count == promptLength ? startRootLogits : nil }
    /// Chains at temperature > 0: also compute, each round, the exact expected tokens per step of token and of block
    /// verification of the round's own drafts (a paired comparison: the same drafts verified both ways, whatever
    /// verifier runs), summed in the telemetry. O(γ·|V|) a round.
    public var pairedBlock = false

    public convenience init(
        target: Transformer, draft: Transformer, targetTokenizer: Tokenizer, draftTokenizer: Tokenizer,
        settings: SamplingSettings, depth: Int, verifier: ChainVerifier = .token, tree: TreeTopology? = nil,
        nodeVerifier: (any NodeVerifier)? = nil, capacity: Int, seed: UInt64 = 0
    ) throws {
        try targetTokenizer.requireSameVocabulary(as: draftTokenizer)
        try self.init(
            target: target, draft: draft, settings: settings, depth: depth, verifier: verifier, tree: tree,
            nodeVerifier: nodeVerifier, capacity: capacity, seed: seed)
    }

    /// A decoder over token ids only (the caller has checked that both models share a vocabulary; models without
    /// a tokenizer, like ``SyntheticModel``s, included).
    public init(
        target: Transformer, draft: Transformer, settings: SamplingSettings, depth: Int,
        verifier: ChainVerifier = .token, tree: TreeTopology? = nil, nodeVerifier: (any NodeVerifier)? = nil,
        capacity: Int, seed: UInt64 = 0
    ) throws {
        if target.vocabularySize != draft.vocabularySize {
            throw TokenizerError.mismatch(
                reason: "output sizes differ (\(target.vocabularySize) vs \(draft.vocabularySize))")
        }
        if depth < 1 { throw VerifyError.invalidSetting(name: "depth", value: "\(depth)", reason: "must be ≥ 1") }
        try settings.validate()
        self.target = target
        self.draft = draft
        self.settings = settings
        self.depth = depth
        self.verifier = verifier
        self.tree = tree
        self.nodeVerifier = nodeVerifier
        if let tree {
            let widest = tree.children.map(\.count).max() ?? 0
            if widest > 1 {
                guard let nodeVerifier else {
                    throw VerifyError.invalidSetting(
                        name: "verifier", value: "none",
                        reason: "a tree with branching nodes needs a multi-draft verifier")
                }
                for node in 0..<tree.nodeCount where tree.children[node].count > 1 {
                    if !nodeVerifier.supports(draftCount: tree.children[node].count) {
                        throw VerifyError.invalidSetting(
                            name: "tree", value: "node \(node) has \(tree.children[node].count) children",
                            reason: "\(nodeVerifier.name) does not verify \(tree.children[node].count) drafts at a node"
                        )
                    }
                }
            }
        }
        targetCache = target.makeCache(capacity: capacity)
        draftCache = draft.makeCache(capacity: capacity)
        ngram = 0
        random = SplitMix64(seed: seed)
    }

    /// Speculative decoding with the n-gram drafter (no draft model): each round proposes the tokens that followed
    /// the most recent earlier occurrence of the text's last `ngram` (down to 1) tokens, as a chain of at most
    /// `depth` tokens. The draft distribution at each proposed node is the point mass on the proposed token, so the
    /// verifiers stay exact (token verification accepts it with probability p(x)).
    public init(
        target: Transformer, settings: SamplingSettings, depth: Int, ngram: Int, verifier: ChainVerifier = .token,
        capacity: Int, seed: UInt64 = 0
    ) throws {
        if depth < 1 { throw VerifyError.invalidSetting(name: "depth", value: "\(depth)", reason: "must be ≥ 1") }
        if ngram < 1 { throw VerifyError.invalidSetting(name: "ngram", value: "\(ngram)", reason: "must be ≥ 1") }
        try settings.validate()
        self.target = target
        draft = nil
        self.ngram = ngram
        self.settings = settings
        self.depth = depth
        self.verifier = verifier
        tree = nil
        nodeVerifier = nil
        targetCache = target.makeCache(capacity: capacity)
        draftCache = nil
        random = SplitMix64(seed: seed)
    }

    /// Changes the draft tree between rounds (``AutoPlanner`` re-plans as acceptance is observed). A tree with
    /// branching nodes needs a node verifier that serves each of them; the tree must fit the caches.
    public func setTree(_ topology: TreeTopology) throws {
        guard draft != nil else {
            throw VerifyError.invalidSetting(
                name: "tree", value: "\(topology.nodeCount) nodes", reason: "the n-gram drafter drafts chains")
        }
        for node in 0..<topology.nodeCount where topology.children[node].count > 1 {
            guard let nodeVerifier, nodeVerifier.supports(draftCount: topology.children[node].count) else {
                throw VerifyError.invalidSetting(
                    name: "tree", value: "node \(node) has \(topology.children[node].count) children",
                    reason: "\(nodeVerifier?.name ?? "no verifier") does not verify that many drafts at a node")
            }
        }
        if topology.nodeCount > targetCache.capacity {
            throw ModelError.contextOverflow(needed: topology.nodeCount, capacity: targetCache.capacity)
        }
        tree = topology
    }

    /// Takes caches that already hold rows — `targetTokens` in the target's, `draftTokens` in the draft's — for the
    /// next ``start(prompt:)`` to keep the rows of the longest prefix it shares with them instead of feeding them
    /// again (a conversation's next turn). The caches must have this decoder's capacity and belong to its models.
    public func adopt(target cache: KVCache, holding targetTokens: [Int], draft: KVCache?, holding draftTokens: [Int])
        throws
    {
        guard cache.capacity == targetCache.capacity, cache.length == targetTokens.count,
            cache.layerCount == targetCache.layerCount, cache.width == targetCache.width
        else { throw EngineError.fault("an adopted target cache does not fit the decoder") }
        cache.outputHead = nil
        targetCache = cache
        adoptedTarget = targetTokens
        if let draft, let draftCache, draft.capacity == draftCache.capacity, draft.length == draftTokens.count,
            draft.layerCount == draftCache.layerCount, draft.width == draftCache.width
        {
            draft.outputHead = nil
            self.draftCache = draft
            adoptedDraft = draftTokens
        }
    }

    /// The tokens whose rows the target's and the draft's caches hold now (for ``adopt(target:holding:draft:holding:)``
    /// by the next conversation turn).
    public var cachedTargetTokens: [Int] { Array(history.prefix(targetCache.length)) }
    public var cachedDraftTokens: [Int] { Array(history.prefix(draftCache?.length ?? 0)) }

    /// Feeds the prompt (all but its last token) to both models; the last token becomes the first root. Rows of
    /// adopted caches that match the prompt's beginning are kept (``reusedPromptTokens``). The default mode feeds
    /// the target the last token too, for its first round (``startRootLogits``).
    public func start(prompt: [Int]) throws {
        guard let last = prompt.last else { throw ModelError.invalid(path: "prompt", reason: "the prompt is empty") }
        let kept = min(Self.commonPrefix(adoptedTarget, prompt), prompt.count - 1, targetCache.length)
        let draftKept = min(Self.commonPrefix(adoptedDraft, prompt), prompt.count - 1, draftCache?.length ?? 0)
        adoptedTarget = []
        adoptedDraft = []
        _ = targetCache.trim(to: kept)
        _ = draftCache?.trim(to: draftKept)
        reusedPromptTokens = kept
        // The default mode feeds the last token too (``startRootLogits``); the fixed shapes feed it with their
        // first round's drafts.
        let foldsFirstRound = adaptive != nil
        if foldsFirstRound && prompt.count > targetCache.capacity {
            throw ModelError.contextOverflow(needed: prompt.count, capacity: targetCache.capacity)
        }
        let body = Array(prompt[kept..<(foldsFirstRound ? prompt.count : prompt.count - 1)])
        let draftBody = Array(prompt[draftKept..<(prompt.count - 1)])
        telemetry = Telemetry()
        startRootLogits = nil
        if !body.isEmpty {
            let start = ContinuousClock.now
            targetCache.lastPass = nil
            let rows = try target.forward(
                tokens: body, cache: targetCache, logitRows: foldsFirstRound ? [body.count - 1] : [])
            if foldsFirstRound { startRootLogits = rows.first }
            telemetry.targetPrefillSeconds = Self.seconds(since: start)
            // A prompt pass shared with others or fed in pieces (a batch) says little about a row's cost alone; one
            // that ran whole and alone in a batch is timed by the pass itself, not by this generation's wait.
            if let shared = targetCache.lastPass {
                if shared.segments == 1 && shared.ownRows == body.count {
                    adaptive?.observePrompt(tokens: body.count, seconds: shared.seconds)
                }
            } else {
                adaptive?.observePrompt(tokens: body.count, seconds: telemetry.targetPrefillSeconds)
            }
        }
        history = prompt
        promptLength = prompt.count
        root = last
        draftBacklog = []
        if !draftBody.isEmpty, let draft, let draftCache {
            if deferDraftPrefill {
                draftBacklog = draftBody
            } else {
                let draftStart = ContinuousClock.now
                _ = try draft.forward(tokens: draftBody, cache: draftCache, logitRows: [])
                telemetry.draftPrefillSeconds = Self.seconds(since: draftStart)
            }
        }
    }

    /// Back to the state right after ``start(prompt:)`` with the same prompt, without feeding it again: both caches
    /// are trimmed to the prompt's rows. The random stream continues (a new sample), telemetry accumulates.
    public func restart(prompt: [Int]) throws {
        guard let last = prompt.last, targetCache.length >= prompt.count - 1 else {
            throw ModelError.invalid(path: "prompt", reason: "restart needs the prompt given to start")
        }
        // A start that fed the root (the default mode) is returned to with the root fed and its logits kept.
        if startRootLogits != nil && targetCache.length >= prompt.count {
            _ = targetCache.trim(to: prompt.count)
        } else {
            _ = targetCache.trim(to: prompt.count - 1)
            startRootLogits = nil
        }
        history = prompt
        root = last
        draftBacklog = []
        promptLength = prompt.count
        if let draftCache {
            // With a deferred prompt pass the state after start has an empty draft cache (the whole body owed);
            // otherwise the draft keeps the prompt's rows.
            let kept = deferDraftPrefill ? 0 : min(draftCache.length, prompt.count - 1)
            _ = draftCache.trim(to: kept)
            draftBacklog = Array(prompt[kept..<(prompt.count - 1)])
        }
    }

    /// The target's logits after the emitted text (feeds the root to a scratch copy of the state: for tests and
    /// checks; it does not change the decoder).
    public func rootLogits() throws -> [Float] {
        let length = targetCache.length
        defer { _ = targetCache.trim(to: length) }
        return try target.forward(tokens: [root], cache: targetCache)[0]
    }

    /// The draft's logits after the emitted text (feeds the missing rows and the root to the draft cache, then
    /// trims them away: for tests and checks). Nil with the n-gram drafter.
    public func draftRootLogits() throws -> [Float]? {
        guard let draft, let draftCache else { return nil }
        let length = draftCache.length
        defer { _ = draftCache.trim(to: length) }
        let rows = try draft.forward(tokens: draftBacklog + [root], cache: draftCache)
        return rows.last
    }

    /// Temperature 0 with no penalty: tokens are argmaxes of the logits, no distribution is built.
    var fastGreedy: Bool { settings.isPlainGreedy }

    /// The processed distribution after `path` (tokens after the root) — penalties see the whole text so far.
    func process(_ logits: [Float], path: [Int] = []) throws -> [Double] {
        try settings.process(logits: logits.map(Double.init), history: path.isEmpty ? history : history + path)
    }

    /// One round: returns the emitted tokens (at least one).
    public func round() throws -> [Int] {
        if adaptive != nil { return try adaptiveRound() }
        guard let draft, let draftCache else {
            var acceptedNodes: [Int] = []
            return suffixNodes > 0 ? try suffixRound(acceptedNodes: &acceptedNodes) : try ngramRound()
        }
        if lookupMatch > 0 {
            let proposal = NGramDrafter.propose(
                history: history, longest: max(ngramLongest, lookupMatch), shortest: lookupMatch,
                count: min(depth, targetCache.capacity - targetCache.length - 1))
            if !proposal.isEmpty { return try ngramRound(proposal: proposal) }
        }
        if tree != nil { return try treeRound(draft: draft, draftCache: draftCache) }
        return try chainRound(draft: draft, draftCache: draftCache, length: depth)
    }

    /// Verifies a chain: the greedy walk at temperature 0, else token or block verification with this round's
    /// uniforms. Advances the round counter.
    func walkChain(_ tree: DraftTree, _ targetVectors: [[Double]], verifier: ChainVerifier) throws -> TreeWalkResult {
        defer { step += 1 }
        if settings.isGreedy { return try TreeWalk.greedyWalk(tree: tree, target: targetVectors) }
        var uniforms = random.roundStream(step: step)
        switch verifier {
        case .token:
            var decision = NodeDecision()
            return try TreeWalk.walk(
                tree: tree, target: targetVectors, verifier: { _ in TokenVerifier() }, decision: &decision,
                using: &uniforms)
        case .block:
            return try TreeWalk.blockWalk(tree: tree, target: targetVectors, using: &uniforms)
        }
    }

    /// The end of every round: keep the root and the accepted nodes (`path`: tree indices from the root, ascending)
    /// in the target's cache, make the last emitted token the next root, and count the round. The draft side (its
    /// cache rows or backlog) is the round's own business, done before.
    func finishRound(prefix: Int, path: [Int], result: TreeWalkResult, drafted: Int, depths: Int) -> [Int] {
        targetCache.commit(prefix: prefix, kept: path)
        let emitted = result.emittedTokens
        if recordEmittedLogits {
            // Emitted token j was chosen at path node j (the root's row gives the first).
            emittedLogits = zip(path, emitted).map { passLogits[$0.0] }
        }
        passLogits = []
        root = emitted[emitted.count - 1]
        history += emitted
        let accepted = result.acceptedNodes.count
        telemetry.countRound(
            drafted: drafted, accepted: accepted, emitted: emitted.count, depths: depths, acceptedDepths: accepted)
        return emitted
    }

    /// The length of the longest common prefix of two token lists.
    public static func commonPrefix(_ a: [Int], _ b: [Int]) -> Int {
        var n = 0
        let limit = min(a.count, b.count)
        while n < limit && a[n] == b[n] { n += 1 }
        return n
    }

    static func seconds(since start: ContinuousClock.Instant) -> Double {
        (ContinuousClock.now - start).inSeconds
    }

}
