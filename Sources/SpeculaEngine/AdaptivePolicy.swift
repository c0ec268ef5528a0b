/// The default speculative mode's round-by-round choice: a plain step, a prompt-lookup round, or a draft-model
/// chain of some length — whichever gives the most expected tokens per second now, from costs and acceptance
/// observed in this generation's own rounds (no measurement pass before the first token).
///
/// Costs: the target's pass over `n` rows is modelled as `t(n) = t₁ + s·(n − 1)` (the weights read once, then a
/// cost per row); `t₁` comes from the rounds' one-row passes and `s` from the wider ones, with the prompt pass's
/// cost per token as the prior for `s`. A draft costs `d` seconds per drafted token (its passes and sampling, the
/// lookahead's savings included) and `c` per row it must catch up on (rows of plain and lookup rounds, and of the
/// prompt, which the draft is not fed until it first drafts); `d`'s prior is `t₁` scaled by the draft's share of
/// the two models' weight bytes.
///
/// Acceptance: per drafted position, geometric — a round that drafted `k` tokens and accepted `j` counts `j`
/// acceptances and, if `j < k`, one rejection — in counts that decay by ``memory`` per observation, so the
/// estimate follows the text. Lookup proposals are counted apart by the length of the n-gram that matched (1, 2,
/// 3 or more tokens). The draft model's prior follows the target's confidence (``observeConfidence(_:)``). While
/// no chain runs, the model's counts drift back toward their prior by ``drift`` a round: a text where drafting did
/// not pay is probed again now and then, less often the worse it went.
///
/// The choice depends only on what earlier rounds did (and how long they took), never on the round's own random
/// choices, so every round keeps the target's law whatever is chosen.
public struct AdaptivePolicy: Sendable, Equatable {
    public enum Choice: Sendable, Equatable, CustomStringConvertible {
        /// One target step.
        case plain
        /// Verify the first `k` tokens of the lookup proposal.
        case lookup(Int)
        /// Draft a chain of at most `γ` tokens with the draft model.
        case chain(Int)
        /// Verify the `k` most frequent nodes of the suffix drafter's tree (``SuffixDrafter``), a tree that
        /// branches, with the candidate rule.
        case suffix(Int)

        public var description: String {
            switch self {
            case .plain: return "plain"
            case .lookup(let k): return "lookup:\(k)"
            case .chain(let gamma): return "chain:\(gamma)"
            case .suffix(let k): return "suffix:\(k)"
            }
        }
    }

    /// Decayed counts of acceptances and rejections, with a prior worth `weight` observations.
    public struct Rate: Sendable, Equatable {
        public var prior: Double
        public var weight: Double
        public var accepted = 0.0
        public var rejected = 0.0

        public init(prior: Double, weight: Double) {
            self.prior = prior
            self.weight = weight
        }

        /// The per-position acceptance estimate.
        public var value: Double { (accepted + prior * weight) / (accepted + rejected + weight) }

        public mutating func observe(drafted: Int, accepted kept: Int, memory: Double) {
            accepted = accepted * memory + Double(kept)
            rejected = rejected * memory + (kept < drafted ? 1 : 0)
        }

        /// A round of copied proposals: `kept` levels accepted out of `offered`, the sum over the levels the walk
        /// reached of the share of the text's earlier occurrences that the proposal covered there (1 a level for
        /// a continuation every occurrence shared, as a chain after one occurrence). The value is then the ratio
        /// of kept levels to covered shares: the rate at which a continuation the text took a share `s` of the
        /// times is right is `value · s`. With shares of 1 this is ``observe(drafted:accepted:memory:)``; a level
        /// kept at a share below 1 counts less than one rejection (the "rejected" count may fall).
        public mutating func observe(kept: Int, offered: Double, memory: Double) {
            accepted = accepted * memory + Double(kept)
            rejected = rejected * memory + (offered - Double(kept))
        }

        mutating func decay(_ factor: Double) {
            accepted *= factor
            rejected *= factor
        }
    }

