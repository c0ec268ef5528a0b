import SpeculaKernels
import SpeculaModels
import SpeculaTheory
import SpeculaVerify

extension SpeculativeDecoder {
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
        /// Chains cut short by `draftStop`, or by the adaptive mode's stop on the draft's confidence.
        public var stoppedEarly = 0
        /// Draft forward passes, and drafts whose distribution came from a lookahead row (no pass of their own).
        public var draftPasses = 0
        public var lookaheadDrafts = 0
        /// Rounds drafted by copying from the text instead of with the draft model (``SpeculativeDecoder/lookupMatch``,
        /// or the adaptive mode's lookup chains and suffix trees), and the proposed tokens they accepted.
        public var lookupRounds = 0
        public var lookupAccepted = 0
        /// Rounds that verified a branching tree from the suffix drafter (``SpeculativeDecoder/suffixNodes``, or the
        /// adaptive mode's choice; a chain-shaped proposal runs as an n-gram round and is not counted here).
        public var suffixTreeRounds = 0
        /// Rounds that were one plain target step (no drafts: the adaptive mode's choice, or no room left).
        public var plainRounds = 0
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
}
