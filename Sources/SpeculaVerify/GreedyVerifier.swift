/// The greedy-optimal verifier (Hu et al., ICLR 2025, arXiv:2502.18779) for the greedy draft law (L4).
///
/// The first `n − 1` drafts are the most likely draft tokens `T` (deterministic); the last is `x ~ q′`, `q`
/// restricted to `V ∖ T`. Accept `x` with probability `min(1, p(x)/q′(x))`; otherwise draw `y` from
/// `r = p` on `T` and `(p − q′)₊` off `T`; a `y` in `T` accepts the child holding it. Acceptance
/// `p(T) + Σ_{y∉T} min(p(y), q′(y))`, the optimum of the law (ALGORITHMS.md §4.7).
///
/// - Complexity: O(n·|V|) for the top-`(n−1)` selection, O(|V|) for the residual.
public struct GreedyVerifier: NodeVerifier {
    public init() {}
    public var name: String { "greedy" }
    public var draftLaw: DraftLaw { .greedy }
    public func supports(draftCount count: Int) -> Bool { count >= 2 }

    public func decide(target: [Double], draft: [Double], drafts: [Int], into decision: inout NodeDecision) throws {
        try validate(target: target, draft: draft, drafts: drafts)
        let count = drafts.count
        if count > target.count {
            throw VerifyError.unsupportedDraftCount(
                verifier: name, count: count, supported: "n ≤ vocabulary size \(target.count)")
        }
        decision.reset(vocabularySize: target.count, drafts: drafts)
        SamplingSettings.topIndices(draft, count: count - 1, into: &decision.fixedTokens)
        let fixed = decision.fixedTokens
        if !drafts.prefix(count - 1).elementsEqual(fixed) {
            throw VerifyError.draftsNotFromLaw(
                verifier: name, reason: "the first \(count - 1) drafts must be the most likely draft tokens \(fixed)")
        }
        let last = drafts[count - 1]
        if fixed.contains(last) {
            throw VerifyError.draftsNotFromLaw(verifier: name, reason: "the last draft \(last) repeats a fixed draft")
        }
        // q′ in scratch: q off T, renormalised by the sum of those entries; degenerate: point mass (§4.1).
        copy(draft, into: &decision.scratch)
        for token in fixed { decision.scratch[token] = 0 }
        let rest = Probability.sum(decision.scratch)
        if rest > 0 {
            let scale = 1 / rest
            decision.scratch.withUnsafeMutableBufferPointer { q in
                for index in 0..<q.count { q[index] *= scale }
            }
        } else {
            var best = -1
            for token in draft.indices where !fixed.contains(token) {
                if best < 0 || draft[token] > draft[best] { best = token }
            }
            for index in decision.scratch.indices { decision.scratch[index] = index == best ? 1 : 0 }
        }
        if decision.scratch[last] <= 0 {
            throw VerifyError.draftsNotFromLaw(
                verifier: name, reason: "the last draft \(last) has zero probability under q′")
        }
        decision.tests.append(NodeTest(child: count - 1, numerator: target[last], denominator: decision.scratch[last]))
        // q′ is 0 on T, so the positive part already holds p there (the loop below states it).
        decision.residualTotal = Probability.positivePart(target, minus: decision.scratch, into: &decision.residual)
        for token in fixed { decision.residual[token] = target[token] }
    }
}