    /// The default mode reduces the draft's output head to the first this-many token ids (with the control tokens
    /// and the prompt's) when the output matrix is more than this share of the bytes a draft step reads and the
    /// vocabulary is more than twice as large. The drafts change, the verification keeps the target's law.
    public static let reducedHeadTokens = 32768
    public static let reducedHeadShare = 0.2

    // Costs (seconds), nil until observed. The target's passes: a moving average per row count (index `n − 1`,
    // passes of 1…``maxChain`` + 1 rows) with how many it has seen, and the straight line fitted through them.
    public private(set) var passSeconds: [Double] = []
    public private(set) var passCounts: [Int] = []
    private var sawFirstPass = false
    public private(set) var targetStep: Double?
    public private(set) var targetPerRow: Double?
    public private(set) var draftPerToken: Double?
    public private(set) var draftPerRow: Double?
    /// Priors: the prompt pass's seconds per token (for `s` and `c`), and the draft's share of the weight bytes
    /// relative to the target's (for `d` and `c`).
    public var prefillPerToken: Double?
    public var draftCostRatio: Double
    /// Measured before the generation (a server with several slots measures both models alone once at start): the
    /// target's one-row pass, through which the line of pass costs is drawn while the generation itself has run
    /// fewer than three one-row passes, and a draft step, the prior for `d`. A generation in a batch never runs a
    /// pass alone, so without these its costs would rest on an extrapolation.
    public var targetStepPrior: Double?
    public var draftTokenPrior: Double?

    /// Acceptance per drafted position: the draft model's, and lookup's by match length 1, 2, ≥ 3.
    public var model: Rate
    public var lookup: [Rate]
    /// The draft model's acceptance by its confidence where it drafted (its largest probability at temperature 1,
    /// binned at ``confidenceEdges``): the chance that a drafted token is kept once the chain reached it. A chain
    /// stops on it (``extends(reach:confidence:drafted:rate:lookaheadReady:otherRows:)``).
    public var byConfidence: [Rate]
    /// Upper edges of the confidence bins (the last bin runs to 1).
    public static let confidenceEdges: [Double] = [0.3, 0.5, 0.7, 0.8, 0.9, 0.95, 0.99]
    /// Each observation in a confidence bin multiplies that bin's earlier counts by this.
    public var confidenceMemory = 0.97
    /// Chains verified token by token (and the greedy walk) stop on the draft's confidence; block verification
    /// drafts whole chains.
    public var confidenceStop = true

    /// The longest chain considered, and the longest lookup proposal verified.
    public var maxChain: Int
    public var maxLookup: Int
    /// The most nodes of a suffix tree verified (0 or 1: no suffix trees).
    public var maxTree: Int
    /// Each observation multiplies the earlier counts by this (recent text weighs more).
    public var memory = 0.9
    /// Each round that runs no chain multiplies the model's counts by this (they drift back to the prior).
    public var drift = 0.99
    /// Catching the draft up on its backlog is paid once and serves the chains that follow: its cost is spread over
    /// the tokens the generation is expected to run still — as many as it has run, at least a quarter of this and
    /// at most this, never more than the tokens left.
    public var catchUpHorizon = 64
    /// Costs stay at the values given (for tests: the choice then depends on acceptance alone).
    public var fixedCosts = false
    /// Counts of the choices made.
    public private(set) var choices: [String: Int] = [:]

    /// `hasDraftModel`: chains may be chosen. `draftCostRatio`: the draft's weight bytes over the target's.
    public init(
        hasDraftModel: Bool, draftCostRatio: Double = 0.4, maxChain: Int = 8, maxLookup: Int = 8, maxTree: Int = 8
    ) {
        self.draftCostRatio = draftCostRatio
        self.maxChain = hasDraftModel ? maxChain : 0
        self.maxLookup = maxLookup
        self.maxTree = maxTree
        model = Rate(prior: 0.7, weight: 4)
        lookup = [Rate(prior: 0.3, weight: 2), Rate(prior: 0.5, weight: 2), Rate(prior: 0.7, weight: 2)]
        // Priors at the bins' middles: a draft that gives its token probability m is right about that often.
        let edges = [0] + Self.confidenceEdges + [1]
        byConfidence = (0..<(edges.count - 1)).map { Rate(prior: (edges[$0] + edges[$0 + 1]) / 2, weight: 2) }
    }

