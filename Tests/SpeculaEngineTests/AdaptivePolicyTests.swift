import Foundation
import SpeculaEngine
import Testing

/// The default mode's choice of round, on costs and acceptances given outright: what it picks follows from
/// expected tokens per second, the draft's catch-up is paid only by generations that run long enough, a text
/// where drafting failed is probed again, and the cost line is fitted from the passes it is shown.
@Suite("Adaptive policy")
struct AdaptivePolicyTests {
    /// t(n) = 50 ms + 5 ms·(n − 1), a draft token 20 ms, a row of catch-up 2 ms.
    static func policy(draft: Bool = true) -> AdaptivePolicy {
        var policy = AdaptivePolicy(hasDraftModel: draft)
        policy.setCosts(targetStep: 0.050, targetPerRow: 0.005, draftPerToken: 0.020, draftPerRow: 0.002)
        return policy
    }

    /// Tokens per second of each choice, computed here from the definitions (not from the policy).
    static func rate(_ choice: AdaptivePolicy.Choice, acceptance a: Double, catchUpPerToken: Double = 0) -> Double {
        func tokens(_ k: Int) -> Double { (0...k).reduce(0) { $0 + pow(a, Double($1)) } }
        switch choice {
        case .plain: return 1 / 0.050
        case .lookup(let k): return tokens(k) / (0.050 + 0.005 * Double(k))
        case .chain(let k):
            return tokens(k) / (0.050 + 0.005 * Double(k) + 0.020 * Double(k) + catchUpPerToken * tokens(k))
        case .suffix: return .nan
        }
    }

    /// The suffix tree after "5 6" in `ranked` (SuffixDrafterTests): 7 (2 of 3 occurrences) → 1, 0 (1 of 2 each);
    /// 8 (1 of 3) → 2 (1 of 1).
    static let ranked = [5, 6, 7, 0, 5, 6, 7, 1, 5, 6, 8, 2, 5, 6]

