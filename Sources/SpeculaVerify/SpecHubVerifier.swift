/// SpecHub (Sun, Zhou, Chen, Sun, EMNLP 2024, arXiv:2411.05289), for the hub-pair draft law (L3), two drafts.
///
/// The hub `a = argmax q` is in every pair; the other token `i` comes first (`(i, a)`, mass `q(i)`) or second
/// (`(a, i)`, mass `q(a)·q′(i)`). The four steps of the authors' code move target mass into each pair's leftover,
/// reaching `α = p(a) + Σ_{i≠a} min(p(i), q′(i))`, the optimum of its own law (ALGORITHMS.md §4.6). The steps are
/// implemented as written, with no shortcut for a hub of probability near 1, so per-child acceptance matches the
/// published numbers.
///
/// - Complexity: O(|V|).
public struct SpecHubVerifier: NodeVerifier {
    public init() {}
    public var name: String { "spechub" }
    public var draftLaw: DraftLaw { .hubPair }
    public func supports(draftCount count: Int) -> Bool { count == 2 }

    public func decide(target: [Double], draft: [Double], drafts: [Int], into decision: inout NodeDecision) throws {
        try validate(target: target, draft: draft, drafts: drafts)
        if target.count < 2 {
            throw VerifyError.unsupportedDraftCount(verifier: name, count: 2, supported: "a vocabulary of ≥ 2 tokens")
        }
        let hub = Probability.argmax(draft)
        let first = drafts[0]
        let second = drafts[1]
        guard (first == hub) != (second == hub) else {
            throw VerifyError.draftsNotFromLaw(
                verifier: name, reason: "exactly one of the two drafts must be the hub token \(hub), got (\(first), \(second))")
        }
        decision.reset(vocabularySize: target.count, drafts: drafts)
        // q′ = q without the hub, renormalised by the sum of the others; degenerate: point mass (§4.1).
        var otherMass = 0.0
        var bestOther = -1
        for token in draft.indices where token != hub {
            otherMass += draft[token]
            if bestOther < 0 || draft[token] > draft[bestOther] { bestOther = token }
        }
        let hubMass = draft[hub]
        @inline(__always) func restricted(_ token: Int) -> Double {
            if otherMass > 0 { return draft[token] / otherMass }
            return token == bestOther ? 1 : 0
        }
        // p1 = (p − Q_ia)₊ in scratch, p2 = (p1 − Q_ai)₊ in residual; leftovers summed into SB and SA.
        var leftoverFirst = 0.0  // SB = Σ (Q_ia − p)₊
        var leftoverSecond = 0.0  // SA = Σ (Q_ai − p1)₊
        for token in target.indices where token != hub {
            let pairFirst = draft[token]  // Q_ia(i) = q(i)
            let pairSecond = hubMass * restricted(token)  // Q_ai(i) = q(a)·q′(i)
            let p1 = max(target[token] - pairFirst, 0)
            leftoverFirst += max(pairFirst - target[token], 0)
            decision.scratch[token] = p1
            decision.residual[token] = max(p1 - pairSecond, 0)
            leftoverSecond += max(pairSecond - p1, 0)
        }
        let hubAfterFirst = max(target[hub] - leftoverSecond, 0)  // pa1 = (p(a) − SA)₊
        decision.scratch[hub] = 0
        decision.residual[hub] = max(hubAfterFirst - leftoverFirst, 0)  // pa2 = (pa1 − SB)₊
        if second == hub {
            // Pair (i, a): step 1 on child 0 (token i), then step 4 on child 1 (the hub).
            decision.tests.append(NodeTest(child: 0, numerator: target[first], denominator: draft[first]))
            decision.tests.append(NodeTest(child: 1, numerator: hubAfterFirst, denominator: leftoverFirst))
        } else {
            // Pair (a, i): step 2 on child 1 (token i), then step 3 on child 0 (the hub).
            decision.tests.append(
                NodeTest(child: 1, numerator: decision.scratch[second], denominator: hubMass * restricted(second)))
            decision.tests.append(NodeTest(child: 0, numerator: target[hub], denominator: leftoverSecond))
        }
    }
}