    static func confidenceBin(_ confidence: Double) -> Int {
        Self.confidenceEdges.firstIndex { confidence < $0 } ?? Self.confidenceEdges.count
    }

    /// The chance that a token the draft drafted with confidence `confidence` is kept, once the chain reached it.
    public func acceptance(confidence: Double) -> Double { byConfidence[Self.confidenceBin(confidence)].value }

    /// Starts from the costs another generation measured on the same models (a server's earlier request): the
    /// target's pass times (their counts capped at 4, so this generation's own passes soon weigh as much), the
    /// line through them, the draft's costs if `other` drafted, and the prompt-pass prior. Acceptance is not taken:
    /// it belongs to the other text. Costs steer only the choice of round, never the output's law. When `other`'s
    /// costs are fixed (``setCosts(targetStep:targetPerRow:draftPerToken:draftPerRow:)``), this policy's are fixed
    /// to them too: a caller pins the costs, and the rounds chosen then depend on the text alone, not on the host.
    public mutating func inheritCosts(from other: AdaptivePolicy) {
        guard !fixedCosts else { return }
        if other.fixedCosts { fixedCosts = true }
        passSeconds = other.passSeconds
        passCounts = other.passCounts.map { min($0, 4) }
        targetStep = other.targetStep
        targetPerRow = other.targetPerRow
        if maxChain > 0 && other.maxChain > 0 {
            draftPerToken = other.draftPerToken
            draftPerRow = other.draftPerRow
        }
        prefillPerToken = prefillPerToken ?? other.prefillPerToken
        targetStepPrior = targetStepPrior ?? other.targetStepPrior
        draftTokenPrior = draftTokenPrior ?? other.draftTokenPrior
    }

    /// Costs given outright (``fixedCosts``): `t(n) = targetStep + targetPerRow·(n − 1)`, `draftPerToken` a draft,
    /// `draftPerRow` a row of backlog.
    public mutating func setCosts(targetStep: Double, targetPerRow: Double, draftPerToken: Double, draftPerRow: Double)
    {
        self.targetStep = targetStep
        self.targetPerRow = targetPerRow
        self.draftPerToken = draftPerToken
        self.draftPerRow = draftPerRow
        fixedCosts = true
    }

    // MARK: - Estimates

    /// t(n) with what is known (nil before any target pass was timed): the average of passes of `n` rows once three
    /// were seen, else the fitted line.
    public func targetPass(_ rows: Int) -> Double? {
        if !fixedCosts, rows >= 1, rows <= passCounts.count, passCounts[rows - 1] >= 3 { return passSeconds[rows - 1] }
        guard let t1 = targetStep else { return nil }
        let slope = targetPerRow ?? prefillPerToken ?? 0.1 * t1
        return t1 + slope * Double(max(0, rows - 1))
    }

