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
                verifier: name,
                reason: "exactly one of the two drafts must be the hub token \(hub), got (\(first), \(second))")
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
        let scale = otherMass > 0 ? hubMass / otherMass : 0
        // p1 = (p − Q_ia)₊ in scratch, p2 = (p1 − Q_ai)₊ in residual; leftovers summed into SB and SA.
        var leftoverFirst = 0.0  // SB = Σ (Q_ia − p)₊
        var leftoverSecond = 0.0  // SA = Σ (Q_ai − p1)₊
        let hubTarget = target[hub]
        target.withUnsafeBufferPointer { p in
            draft.withUnsafeBufferPointer { q in
                decision.scratch.withUnsafeMutableBufferPointer { first in
                    decision.residual.withUnsafeMutableBufferPointer { r in
                        for token in 0..<p.count where token != hub {
                            let pairFirst = q[token]  // Q_ia(i) = q(i)
                            let pairSecond = q[token] * scale  // Q_ai(i) = q(a)·q′(i)
                            let p1 = max(p[token] - pairFirst, 0)
                            leftoverFirst += max(pairFirst - p[token], 0)
                            first[token] = p1
                            r[token] = max(p1 - pairSecond, 0)
                            leftoverSecond += max(pairSecond - p1, 0)
                        }
                        if otherMass <= 0 {
                            // Degenerate q′: a point mass on the best other token; Q_ai is q(a) there.
                            leftoverSecond = 0
                            for token in 0..<p.count where token != hub {
                                let pairSecond = token == bestOther ? hubMass : 0
                                r[token] = max(first[token] - pairSecond, 0)
                                leftoverSecond += max(pairSecond - first[token], 0)
                            }
                        }
                    }
                }
            }
        }
        let hubAfterFirst = max(hubTarget - leftoverSecond, 0)  // pa1 = (p(a) − SA)₊
        decision.scratch[hub] = 0
        decision.residual[hub] = max(hubAfterFirst - leftoverFirst, 0)  // pa2 = (pa1 − SB)₊
        // Q_ai(i), computed exactly as in the loop above.
        let pairSecondMass = otherMass > 0 ? draft[second] * scale : (second == bestOther ? hubMass : 0)
        if second == hub {
            // Pair (i, a): step 1 on child 0 (token i), then step 4 on child 1 (the hub).
            decision.tests.append(NodeTest(child: 0, numerator: target[first], denominator: draft[first]))
            decision.tests.append(NodeTest(child: 1, numerator: hubAfterFirst, denominator: leftoverFirst))
        } else {
            // Pair (a, i): step 2 on child 1 (token i), then step 3 on child 0 (the hub).
            decision.tests.append(
                NodeTest(child: 1, numerator: decision.scratch[second], denominator: pairSecondMass))
            decision.tests.append(NodeTest(child: 0, numerator: target[hub], denominator: leftoverSecond))
        }
    }
}
