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
    public private(set) var tree: TreeTopology?
    public let nodeVerifier: (any NodeVerifier)?
    let targetCache: KVCache
    let draftCache: KVCache?
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
    public private(set) var history: [Int] = []
    /// The last emitted token: the root of the next round (no KV entry yet in either cache).
    var root: Int = 0
    /// Draft-cache rows missing before the root (a fully accepted chain's last draft was never fed).
    var draftBacklog: [Int] = []
    public private(set) var telemetry = Telemetry()
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
    /// Chains at temperature > 0: also compute, each round, the exact expected tokens per step of token and of block
    /// verification of the round's own drafts (a paired comparison: the same drafts verified both ways, whatever
    /// verifier runs), summed in the telemetry. O(γ·|V|) a round.
    public var pairedBlock = false

    /// Counts of one generation.
    public struct Telemetry: Sendable, Codable, Equatable {
        public var rounds = 0
        public var draftedTokens = 0
        public var acceptedTokens = 0
        public var emittedTokens = 0
        /// Wall time in draft forward passes and sampling, in the target's forward passes, and in whole rounds.
        public var draftSeconds = 0.0
        public var targetPassSeconds = 0.0
        public var roundSeconds = 0.0
        /// The prompt passes of ``SpeculativeDecoder/start(prompt:)``: the target's, and the draft model's.
        public var targetPrefillSeconds = 0.0
        public var draftPrefillSeconds = 0.0
        /// Chains cut short by `draftStop`.
        public var stoppedEarly = 0
        /// Draft forward passes, and drafts whose distribution came from a lookahead row (no pass of their own).
        public var draftPasses = 0
        public var lookaheadDrafts = 0
        /// Rounds drafted by prompt lookup instead of the draft model (``SpeculativeDecoder/lookupMatch``), and the
        /// proposed tokens they accepted.
        public var lookupRounds = 0
        public var lookupAccepted = 0
        /// With ``SpeculativeDecoder/pairedBlock``: rounds compared, and the sums over them of the expected tokens
        /// per step (accepted drafts + 1) under token verification, `1 + Σ_k Π_{j≤k} min(1, p_j(x_j)/q_j(x_j))`, and
        /// under block verification, `1 + Σ_t t·P(τ = t)` (ALGORITHMS.md §2, §3).
        public var pairedRounds = 0
        public var pairedTokenSteps = 0.0
        public var pairedBlockSteps = 0.0
        /// Accepted draft tokens by depth: `acceptedAtDepth[k]` counts rounds that accepted a (k+1)-th token,
        /// `draftedAtDepth[k]` rounds that drafted one.
        public var acceptedAtDepth: [Int] = []
        public var draftedAtDepth: [Int] = []
        /// Chains verified token by token (or walked greedily): the nodes the walk reached (accepted ones and the
        /// first rejected one), and the sum over them of α* = Σ_x min(p(x), q(x)) — the optimal acceptance of one
        /// draft from q, which token verification attains in expectation. `reachedAccepted / optimalSum` is the
        /// verifier's measured efficiency (1 up to sampling noise).
        public var reachedNodes = 0
        public var reachedAccepted = 0
        public var optimalSum = 0.0
        /// Seconds spent computing α* at tree nodes (``SpeculativeDecoder/treeOptimum``).
        public var optimalSeconds = 0.0
        /// Per child rank r: reached nodes with more than r children, and how often the walk accepted the child
        /// of rank r there (the per-child acceptance vector a_r = accepted / reached, as Sequoia plans with).
        public var rankReached: [Int] = []
        public var rankAccepted: [Int] = []
        public init() {}

        /// a_r for every rank reached so far.
        public var childAcceptance: [Double] {
            zip(rankAccepted, rankReached).map { $1 == 0 ? 0 : Double($0) / Double($1) }
        }

        mutating func countRanks(tree: DraftTree, accepted: [Int]) {
            for (index, node) in ([0] + accepted).enumerated() {
                let children = tree.children[node]
                if children.isEmpty { continue }
                while rankReached.count < children.count {
                    rankReached.append(0)
                    rankAccepted.append(0)
                }
                for rank in children.indices { rankReached[rank] += 1 }
                if index < accepted.count, let rank = children.firstIndex(of: accepted[index]) {
                    rankAccepted[rank] += 1
                }
            }
        }
        /// Mean α* over the reached nodes, and measured acceptance over the same nodes divided by it.
        public var optimalAcceptance: Double { reachedNodes == 0 ? 0 : optimalSum / Double(reachedNodes) }
        public var efficiency: Double { optimalSum == 0 ? 0 : Double(reachedAccepted) / optimalSum }

        /// One round: its drafted, accepted and emitted tokens, and the depths it drafted and accepted.
        mutating func countRound(drafted: Int, accepted: Int, emitted: Int, depths: Int, acceptedDepths: Int) {
            rounds += 1
            draftedTokens += drafted
            acceptedTokens += accepted
            emittedTokens += emitted
            countDepths(drafted: depths, accepted: acceptedDepths)
        }

        /// The α* of each node a chain's walk reached (the accepted ones and the first rejected one).
        mutating func countOptimal(_ reached: [Double], accepted: Int) {
            optimalSum += reached.reduce(0, +)
            reachedNodes += reached.count
            reachedAccepted += accepted
        }

        /// One round that drafted `drafted` levels and accepted `accepted` of them.
        mutating func countDepths(drafted: Int, accepted: Int) {
            while draftedAtDepth.count < drafted {
                draftedAtDepth.append(0)
                acceptedAtDepth.append(0)
            }
            for k in 0..<drafted {
                draftedAtDepth[k] += 1
                if k < accepted { acceptedAtDepth[k] += 1 }
            }
        }

        /// Time outside both models' forward passes: the target's logits made into distributions, the verification
        /// walk, the commits.
        public var verificationSeconds: Double { max(0, roundSeconds - draftSeconds - targetPassSeconds) }
        /// Tokens per target pass, bonus and correction included.
        public var tokensPerStep: Double { rounds == 0 ? 0 : Double(emittedTokens) / Double(rounds) }
        public var acceptanceRate: Double { draftedTokens == 0 ? 0 : Double(acceptedTokens) / Double(draftedTokens) }
    }

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

    /// Feeds the prompt (all but its last token) to both models; the last token becomes the first root.
    public func start(prompt: [Int]) throws {
        guard let last = prompt.last else { throw ModelError.invalid(path: "prompt", reason: "the prompt is empty") }
        _ = targetCache.trim(to: 0)
        _ = draftCache?.trim(to: 0)
        let body = Array(prompt.dropLast())
        telemetry = Telemetry()
        if !body.isEmpty {
            let start = ContinuousClock.now
            _ = try target.forward(tokens: body, cache: targetCache, logitRows: [])
            telemetry.targetPrefillSeconds = Self.seconds(since: start)
            let draftStart = ContinuousClock.now
            if let draft, let draftCache { _ = try draft.forward(tokens: body, cache: draftCache, logitRows: []) }
            telemetry.draftPrefillSeconds = Self.seconds(since: draftStart)
        }
        history = prompt
        root = last
        draftBacklog = []
    }

    /// Back to the state right after ``start(prompt:)`` with the same prompt, without feeding it again: both caches
    /// are trimmed to the prompt's rows. The random stream continues (a new sample), telemetry accumulates.
    public func restart(prompt: [Int]) throws {
        guard let last = prompt.last, targetCache.length >= prompt.count - 1 else {
            throw ModelError.invalid(path: "prompt", reason: "restart needs the prompt given to start")
        }
        _ = targetCache.trim(to: prompt.count - 1)
        _ = draftCache?.trim(to: prompt.count - 1)
        history = prompt
        root = last
        draftBacklog = []
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

    /// The processed distribution after `path` (tokens after the root) — penalties see the whole text so far.
    func process(_ logits: [Float], path: [Int] = []) throws -> [Double] {
        try settings.process(logits: logits.map(Double.init), history: path.isEmpty ? history : history + path)
    }

    /// One round: returns the emitted tokens (at least one).
    public func round() throws -> [Int] {
        guard let draft, let draftCache else { return try ngramRound() }
        if lookupMatch > 0 {
            let proposal = NGramDrafter.propose(
                history: history, longest: max(ngramLongest, lookupMatch), shortest: lookupMatch,
                count: min(depth, targetCache.capacity - targetCache.length - 1))
            if !proposal.isEmpty { return try ngramRound(proposal: proposal) }
        }
        if tree != nil { return try treeRound(draft: draft, draftCache: draftCache) }
        return try chainRound(draft: draft, draftCache: draftCache, length: depth)
    }

    /// A chain round of at most `length` drafts (the decoder's depth, or a chain-shaped tree's).
    func chainRound(draft: Transformer, draftCache: KVCache, length: Int) throws -> [Int] {
        let roundStart = ContinuousClock.now
        defer { telemetry.roundSeconds += Self.seconds(since: roundStart) }
        let prefix = targetCache.length
        // The root and at least one draft must fit.
        let room = targetCache.capacity - prefix - 1
        if room < 1 { throw ModelError.contextOverflow(needed: prefix + 2, capacity: targetCache.capacity) }
        let gamma = min(length, room)
        // 1. Draft a chain: feed the backlog and the root, then each draft but the last. With a lookahead, a pass also
        // feeds the n-gram proposal for the next positions: each draft is still sampled from the draft's own
        // distribution, and while it equals the proposed token the next distribution is already computed.
        var drafts: [Int] = []
        var draftVectors: [[Double]] = []
        var feed = draftBacklog + [root]
        draftBacklog = []
        var ready: [[Float]] = []  // logits already computed for the next positions
        var assumed: [Int] = []  // the proposed tokens they assume, fed to the draft cache
        let draftStart = ContinuousClock.now
        for position in 0..<gamma {
            let logits: [Float]
            if ready.isEmpty {
                let look =
                    lookahead > 0 && position < gamma - 1
                    ? NGramDrafter.propose(
                        history: history + drafts, longest: ngramLongest, count: min(lookahead, gamma - position - 1))
                    : []
                let rows = try draft.forward(
                    tokens: feed + look, cache: draftCache,
                    logitRows: Array((feed.count - 1)..<(feed.count + look.count)))
                telemetry.draftPasses += 1
                logits = rows[0]
                ready = Array(rows.dropFirst())
                assumed = look
            } else {
                logits = ready.removeFirst()
                telemetry.lookaheadDrafts += 1
            }
            // A draft unsure of its next token (after the first) ends the chain: that token would rarely be kept.
            if position > 0 && draftStop > 0 && verifier != .block
                && Double(Ops.maximumProbability(logits)) < draftStop
            {
                telemetry.stoppedEarly += 1
                // The last draft was fed: its row stays in the draft cache like an unfed one would not.
                break
            }
            let q = try process(logits, path: drafts)
            let token =
                settings.isGreedy
                ? Probability.argmax(q) : (random.categorical(q) ?? 0)
            drafts.append(token)
            draftVectors.append(q)
            if let proposed = assumed.first, proposed == token {
                assumed.removeFirst()  // its row is in the cache, and the next logits are ready
                feed = []
            } else {
                _ = draftCache.trim(to: draftCache.length - assumed.count)
                assumed = []
                ready = []
                feed = [token]
            }
            if position == gamma - 1 { break }
        }
        // Rows of proposed tokens past the last draft are dropped; the cache holds the root and the drafts fed.
        _ = draftCache.trim(to: draftCache.length - assumed.count)
        telemetry.draftSeconds += Self.seconds(since: draftStart)
        let fed = draftCache.length - prefix - 1
        let drafted = drafts.count
        // 2. One target pass over the root and the drafts.
        let nodes = [root] + drafts
        let verifyStart = ContinuousClock.now
        let logits = try target.forward(tokens: nodes, cache: targetCache, logitRows: Array(nodes.indices))
        telemetry.targetPassSeconds += Self.seconds(since: verifyStart)
        let targetVectors = try logits.indices.map { try process(logits[$0], path: Array(drafts.prefix($0))) }
        if pairedBlock && !settings.isGreedy && !drafts.isEmpty {
            try comparePaired(targetVectors, draftVectors, drafts)
        }
        // 3. Verify.
        var tree = DraftTree(rootToken: root)
        for (index, token) in drafts.enumerated() {
            tree.expand(index, draft: draftVectors[index], law: .withoutReplacement, childTokens: [token])
        }
        let result = try walkChain(tree, targetVectors, verifier: verifier)
        if verifier == .token || settings.isGreedy {
            recordOptimal(targetVectors, draftVectors, accepted: result.acceptedNodes.count)
        }
        telemetry.countRanks(tree: tree, accepted: result.acceptedNodes)
        // 4. Commit the accepted path in both caches; the last emitted token is the next root.
        let accepted = result.acceptedNodes.count
        targetCache.commit(prefix: prefix, kept: Array(0...accepted))
        // The draft holds rows for the root and the drafts it was fed (all but the last of a full chain, unless a
        // lookahead fed it; all of a chain cut short: the stopping step fed the last one), at the target's positions.
        draftCache.commit(prefix: prefix, kept: Array(0...min(accepted, fed)))
        if accepted > fed { draftBacklog = [drafts[drafted - 1]] }

        let emitted = result.emittedTokens
        root = emitted[emitted.count - 1]
        history += emitted
        telemetry.countRound(
            drafted: drafted, accepted: accepted, emitted: emitted.count, depths: drafted, acceptedDepths: accepted)
        return emitted
    }

    /// The longest n-gram looked up with a draft model (the lookahead's proposals; lookup rounds, where
    /// ``lookupMatch`` may ask for more).
    static let ngramLongestDefault = 3
    var ngramLongest: Int { ngram > 0 ? ngram : Self.ngramLongestDefault }

    /// An n-gram round: propose a continuation from the text so far (or take `proposal`), one target pass over the
    /// root and the proposal, verify (point-mass draft vectors), commit. With no earlier occurrence the round is
    /// one plain step. With a draft model (a lookup round) the draft is not run: the root and the accepted tokens
    /// join the rows it will be fed next.
    func ngramRound(proposal given: [Int]? = nil) throws -> [Int] {
        let roundStart = ContinuousClock.now
        defer { telemetry.roundSeconds += Self.seconds(since: roundStart) }
        let prefix = targetCache.length
        let room = targetCache.capacity - prefix - 1
        if room < 0 { throw ModelError.contextOverflow(needed: prefix + 1, capacity: targetCache.capacity) }
        let draftStart = ContinuousClock.now
        let proposal = given ?? NGramDrafter.propose(history: history, longest: ngram, count: min(depth, room))
        telemetry.draftSeconds += Self.seconds(since: draftStart)
        let nodes = [root] + proposal
        let verifyStart = ContinuousClock.now
        let logits = try target.forward(tokens: nodes, cache: targetCache, logitRows: Array(nodes.indices))
        telemetry.targetPassSeconds += Self.seconds(since: verifyStart)
        let targetVectors = try logits.indices.map { try process(logits[$0], path: Array(proposal.prefix($0))) }
        var tree = DraftTree(rootToken: root)
        for (index, token) in proposal.enumerated() {
            var pointMass = [Double](repeating: 0, count: target.vocabularySize)
            pointMass[token] = 1
            tree.expand(index, draft: pointMass, law: .withoutReplacement, childTokens: [token])
        }
        // With nothing proposed the walk just samples the root's target distribution (block verification needs a
        // draft, token verification of an empty chain is that sample).
        let result = try walkChain(tree, targetVectors, verifier: proposal.isEmpty ? .token : verifier)
        if verifier == .token || settings.isGreedy {
            // α* against a point mass on x is p(x).
            let reached = min(result.acceptedNodes.count + 1, proposal.count)
            telemetry.countOptimal(
                (0..<reached).map { targetVectors[$0][proposal[$0]] }, accepted: result.acceptedNodes.count)
        }
        let accepted = result.acceptedNodes.count
        targetCache.commit(prefix: prefix, kept: Array(0...accepted))
        if draft != nil {
            draftBacklog += [root] + proposal.prefix(accepted)
            telemetry.lookupRounds += 1
            telemetry.lookupAccepted += accepted
        }
        let emitted = result.emittedTokens
        root = emitted[emitted.count - 1]
        history += emitted
        telemetry.countRound(
            drafted: proposal.count, accepted: accepted, emitted: emitted.count, depths: proposal.count,
            acceptedDepths: accepted)
        return emitted
    }

    /// The paired comparison of one chain (``pairedBlock``): both verifiers' exact expected tokens per step.
    func comparePaired(_ target: [[Double]], _ draft: [[Double]], _ drafts: [Int]) throws {
        var reach = 1.0
        var tokenSteps = 1.0
        for (k, token) in drafts.enumerated() {
            let q = draft[k][token]
            reach *= q > 0 ? min(1, target[k][token] / q) : 0
            tokenSteps += reach
        }
        let law = try BlockVerifier.decide(target: target, draft: draft, drafts: drafts).acceptedLengthLaw
        let blockSteps = 1 + law.enumerated().reduce(0) { $0 + Double($1.offset) * $1.element }
        telemetry.pairedRounds += 1
        telemetry.pairedTokenSteps += tokenSteps
        telemetry.pairedBlockSteps += blockSteps
    }

    /// Adds the reached nodes of a chain (the accepted ones and the first rejected one) to the α* telemetry.
    func recordOptimal(_ target: [[Double]], _ draft: [[Double]], accepted: Int) {
        let reached = min(accepted + 1, draft.count)
        telemetry.countOptimal(
            (0..<reached).map { k in zip(target[k], draft[k]).reduce(0) { $0 + min($1.0, $1.1) } }, accepted: accepted)
    }

    /// α* of each reached expanded node's draft law and draft count (RRS: with replacement; RRSw, K-SEQ-style
    /// draws without replacement; the greedy law; SpecHub's hub pair; one child: Σ min(p, q)), and whether the walk
    /// accepted a child there. A node whose α* has no method at this size (n ≥ 4 without replacement on a large
    /// support) is left out.
    func recordTreeOptimum(_ tree: DraftTree, _ target: [[Double]], accepted: [Int]) {
        let start = ContinuousClock.now
        defer { telemetry.optimalSeconds += Self.seconds(since: start) }
        var values: [Double] = []
        var kept = 0
        for (index, node) in ([0] + accepted).enumerated() {
            let count = tree.children[node].count
            guard count > 0, let q = tree.draftProbabilities[node], let law = tree.laws[node] else { continue }
            let p = target[node]
            let value: Double?
            if count == 1 {
                value = Probability.overlap(p, q)
            } else {
                switch law {
                case .independent: value = try? OptimalAcceptance.withReplacement(target: p, draft: q, count: count)
                case .withoutReplacement:
                    value = try? OptimalAcceptance.withoutReplacement(target: p, draft: q, count: count).value
                case .greedy: value = try? OptimalAcceptance.greedy(target: p, draft: q, count: count)
                case .hubPair: value = try? OptimalAcceptance.hubPair(target: p, draft: q)
                }
            }
            guard let value else { continue }
            values.append(value)
            if index < accepted.count { kept += 1 }
        }
        telemetry.countOptimal(values, accepted: kept)
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

    static func seconds(since start: ContinuousClock.Instant) -> Double {
        let elapsed = ContinuousClock.now - start
        return Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
    }

    /// A round without drafts (a one-node tree, which ``AutoPlanner`` picks when speculation does not pay): one
    /// target step. The draft model is not run; the root joins the rows it will be fed when drafting resumes.
    func plainRound() throws -> [Int] {
        let prefix = targetCache.length
        if prefix + 1 > targetCache.capacity {
            throw ModelError.contextOverflow(needed: prefix + 1, capacity: targetCache.capacity)
        }
        let verifyStart = ContinuousClock.now
        let logits = try target.forward(tokens: [root], cache: targetCache)[0]
        telemetry.targetPassSeconds += Self.seconds(since: verifyStart)
        let p = try process(logits)
        defer { step += 1 }
        let token: Int
        if settings.isGreedy {
            token = Probability.argmax(p)
        } else {
            var uniforms = random.roundStream(step: step)
            guard let drawn = uniforms.categorical(p) else { throw VerifyError.zeroMass(what: "target distribution") }
            token = drawn
        }
        draftBacklog.append(root)
        root = token
        history.append(token)
        telemetry.countRound(drafted: 0, accepted: 0, emitted: 1, depths: 0, acceptedDepths: 0)
        return [token]
    }

    /// A tree round: draft level by level (one draft pass per level over the nodes to expand, each seeing the
    /// committed text and its own ancestors), one target pass over the whole tree, the walk, and the commit of the
    /// accepted path in both caches.
    func treeRound(draft: Transformer, draftCache: KVCache) throws -> [Int] {
        guard let topology = tree else { return try chainRound(draft: draft, draftCache: draftCache, length: depth) }
        // A chain-shaped tree (as the auto planner picks at temperature 0) is drafted as a chain: the same draft law
        // and walk (token verification at one-child nodes), and the chain's lookahead applies.
        if topology.nodeCount > 1 && topology.children.allSatisfy({ $0.count <= 1 }) {
            return try chainRound(draft: draft, draftCache: draftCache, length: topology.depth)
        }
        let prefix = targetCache.length
        if prefix + topology.nodeCount > targetCache.capacity {
            throw ModelError.contextOverflow(needed: prefix + topology.nodeCount, capacity: targetCache.capacity)
        }
        let roundStart = ContinuousClock.now
        defer { telemetry.roundSeconds += Self.seconds(since: roundStart) }
        if topology.nodeCount == 1 { return try plainRound() }
        let draftStart = ContinuousClock.now
        var draftTree = DraftTree(rootToken: root)
        var draftRow: [Int: Int] = [:]  // drafted node → its row in the draft cache
        var paths: [[Int]] = [[]]  // tokens after the root, per drafted node
        var ancestors: [[Int]] = [[]]  // drafted nodes above each node
        // The root (and a missing row from the previous round) first.
        let rootLogits = try draft.forward(tokens: draftBacklog + [root], cache: draftCache)[0]
        telemetry.draftPasses += 1
        draftBacklog = []
        draftRow[0] = prefix
        var vectors: [Int: [Double]] = [0: try process(rootLogits)]
        var level: [(shape: Int, node: Int)] = [(0, 0)]
        while !level.isEmpty {
            var next: [(shape: Int, node: Int)] = []
            for (shape, node) in level {
                let wanted = topology.children[shape]
                guard !wanted.isEmpty, let q = vectors[node] else { continue }
                let law = wanted.count == 1 ? DraftLaw.withoutReplacement : (nodeVerifier?.draftLaw ?? .independent)
                let tokens = try law.sample(draft: q, count: wanted.count, using: &random)
                let added = draftTree.expand(node, draft: q, law: law, childTokens: tokens)
                for (rank, child) in added.enumerated() {
                    paths.append(paths[node] + [tokens[rank]])
                    ancestors.append(ancestors[node] + [node])
                    next.append((wanted[rank], child))
                }
            }
            // One draft pass over the next level's nodes that will be expanded.
            let feed = next.filter { !topology.children[$0.shape].isEmpty }
            if !feed.isEmpty {
                let base = draftCache.length
                let logits = try draft.forward(
                    tokens: feed.map { draftTree.tokens[$0.node] },
                    positions: feed.map { prefix + draftTree.depths[$0.node] },
                    visibility: feed.indices.map { [$0] }, cache: draftCache, logitRows: Array(feed.indices),
                    treeBase: prefix,
                    cacheVisibility: feed.map { item in ancestors[item.node].compactMap { draftRow[$0] } })
                telemetry.draftPasses += 1
                for (index, item) in feed.enumerated() {
                    draftRow[item.node] = base + index
                    vectors[item.node] = try process(logits[index], path: paths[item.node])
                }
            }
            level = next
        }
        telemetry.draftSeconds += Self.seconds(since: draftStart)
        // One target pass over the tree.
        let count = draftTree.nodeCount
        let verifyStart = ContinuousClock.now
        let logits = try target.forward(
            tokens: draftTree.tokens, positions: draftTree.depths.map { prefix + $0 },
            visibility: (0..<count).map { ancestors[$0] + [$0] }, cache: targetCache, logitRows: Array(0..<count))
        telemetry.targetPassSeconds += Self.seconds(since: verifyStart)
        let targetVectors = try (0..<count).map { try process(logits[$0], path: paths[$0]) }
        let result: TreeWalkResult
        if settings.isGreedy {
            result = try TreeWalk.greedyWalk(tree: draftTree, target: targetVectors)
        } else {
            var uniforms = random.roundStream(step: step)
            var decision = NodeDecision()
            let rule: any NodeVerifier = nodeVerifier ?? TokenVerifier()
            result = try TreeWalk.walk(
                tree: draftTree, target: targetVectors, verifier: { _ in rule }, decision: &decision, using: &uniforms)
        }
        step += 1
        telemetry.countRanks(tree: draftTree, accepted: result.acceptedNodes)
        if treeOptimum && !settings.isGreedy {
            recordTreeOptimum(draftTree, targetVectors, accepted: result.acceptedNodes)
        }
        // Commit: the root and the accepted nodes, in both caches.
        let path = [0] + result.acceptedNodes
        targetCache.commit(prefix: prefix, kept: path)
        draftCache.commit(prefix: prefix, kept: path.compactMap { draftRow[$0].map { $0 - prefix } })
        if let last = path.last, draftRow[last] == nil { draftBacklog = [draftTree.tokens[last]] }
        let emitted = result.emittedTokens
        root = emitted[emitted.count - 1]
        history += emitted
        telemetry.countRound(
            drafted: count - 1, accepted: result.acceptedNodes.count, emitted: emitted.count,
            depths: draftTree.depths.max() ?? 0, acceptedDepths: result.acceptedNodes.count)
        return emitted
    }
}