    /// Records a timed pass of `rows` rows and refits the line. Per row count: a running mean (equal weights for
    /// the first four, then a moving average giving a new value a quarter; a value beyond 1.5× or below 0.5× the
    /// mean is clipped there, so one disturbed pass cannot swing it). The slope is the least-squares slope over
    /// the row counts seen (each weighted by its count, at most 8), shrunk toward the prior (the prompt pass's
    /// seconds per token) as if the prior were 4 passes; `t₁` the weighted mean of `t(n) − slope·(n − 1)`.
    mutating func recordPass(rows: Int, seconds: Double) {
        guard rows >= 1 else { return }
        while passSeconds.count < rows {
            passSeconds.append(0)
            passCounts.append(0)
        }
        let index = rows - 1
        let count = passCounts[index]
        if count == 0 {
            passSeconds[index] = seconds
        } else {
            let old = passSeconds[index]
            let clipped = count >= 2 ? min(max(seconds, 0.5 * old), 1.5 * old) : seconds
            passSeconds[index] = old + max(0.25, 1 / Double(count + 1)) * (clipped - old)
        }
        passCounts[index] += 1
        var (w, sx, sy, sxx, sxy, wide) = (0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
        for index in passCounts.indices where passCounts[index] > 0 {
            let weight = Double(min(passCounts[index], 8))
            let x = Double(index)
            w += weight
            sx += weight * x
            sy += weight * passSeconds[index]
            sxx += weight * x * x
            sxy += weight * x * passSeconds[index]
            if index > 0 { wide += weight }
        }
        if let anchor = targetStepPrior, passCounts[0] < 3 {
            // Few passes of one row (a generation in a batch runs none): the line goes through the one-row pass
            // measured alone, and only its slope is fitted — a line fitted through passes of 15 to 20 rows alone
            // puts t₁ near zero, and with it every cost estimated from t₁ (the draft's).
            let prior = prefillPerToken ?? 0.1 * anchor
            var (sxr, sxxr) = (0.0, 0.0)
            for index in passCounts.indices where passCounts[index] > 0 && index > 0 {
                let weight = Double(min(passCounts[index], 8))
                let x = Double(index)
                sxr += weight * x * (passSeconds[index] - anchor)
                sxxr += weight * x * x
            }
            // Not shrunk toward the prior: anchored, the fitted slope is stable, and a slope shrunk toward a
            // smaller prior would put the line below the passes it was fitted to.
            targetPerRow = sxxr > 0 ? max(0, sxr / sxxr) : prior
            targetStep = anchor
            return
        }
        let prior = prefillPerToken ?? 0.1 * (passCounts[0] > 0 ? passSeconds[0] : sy / w)
        let spread = sxx - sx * sx / w
        let fitted = spread > 1e-12 ? max(0, (sxy - sx * sy / w) / spread) : prior
        let slope = spread > 1e-12 ? (prior * 4 + fitted * wide) / (4 + wide) : prior
        targetPerRow = slope
        targetStep = max(1e-6, (sy - slope * sx) / w)
    }

    public var draftToken: Double? { draftPerToken ?? draftTokenPrior ?? targetStep.map { $0 * draftCostRatio } }
    /// A row of the draft's backlog. Before a catch-up was measured: the target's prompt pass per token, scaled by
    /// the draft's share of the bytes — a catch-up is a prompt pass of the draft's. (The slope of the target's short
    /// passes is no prior for it: on the pinned pair it was 2.8–7 ms a row where the prompt pass took 7.7 ms a
    /// token, and the draft's catch-up of 70 rows 3.5 ms a row, so a catch-up was planned at a third of its cost.)
    public var draftRow: Double? {
        draftPerRow ?? (prefillPerToken ?? targetPerRow ?? targetStep.map { 0.1 * $0 }).map { $0 * draftCostRatio }
    }

    /// Σ_{i=0}^{k} aⁱ: the expected tokens of a round with `k` drafts accepted position by position with rate `a`
    /// (the correction or bonus token included).
    public static func expectedTokens(drafts k: Int, acceptance a: Double) -> Double {
        var total = 1.0
        var term = 1.0
        for _ in 0..<max(0, k) {
            term *= a
            total += term
        }
        return total
    }

    /// The expected tokens of a round that verifies a copied chain whose `d`-th token continued a share
    /// `shares[d]` of the occurrences that reached it, at rate `a` (``Rate/observe(kept:offered:memory:)``): each
    /// level is kept with chance `min(1, a·share)`. Shares of 1 give ``expectedTokens(drafts:acceptance:)``.
    public static func expectedTokens(shares: [Double], acceptance a: Double) -> Double {
        var total = 1.0
        var reach = 1.0
        for share in shares {
            reach *= min(1, a * share)
            total += reach
        }
        return total
    }

    /// The expected tokens of a round that verifies a suffix tree with the candidate rule, at rate `a`: a node is
    /// reached with its parent's chance times `a` times its share (``SuffixDrafter/Proposal/shares``), siblings'
    /// chances scaled down together when they would sum past 1.
    public static func expectedTokens(tree: SuffixDrafter.Proposal, acceptance a: Double) -> Double {
        let shares = tree.shares
        var sums = [Double](repeating: 0, count: tree.tokens.count + 1)
        for (index, parent) in tree.parents.enumerated() { sums[parent] += a * shares[index] }
        var reach = [Double](repeating: 0, count: tree.tokens.count + 1)
        reach[0] = 1
        var total = 1.0
        for (index, parent) in tree.parents.enumerated() {
            let scale = sums[parent] > 1 ? 1 / sums[parent] : 1
            reach[index + 1] = reach[parent] * a * shares[index] * scale
            total += reach[index + 1]
        }
        return total
    }

    /// What a copied proposal offered on the levels a walk reached (``Rate/observe(kept:offered:memory:)``): from
    /// the root down the accepted path, at each node with children the sum of their shares (at most 1), the level
    /// after the last accepted node included.
    public static func offered(tree: SuffixDrafter.Proposal, acceptedNodes: [Int]) -> Double {
        let shares = tree.shares
        var total = 0.0
        var node = 0
        var depth = 0
        while true {
            let below = tree.parents.indices.filter { tree.parents[$0] == node }
            if below.isEmpty { break }
            total += min(1, below.reduce(0) { $0 + shares[$1] })
            guard depth < acceptedNodes.count else { break }
            node = acceptedNodes[depth]
            depth += 1
        }
        return total
    }

    static func bucket(matchLength: Int) -> Int { min(max(matchLength, 1), 3) - 1 }

    /// The round that maximises expected tokens per second: `proposal` tokens proposed by lookup after a match of
    /// `matchLength` (0: none), `backlog` rows the draft must catch up on before the root, `generated` tokens
    /// emitted so far and `remaining` the generation may still emit, `room` drafts the caches can still take.
    ///
    /// In a batch (``ForwardBatcher``), `otherRows` rows of `otherMembers` other generations share the target's
    /// pass: the choice maximises the batch's expected tokens per second, `(otherMembers + E) / (t(otherRows + r) +
    /// D)` for a round of `r` rows, `E` expected tokens and `D` seconds of drafting (each other generation counted
    /// as one token a pass). Rows cost little while the pass reads weights and a full `t(n)` slope once it computes:
    /// a generation alone drafts as before, one in a large batch drafts less or not at all. In a batch the draft's
    /// catch-up on `backlog` rows is charged whole to the round that pays it, not spread over a horizon.
    public func choose(
        proposal: Int, matchLength: Int, backlog: Int, generated: Int, remaining: Int, room: Int, otherRows: Int = 0,
        otherMembers: Int = 0, lookupShares: [Double]? = nil, tree: SuffixDrafter.Proposal? = nil
    ) -> Choice {
        plan(
            proposal: proposal, matchLength: matchLength, backlog: backlog, generated: generated, remaining: remaining,
            room: room, otherRows: otherRows, otherMembers: otherMembers, lookupShares: lookupShares, tree: tree
        ).choice
    }

    /// ``choose(proposal:matchLength:backlog:generated:remaining:room:otherRows:otherMembers:lookupShares:tree:)`` with the expected
    /// tokens per second of the round chosen (the batch's, in a batch; 0 before any pass was timed): what a
    /// chain's next draft must beat to be drafted.
    ///
    /// `lookupShares`: the share of the text's earlier occurrences that went on as each token of the lookup
    /// proposal (``SuffixDrafter/agreement(history:length:chain:)``; nil: 1 each). `tree`: the suffix drafter's
    /// tree after the same match, whose cuts to its `k` most frequent nodes that still branch are rounds to weigh
    /// (``expectedTokens(tree:acceptance:)``), at the lookup rate of the match's length — lookup chains and suffix
    /// trees are the same proposals' two shapes, so one rate, learned from both, prices them.
    public func plan(
        proposal: Int, matchLength: Int, backlog: Int, generated: Int, remaining: Int, room: Int, otherRows: Int = 0,
        otherMembers: Int = 0, lookupShares: [Double]? = nil, tree: SuffixDrafter.Proposal? = nil
    ) -> (choice: Choice, rate: Double) {
        guard targetStep != nil, room > 0, let plainPass = targetPass(otherRows + 1) else { return (.plain, 0) }
        let others = Double(otherMembers)
        var best = Choice.plain
        var bestRate = (others + 1) / plainPass
        if proposal > 0 {
            let a = lookup[Self.bucket(matchLength: matchLength)].value
            for k in 1...min(proposal, maxLookup, room) {
                guard let cost = targetPass(otherRows + k + 1) else { break }
                let tokens =
                    lookupShares.map { Self.expectedTokens(shares: Array($0.prefix(k)), acceptance: a) }
                    ?? Self.expectedTokens(drafts: k, acceptance: min(1, a))
                let rate = (others + tokens) / cost
                if rate > bestRate {
                    best = .lookup(k)
                    bestRate = rate
                }
            }
        }
        if let tree, !tree.isChain, maxTree > 1 {
            let a = lookup[Self.bucket(matchLength: tree.matchLength)].value
            for k in 2...max(2, min(tree.tokens.count, maxTree, room)) where k <= min(tree.tokens.count, room) {
                let cut = tree.pruned(to: k)
                guard !cut.isChain, let cost = targetPass(otherRows + cut.tokens.count + 1) else { continue }
                let rate = (others + Self.expectedTokens(tree: cut, acceptance: a)) / cost
                if rate > bestRate {
                    best = .suffix(k)
                    bestRate = rate
                }
            }
        }
        if maxChain > 0, let d = draftToken, let c = draftRow {
            let a = model.value
            // A generation that has run g tokens is expected to run about as many more (at least
            // ``catchUpHorizon``/4, at most ``catchUpHorizon``, never past the token limit): short answers do not pay
            // for the draft's catch-up.
            let expected = max(catchUpHorizon / 4, min(generated, catchUpHorizon))
            let horizon = Double(max(1, min(remaining, expected)))
            let catchUp = c * Double(backlog)
            for gamma in 1...min(maxChain, room) {
                guard let pass = targetPass(otherRows + gamma + 1) else { break }
                let tokens = Self.expectedTokens(drafts: gamma, acceptance: a)
                // The catch-up, spread over the horizon, charged for this round's share of it — alone. In a batch
                // all of it now: it stalls every generation's pass, and beside others drafting seldom pays for
                // long enough to spread it (16 clients: 10 chains of one or two drafts paid 2.4 s of catch-up).
                let share = otherMembers > 0 ? 1 : tokens / horizon
                let cost = pass + d * Double(gamma) + catchUp * share
                let rate = (others + tokens) / cost
                if rate > bestRate {
                    best = .chain(gamma)
                    bestRate = rate
                }
            }
        }
        return (best, bestRate)
    }

    /// Whether a chain drafts one more token: it has drafted `drafted`, the last with confidence `confidence`, and
    /// reaches its last draft with probability `reach` (the product of their ``acceptance(confidence:)``). The next
    /// draft is expected to add `reach · a` tokens, `a` the last draft's acceptance (a draft sure of one token tends
    /// to be sure of the next), for a draft step (none when a lookahead already computed it) and one more row of
    /// the target's pass: it is drafted when that beats `rate`, the expected tokens per second of the round chosen
    /// (``plan(proposal:matchLength:backlog:generated:remaining:room:otherRows:otherMembers:lookupShares:tree:)``) — a token worth
    /// less than the time it costs at the rate the policy already expects is not drafted. The choice depends on the
    /// draft's side of the round alone (its logits), so token verification keeps the target's law.
    public func extends(
        reach: Double, confidence: Double, drafted: Int, rate: Double, lookaheadReady: Bool, otherRows: Int = 0
    ) -> Bool {
        guard confidenceStop, rate > 0, let d = draftToken, let pass = targetPass(otherRows + drafted + 1),
            let wider = targetPass(otherRows + drafted + 2)
        else { return true }
        let gain = reach * acceptance(confidence: confidence)
        let cost = (lookaheadReady ? 0 : d) + max(0, wider - pass)
        return gain >= rate * cost
    }

    /// The target's confidence at the rounds' first rows (its largest probability at temperature 1), a moving
    /// average giving a new value a tenth: the draft model's acceptance prior is its square root — a text the
    /// target finds predictable is one a draft is likely to agree on, and a text it does not (a translation, an
    /// open answer) is not worth the draft's catch-up. Observed chains then outweigh the prior.
    public private(set) var targetConfidence: Double?

    // MARK: - Observations

    /// A round's first row: the target's largest probability there.
    public mutating func observeConfidence(_ confidence: Double) {
        guard confidence.isFinite else { return }
        targetConfidence = targetConfidence.map { $0 + 0.1 * (confidence - $0) } ?? confidence
        // The chance that a draft's top token is the target's runs above the target's top probability (a draft
        // like the target picks its argmax even where that has probability 0.5): the prior is its square root
        // (0.55 → 0.74, as measured on MT-Bench writing with the pinned pair).
        if let c = targetConfidence { model.prior = min(max(c.squareRoot(), 0.05), 0.95) }
    }

    /// Learns from a round that ran: the choice, its target pass (`rows`, seconds), its draft time with the backlog
    /// it caught up on, and the drafts and acceptances (for lookup, the match length).
    ///
    /// `confidences`: a chain's drafts' confidences, in order: each draft the verification reached counts in its
    /// confidence bin, kept or not.
    ///
    /// `offered`: for a lookup or suffix round, what its proposal covered on the levels reached
    /// (``Rate/observe(kept:offered:memory:)``; nil: a chain whose every level counts 1).
    public mutating func observe(
        _ choice: Choice, rows: Int, targetSeconds: Double, draftSeconds: Double, backlog: Int, drafted: Int,
        accepted: Int, matchLength: Int = 0, confidences: [Double] = [], offered: Double? = nil
    ) {
        choices[choice.description.split(separator: ":")[0].description, default: 0] += 1
        // The first pass after the prompt's is often slow (caches and cores still cold): not a cost to plan with.
        if !fixedCosts && targetSeconds > 0 {
            if sawFirstPass { recordPass(rows: rows, seconds: targetSeconds) } else { sawFirstPass = true }
        }
        switch choice {
        case .plain:
            model.decay(drift)
        case .lookup, .suffix:
            let bucket = Self.bucket(matchLength: matchLength)
            if let offered {
                lookup[bucket].observe(kept: accepted, offered: offered, memory: memory)
            } else {
                lookup[bucket].observe(drafted: drafted, accepted: accepted, memory: memory)
            }
            model.decay(drift)
        case .chain:
            model.observe(drafted: drafted, accepted: accepted, memory: memory)
            for (position, confidence) in confidences.enumerated() where position <= accepted {
                byConfidence[Self.confidenceBin(confidence)].observe(
                    drafted: 1, accepted: position < accepted ? 1 : 0, memory: confidenceMemory)
            }
            if !fixedCosts && drafted > 0 && draftSeconds > 0 {
                let rows = backlog
                if rows <= 4 {
                    let perToken = max(0, draftSeconds - (draftRow ?? 0) * Double(rows)) / Double(drafted)
                    draftPerToken = Self.blend(draftPerToken, perToken)
                } else if let d = draftToken {
                    let perRow = max(0, draftSeconds - d * Double(drafted)) / Double(rows)
                    draftPerRow = Self.blend(draftPerRow, perRow)
                }
            }
        }
    }

    /// The prompt pass: its seconds per token are the prior for the target's cost per row (prompts of 16 tokens and
    /// more).
    public mutating func observePrompt(tokens: Int, seconds: Double) {
        if tokens >= 16 && seconds > 0 && !fixedCosts { prefillPerToken = seconds / Double(tokens) }
    }

    /// A running estimate: the first value as it is, then a moving average that gives a new value a quarter.
    static func blend(_ old: Double?, _ new: Double) -> Double {
        guard let old else { return new }
        return old + 0.25 * (new - old)
    }
}