    /// A tree's expected tokens, worked by hand at a = 0.9: the root's children reach 0.9·2/3 = 0.6 and 0.9·1/3 =
    /// 0.3; below 7 each of 1 and 0 reaches 0.6·0.9·1/2 = 0.27; below 8, 2 reaches 0.3·0.9 = 0.27. A chain whose
    /// tokens continued every occurrence is the geometric sum; siblings whose chances would pass 1 are scaled.
    @Test func aSuffixTreeIsPricedByTheSharesItsBranchesCover() {
        let tree = SuffixDrafter.propose(history: Self.ranked, longest: 2, nodes: 5, depth: 2)
        #expect(tree.tokens == [7, 8, 1, 0, 2])
        #expect(abs(AdaptivePolicy.expectedTokens(tree: tree, acceptance: 0.9) - 2.71) < 1e-12)
        // 0.9 · (1/2 + 1/2) at both levels below the root's 7 and 8: at a = 1.5 the root's children would sum to
        // 1.5, scaled to 2/3 and 1/3; below 7 each of two halves to 1/2 (sum 1.5 scaled to 1).
        let scaled = 1 + 2.0 / 3 + 1.0 / 3 + 2.0 / 3 * 0.5 * 2 + 1.0 / 3 * 1
        #expect(abs(AdaptivePolicy.expectedTokens(tree: tree, acceptance: 1.5) - scaled) < 1e-12)
        for a in [0.3, 0.8] {
            #expect(
                abs(
                    AdaptivePolicy.expectedTokens(shares: [1, 1, 1], acceptance: a)
                        - AdaptivePolicy.expectedTokens(drafts: 3, acceptance: a)) < 1e-12)
        }
        // 1 + 0.9·1/3 + 0.9·1/3·0.9·1.
        #expect(abs(AdaptivePolicy.expectedTokens(shares: [1.0 / 3, 1], acceptance: 0.9) - (1 + 0.3 + 0.27)) < 1e-12)
        // What a walk was offered: the first level covers all occurrences (1); after 7, its two children (1 more);
        // after 8, its one child (1 more); after 8 and 2, nothing below (a leaf ends the walk).
        #expect(abs(AdaptivePolicy.offered(tree: tree, acceptedNodes: []) - 1) < 1e-12)
        #expect(abs(AdaptivePolicy.offered(tree: tree, acceptedNodes: [1]) - 2) < 1e-12)
        #expect(abs(AdaptivePolicy.offered(tree: tree, acceptedNodes: [2]) - 2) < 1e-12)
        #expect(abs(AdaptivePolicy.offered(tree: tree, acceptedNodes: [2, 5]) - 2) < 1e-12)
        // A cut to 2 nodes: 7 and 8 cover every occurrence at the first level only.
        #expect(abs(AdaptivePolicy.offered(tree: tree.pruned(to: 2), acceptedNodes: [1]) - 1) < 1e-12)
    }

    /// Where the text went on several ways, the tree that holds them beats the lookup chain of the latest way
    /// (1/3 of the occurrences); where it went on one way there is no tree, and at a low rate neither pays.
    @Test func aBranchingTreeIsChosenWhereItsBranchesPay() {
        var policy = Self.policy(draft: false)
        policy.setCosts(targetStep: 1, targetPerRow: 0.1, draftPerToken: 0.3, draftPerRow: 0.01)
        policy.lookup = Array(repeating: .init(prior: 0.9, weight: 100), count: 3)
        let tree = SuffixDrafter.propose(history: Self.ranked, longest: 2, nodes: 8, depth: 2)
        let counts = SuffixDrafter.agreement(history: Self.ranked, length: 2, chain: [8, 2])
        #expect(counts == [3, 1, 1])
        let shares = [1.0 / 3, 1]
        // Tokens per second, by hand: lookup:1 (1 + 0.3)/1.1, lookup:2 (1 + 0.3 + 0.27)/1.2; the trees cut to
        // 2…5 nodes: 1.9/1.2, 2.17/1.3, 2.44/1.4, 2.71/1.5 — the whole tree is best.
        let choice = policy.choose(
            proposal: 2, matchLength: 2, backlog: 0, generated: 10, remaining: 10, room: 9, lookupShares: shares,
            tree: tree)
        #expect(choice == .suffix(5))
        // Room for 3 drafts: the tree cut to 3 nodes (2.17/1.3 beats lookup:2's 1.57/1.2).
        #expect(
            policy.choose(
                proposal: 2, matchLength: 2, backlog: 0, generated: 10, remaining: 10, room: 3, lookupShares: shares,
                tree: tree) == .suffix(3))
        // Suffix trees switched off: the lookup chain.
        var chains = policy
        chains.maxTree = 0
        #expect(
            chains.choose(
                proposal: 2, matchLength: 2, backlog: 0, generated: 10, remaining: 10, room: 9, lookupShares: shares,
                tree: tree) == .lookup(2))
        // One way only: a chain-shaped tree is lookup's to verify.
        let single = SuffixDrafter.propose(history: [1, 2, 3, 9, 1, 2], longest: 2, nodes: 8, depth: 3)
        #expect(single.isChain)
        #expect(
            policy.choose(
                proposal: 3, matchLength: 2, backlog: 0, generated: 10, remaining: 10, room: 9,
                lookupShares: [1, 1, 1], tree: single) == .lookup(3))
        // A low rate: plain steps (the best tree, 2 nodes at 0.1: 1.1/1.2).
        policy.lookup = Array(repeating: .init(prior: 0.1, weight: 100), count: 3)
        #expect(
            policy.choose(
                proposal: 2, matchLength: 2, backlog: 0, generated: 10, remaining: 10, room: 9, lookupShares: shares,
                tree: tree) == .plain)
    }

    /// The rate learned from copied proposals is kept levels over covered shares; with shares of 1 it is the
    /// chains' geometric count.
    @Test func copiedProposalsLearnKeptLevelsOverCoveredShares() {
        var a = AdaptivePolicy.Rate(prior: 0.5, weight: 2)
        var b = a
        a.observe(drafted: 4, accepted: 2, memory: 0.9)
        b.observe(kept: 2, offered: 3, memory: 0.9)
        #expect(a == b)
        a.observe(drafted: 3, accepted: 3, memory: 0.9)
        b.observe(kept: 3, offered: 3, memory: 0.9)
        #expect(a == b)
        // Levels kept where the proposal covered half the occurrences: the rate rises past 1 (a continuation taken
        // half the times is then priced as always right, capped at 1): (8.78 + 0.5) / (8.78 − 4.39 + 1) ≈ 1.72.
        var half = AdaptivePolicy.Rate(prior: 0.5, weight: 1)
        for _ in 0..<20 { half.observe(kept: 1, offered: 0.5, memory: 0.9) }
        #expect(half.value > 1.6 && half.value < 1.8)
        var policy = Self.policy(draft: false)
        policy.observe(
            .suffix(3), rows: 4, targetSeconds: 0.065, draftSeconds: 0, backlog: 0, drafted: 3, accepted: 1,
            matchLength: 2, offered: 2)
        #expect(policy.choices["suffix"] == 1)
        // 1 kept of 2 offered on the prior 0.5 (weight 2): (1 + 1) / (2 + 2).
        #expect(abs(policy.lookup[1].value - 0.5) < 1e-12)
        policy.observe(
            .suffix(3), rows: 4, targetSeconds: 0.065, draftSeconds: 0, backlog: 0, drafted: 3, accepted: 2,
            matchLength: 2, offered: 2)
        #expect(policy.lookup[1].value > 0.5)
    }

    @Test func expectedTokensIsTheGeometricSum() {
        for a in [0.0, 0.3, 0.9, 1.0] {
            for k in 0...6 {
                let closed = a == 1 ? Double(k + 1) : (1 - pow(a, Double(k + 1))) / (1 - a)
                #expect(abs(AdaptivePolicy.expectedTokens(drafts: k, acceptance: a) - closed) < 1e-12)
            }
        }
    }

    @Test func nothingIsDraftedBeforeATargetPassWasTimed() {
        let policy = AdaptivePolicy(hasDraftModel: true)
        #expect(
            policy.choose(proposal: 5, matchLength: 3, backlog: 0, generated: 0, remaining: 100, room: 10) == .plain)
    }

    @Test func theChoiceIsTheFastestRound() {
        // Every acceptance level: the policy's choice has the highest rate among all it could pick.
        for a in stride(from: 0.0, through: 0.95, by: 0.05) {
            var policy = Self.policy()
            policy.model = .init(prior: a, weight: 1)
            policy.lookup = Array(repeating: .init(prior: a / 3, weight: 1), count: 3)
            let choice = policy.choose(proposal: 4, matchLength: 2, backlog: 0, generated: 64, remaining: 64, room: 20)
            let rate: (AdaptivePolicy.Choice) -> Double = {
                if case .lookup = $0 { return Self.rate($0, acceptance: a / 3) }
                return Self.rate($0, acceptance: a)
            }
            let options: [AdaptivePolicy.Choice] =
                [.plain] + (1...4).map { .lookup($0) } + (1...policy.maxChain).map { .chain($0) }
            let best = options.map(rate).max()!
            #expect(abs(rate(choice) - best) < 1e-12, "a = \(a): chose \(choice)")
            if a < 0.25, case .chain = choice { Issue.record("a = \(a): a chain at low acceptance") }
            if a >= 0.9 {
                guard case .chain(let gamma) = choice else {
                    Issue.record("a = \(a): expected a chain, got \(choice)")
                    continue
                }
                #expect(gamma >= 3)
            }
        }
    }

    /// The chain's stop on the draft's confidence: the next draft is drafted when `reach · a` tokens are worth its
    /// draft step and row at the rate the policy expects, computed here from that definition; and the acceptance by
    /// confidence is learned from the chains the verification reached.
    @Test func aChainStopsWhereTheNextDraftIsNotWorthItsCost() {
        var policy = Self.policy()
        // Bin priors at their middles: 0.995 above 0.99, 0.4 in [0.3, 0.5).
        #expect(abs(policy.acceptance(confidence: 0.999) - 0.995) < 1e-12)
        #expect(abs(policy.acceptance(confidence: 0.42) - 0.4) < 1e-12)
        let rate = Self.rate(.chain(4), acceptance: 0.8)
        // A draft step and a row: 25 ms; at the rate of a chain of 4 at 0.8 (22.4 tokens/s) a draft is worth it
        // when it adds more than 0.56 of a token.
        for (reach, confidence) in [(1.0, 0.999), (0.9, 0.999), (0.9, 0.96), (0.6, 0.999), (1.0, 0.42), (0.2, 0.85)] {
            let gain = reach * policy.acceptance(confidence: confidence)
            let expected = gain >= rate * 0.025
            let got = policy.extends(
                reach: reach, confidence: confidence, drafted: 2, rate: rate, lookaheadReady: false)
            #expect(got == expected, "reach \(reach), confidence \(confidence): gain \(gain) vs \(rate * 0.025)")
        }
        #expect(policy.extends(reach: 1, confidence: 0.999, drafted: 2, rate: rate, lookaheadReady: false))
        #expect(!policy.extends(reach: 1, confidence: 0.42, drafted: 2, rate: rate, lookaheadReady: false))
        // A lookahead row already computed costs only the target's row (5 ms): drafted at a smaller gain.
        #expect(policy.extends(reach: 0.5, confidence: 0.42, drafted: 2, rate: rate, lookaheadReady: true))
        // No rate (nothing timed yet) or the stop switched off: always drafted.
        #expect(policy.extends(reach: 0.01, confidence: 0.1, drafted: 2, rate: 0, lookaheadReady: false))
        policy.confidenceStop = false
        #expect(policy.extends(reach: 0.01, confidence: 0.1, drafted: 2, rate: rate, lookaheadReady: false))
        // Learning: drafts at 0.999 kept, drafts at 0.42 rejected; a draft past the first rejection is not reached
        // and not counted.
        var learner = Self.policy()
        for _ in 0..<30 {
            learner.observe(
                .chain(3), rows: 4, targetSeconds: 0.065, draftSeconds: 0.06, backlog: 0, drafted: 3, accepted: 1,
                confidences: [0.999, 0.42, 0.85])
        }
        #expect(learner.acceptance(confidence: 0.999) > 0.995)
        #expect(learner.acceptance(confidence: 0.42) < 0.1)
        #expect(abs(learner.acceptance(confidence: 0.85) - 0.85) < 1e-12, "an unreached draft was counted")
    }

    @Test func withoutADraftModelOnlyLookupAndPlainSteps() {
        var policy = Self.policy(draft: false)
        policy.model = .init(prior: 0.99, weight: 100)
        #expect(policy.choose(proposal: 0, matchLength: 0, backlog: 0, generated: 10, remaining: 10, room: 9) == .plain)
        policy.lookup = Array(repeating: .init(prior: 0.9, weight: 100), count: 3)
        let choice = policy.choose(proposal: 6, matchLength: 3, backlog: 0, generated: 10, remaining: 10, room: 9)
        #expect(choice == .lookup(6))
        // The caches' room bounds what is verified.
        #expect(
            policy.choose(proposal: 6, matchLength: 3, backlog: 0, generated: 10, remaining: 10, room: 2) == .lookup(2))
    }

    @Test func theCatchUpIsPaidOnlyByLongGenerations() {
        // A 1,000-row backlog costs 2 s; at acceptance 0.8 a chain is worth it only once the generation has run long
        // enough to expect as many more tokens (horizon 64), never when it is about to end.
        var policy = Self.policy()
        policy.model = .init(prior: 0.8, weight: 100)
        let early = policy.choose(proposal: 0, matchLength: 0, backlog: 1000, generated: 2, remaining: 500, room: 20)
        #expect(early == .plain)
        let small = policy.choose(proposal: 0, matchLength: 0, backlog: 10, generated: 2, remaining: 500, room: 20)
        guard case .chain = small else {
            Issue.record("a 10-row catch-up should not stop a chain: \(small)")
            return
        }
        let ending = policy.choose(proposal: 0, matchLength: 0, backlog: 100, generated: 400, remaining: 2, room: 20)
        #expect(ending == .plain)
        // The horizon as documented: a chain is chosen iff its rate with the catch-up spread over 64 tokens wins.
        let spread = 0.002 * 100 / 64
        let chainWins = (1...policy.maxChain).contains {
            Self.rate(.chain($0), acceptance: 0.8, catchUpPerToken: spread) > Self.rate(.plain, acceptance: 0)
        }
        let long = policy.choose(proposal: 0, matchLength: 0, backlog: 100, generated: 400, remaining: 400, room: 20)
        if chainWins {
            guard case .chain = long else {
                Issue.record("expected a chain, got \(long)")
                return
            }
        } else {
            #expect(long == .plain)
        }
    }

    @Test func aFailedTextIsProbedAgainLaterTheWorseItWent() {
        // Observed rejections make plain steps win; plain rounds let the estimate drift back to the prior until a
        // chain is tried again — later after more rejections.
        func roundsUntilProbe(rejections: Int) -> Int {
            var policy = Self.policy()
            for _ in 0..<rejections {
                policy.observe(
                    .chain(2), rows: 3, targetSeconds: 0, draftSeconds: 0, backlog: 0, drafted: 2, accepted: 0)
            }
            #expect(
                policy.choose(proposal: 0, matchLength: 0, backlog: 0, generated: 64, remaining: 64, room: 9) == .plain)
            for round in 1...10_000 {
                policy.observe(.plain, rows: 1, targetSeconds: 0, draftSeconds: 0, backlog: 0, drafted: 0, accepted: 0)
                if case .chain = policy.choose(
                    proposal: 0, matchLength: 0, backlog: 0, generated: 64, remaining: 64, room: 9)
                {
                    return round
                }
            }
            return .max
        }
        let few = roundsUntilProbe(rejections: 3)
        let many = roundsUntilProbe(rejections: 20)
        #expect(few < many && many < 10_000, "\(few) then \(many)")
        // Rare enough that a text that never pays loses little: at least 40 plain rounds between probes.
        #expect(few >= 40)
    }

    /// The draft's catch-up on its backlog is a prompt pass of the draft's: before one was measured it is priced at
    /// the target's prompt pass per token times the draft's share of the bytes, not at the slope of the target's
    /// short passes (a third of it on the pinned pair); and a short generation then does not pay for it.
    @Test func theCatchUpIsPricedLikeAPromptPass() {
        var policy = AdaptivePolicy(hasDraftModel: true, draftCostRatio: 0.45)
        policy.observePrompt(tokens: 56, seconds: 56 * 0.0077)
        // Short passes on the line 45 ms + 2.8 ms per extra row (the first is the warm-up).
        func line(_ n: Int) -> Double { 0.045 + 0.0028 * Double(n - 1) }
        policy.observe(.plain, rows: 1, targetSeconds: 1, draftSeconds: 0, backlog: 0, drafted: 0, accepted: 0)
        for n in [1, 2, 1, 2, 1, 2] {
            policy.observe(
                n == 1 ? .plain : .lookup(1), rows: n, targetSeconds: line(n), draftSeconds: 0, backlog: 0,
                drafted: n - 1, accepted: 0, matchLength: 1)
        }
        #expect(abs(policy.draftRow! - 0.0077 * 0.45) < 1e-12)
        // 16 tokens run, 70 rows of backlog, the draft right 63 % of the time: a chain's expected rate (its share
        // of the catch-up spread over 16 tokens), computed here from the definitions, is below plain decoding's,
        // and the policy stays plain.
        policy.model = .init(prior: 0.63, weight: 4)
        let d = policy.draftToken!
        let catchUp = 70 * 0.0077 * 0.45
        for gamma in 1...policy.maxChain {
            let tokens = AdaptivePolicy.expectedTokens(drafts: gamma, acceptance: 0.63)
            let rate = tokens / (policy.targetPass(gamma + 1)! + d * Double(gamma) + catchUp * tokens / 16)
            #expect(rate < 1 / policy.targetPass(1)!, "chain of \(gamma)")
        }
        #expect(
            policy.choose(proposal: 0, matchLength: 0, backlog: 70, generated: 16, remaining: 112, room: 100)
                == .plain)
        // A catch-up measured (a chain round with a backlog of 70 rows and 2 drafts) replaces the prior: its seconds
        // less two draft steps, per row.
        let seconds = 70 * 0.0035 + 2 * d
        policy.observe(
            .chain(2), rows: 3, targetSeconds: line(3), draftSeconds: seconds, backlog: 70, drafted: 2, accepted: 1)
        #expect(abs(policy.draftRow! - (seconds - 2 * policy.draftToken!) / 70) < 1e-12)
        #expect(abs(policy.draftRow! - 0.0035) < 1e-4)
    }

    @Test func costsAreFittedFromThePassesSeen() {
        // Passes on an exact line, the prior equal to its slope: the line is recovered.
        var policy = AdaptivePolicy(hasDraftModel: true)
        policy.observePrompt(tokens: 100, seconds: 100 * 0.004)
        func line(_ n: Int) -> Double { 0.040 + 0.004 * Double(n - 1) }
        // The first pass is a warm-up and not used.
        policy.observe(.plain, rows: 1, targetSeconds: 1, draftSeconds: 0, backlog: 0, drafted: 0, accepted: 0)
        #expect(policy.targetStep == nil)
        for n in [1, 3, 5, 9, 1, 3, 5, 9] {
            policy.observe(
                n == 1 ? .plain : .lookup(n - 1), rows: n, targetSeconds: line(n), draftSeconds: 0, backlog: 0,
                drafted: n - 1, accepted: 0, matchLength: 2)
        }
        for n in 1...9 { #expect(abs(policy.targetPass(n)! - line(n)) < 1e-12, "t(\(n))") }
        // A prior slope of 0 is outweighed as the passes add up: after 3 wide row counts seen 8 times each, the
        // slope is (4·0 + 24·0.004) / (4 + 24).
        var shrunk = AdaptivePolicy(hasDraftModel: true)
        shrunk.prefillPerToken = 0
        shrunk.observe(.plain, rows: 1, targetSeconds: 1, draftSeconds: 0, backlog: 0, drafted: 0, accepted: 0)
        for _ in 0..<8 {
            for n in [1, 3, 5, 9] {
                shrunk.observe(
                    .lookup(max(1, n - 1)), rows: n, targetSeconds: line(n), draftSeconds: 0, backlog: 0, drafted: 0,
                    accepted: 0, matchLength: 2)
            }
        }
        let expected = 24 * 0.004 / 28
        #expect(abs(shrunk.targetPerRow! - expected) < 1e-12)
    }

    @Test func oneDisturbedPassMovesTheMeanLittle() {
        var policy = AdaptivePolicy(hasDraftModel: true)
        policy.observe(.plain, rows: 1, targetSeconds: 0.05, draftSeconds: 0, backlog: 0, drafted: 0, accepted: 0)
        for _ in 0..<6 {
            policy.observe(.plain, rows: 1, targetSeconds: 0.05, draftSeconds: 0, backlog: 0, drafted: 0, accepted: 0)
        }
        policy.observe(.plain, rows: 1, targetSeconds: 5, draftSeconds: 0, backlog: 0, drafted: 0, accepted: 0)
        // Clipped at 1.5× the mean, weighted a quarter: 0.05 + 0.25·0.025.
        #expect(abs(policy.targetPass(1)! - 0.05625) < 1e-12)
    }

    @Test func aNewGenerationStartsFromInheritedCostsButNotTheirAcceptance() {
        // One generation observes passes of t(n) = 40 ms + 4 ms·(n − 1) and drafts that all fail.
        var first = AdaptivePolicy(hasDraftModel: true)
        for rows in [1, 1, 1, 1, 3, 3, 3, 5, 5, 5, 1] {
            first.observe(
                rows == 1 ? .plain : .chain(rows - 1), rows: rows, targetSeconds: 0.040 + 0.004 * Double(rows - 1),
                draftSeconds: rows == 1 ? 0 : 0.015 * Double(rows - 1), backlog: 0, drafted: rows - 1, accepted: 0)
        }
        var next = AdaptivePolicy(hasDraftModel: true)
        #expect(next.targetPass(1) == nil)
        next.inheritCosts(from: first)
        for rows in 1...5 {
            let expected = 0.040 + 0.004 * Double(rows - 1)
            let inherited = try? #require(next.targetPass(rows))
            #expect(abs((inherited ?? 0) - expected) < 1e-9, "t(\(rows))")
        }
        #expect(abs((next.draftToken ?? 0) - 0.015) < 1e-9)
        // The failed drafts stay with the first text: the new one starts from the prior.
        #expect(first.model.value < 0.5)
        #expect(next.model.value == AdaptivePolicy(hasDraftModel: true).model.value)
        // A lookup-only policy takes the target's costs and no draft cost.
        var lookupOnly = AdaptivePolicy(hasDraftModel: false)
        lookupOnly.inheritCosts(from: first)
        #expect(lookupOnly.targetPass(3) == next.targetPass(3))
        #expect(lookupOnly.draftPerToken == nil)
    }

    /// In a batch the pass's rows are shared: a generation alone drafts a long chain, the same generation beside
    /// others drafts less the more rows the pass already has, and none at all once they make the pass compute-bound —
    /// each choice the best of `(others + E) / (t(otherRows + r) + D)` over the kinds, computed here by hand.
    @Test func aBatchMakesDraftingShorterThenPlain() {
        var policy = AdaptivePolicy(hasDraftModel: true)
        // t(n) = 50 ms + 2 ms·(n − 1): rows are cheap until a few tens of them.
        policy.setCosts(targetStep: 0.050, targetPerRow: 0.002, draftPerToken: 0.005, draftPerRow: 0.001)
        policy.model = .init(prior: 0.8, weight: 1000)
        func choice(rows: Int, members: Int) -> AdaptivePolicy.Choice {
            policy.choose(
                proposal: 0, matchLength: 0, backlog: 0, generated: 64, remaining: 1000, room: 64, otherRows: rows,
                otherMembers: members)
        }
        func best(rows: Int, members: Int) -> Int {
            // The chain length with the highest batch rate, 0 for a plain step.
            var bestGamma = 0
            var bestRate = Double(members + 1) / (0.050 + 0.002 * Double(rows))
            for gamma in 1...8 {
                let tokens = AdaptivePolicy.expectedTokens(drafts: gamma, acceptance: 0.8)
                let rate = (Double(members) + tokens) / (0.050 + 0.002 * Double(rows + gamma) + 0.005 * Double(gamma))
                if rate > bestRate {
                    bestRate = rate
                    bestGamma = gamma
                }
            }
            return bestGamma
        }
        let alone = choice(rows: 0, members: 0)
        let four = choice(rows: 3, members: 3)
        let sixteen = choice(rows: 63, members: 63)
        #expect(alone == .chain(best(rows: 0, members: 0)))
        #expect(four == (best(rows: 3, members: 3) == 0 ? .plain : .chain(best(rows: 3, members: 3))))
        #expect(sixteen == .plain && best(rows: 63, members: 63) == 0)
        guard case .chain(let lone) = alone, case .chain(let shared) = four else {
            Issue.record("alone \(alone), beside three \(four): both should draft")
            return
        }
        #expect(shared < lone, "beside three others the chain should be shorter (\(shared) vs \(lone))")
        // A 100-row catch-up (0.1 s): alone it is spread over the 64 tokens expected and the chain still pays;
        // beside three others it stalls all four passes and is charged whole, so no chain pays — by hand, the best
        // chain's rate (3 + E)/(t(3 + γ + 1) + 5 ms·γ + 0.1 s) against 4/t(4).
        func withBacklog(rows: Int, members: Int) -> AdaptivePolicy.Choice {
            policy.choose(
                proposal: 0, matchLength: 0, backlog: 100, generated: 64, remaining: 1000, room: 64, otherRows: rows,
                otherMembers: members)
        }
        guard case .chain = withBacklog(rows: 0, members: 0) else {
            Issue.record("alone, a 100-row catch-up spread over 64 tokens should not stop a chain")
            return
        }
        let bestWithCatchUp = (1...8).map { gamma in
            (3 + AdaptivePolicy.expectedTokens(drafts: gamma, acceptance: 0.8))
                / (0.050 + 0.002 * Double(3 + gamma) + 0.005 * Double(gamma) + 0.1)
        }.max()!
        #expect(bestWithCatchUp < 4 / (0.050 + 0.002 * 3))
        #expect(withBacklog(rows: 3, members: 3) == .plain)
    }

    /// A generation in a batch of 16 times only passes of 16 to 18 rows. Measured alone beforehand, the target's
    /// one-row step anchors the line of pass costs (t₁ is the measured step, the slope fitted through the passes)
    /// and a draft step is the prior of the draft's cost — fitted without them, the line put t₁ near zero and the
    /// draft's cost with it, and such a batch drafted on passes that were already compute-bound.
    @Test func aBatchedGenerationPlansFromTheCostsMeasuredAlone() {
        func line(_ n: Int) -> Double { 0.040 + 0.007 * Double(n - 1) }
        func batched(priors: Bool) -> AdaptivePolicy {
            var policy = AdaptivePolicy(hasDraftModel: true)
            if priors {
                policy.targetStepPrior = 0.040
                policy.draftTokenPrior = 0.020
            }
            // The pass's own seconds; this generation waited longer, behind the others' drafting (not recorded).
            policy.observe(.plain, rows: 16, targetSeconds: 1, draftSeconds: 0, backlog: 0, drafted: 0, accepted: 0)
            for n in [16, 17, 16, 18, 16, 17, 16, 16] {
                policy.observe(
                    n == 16 ? .plain : .lookup(n - 16), rows: n, targetSeconds: line(n), draftSeconds: 0, backlog: 0,
                    drafted: n - 16, accepted: 0, matchLength: 2)
            }
            policy.model = .init(prior: 0.7, weight: 1000)
            return policy
        }
        let anchored = batched(priors: true)
        #expect(anchored.targetStep == 0.040)
        #expect(abs(anchored.targetPerRow! - 0.007) < 1e-12)
        #expect(anchored.draftToken == 0.020)
        for n in [1, 16, 17, 18, 24] { #expect(abs(anchored.targetPass(n)! - line(n)) < 1e-12, "t(\(n))") }
        // Beside 15 others on this line a chain never pays: γ drafts cost 7 ms of pass and 20 ms of drafting each,
        // and bring 0.7 + 0.49 + … tokens, against 16 tokens per 145 ms.
        let choice = anchored.choose(
            proposal: 0, matchLength: 0, backlog: 0, generated: 64, remaining: 1000, room: 64, otherRows: 15,
            otherMembers: 15)
        #expect(choice == .plain)
        // Without the priors the same passes leave t₁ at its floor, and the draft's estimated cost with it.
        let unanchored = batched(priors: false)
        #expect(unanchored.targetStep! < 0.001)
        #expect(unanchored.draftToken! < 0.001)
    }
}
