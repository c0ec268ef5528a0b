/// Single-draft token verification (Leviathan et al., ICML 2023, arXiv:2211.17192; Chen et al., arXiv:2302.01318).
///
/// Accept the draft `x` with probability `min(1, p(x)/q(x))`, else emit `y ~ res(p, q) = norm((p − q)₊)`. The
/// emitted token has law `p`, and the acceptance `Σ min(p, q) = 1 − TV(p, q)` is the best any single-draft rule can
/// reach (maximal coupling). Every multi-draft rule falls back to this at a node with one child (§6.4).
///
/// - Complexity: O(|V|) for the residual.
public struct TokenVerifier: NodeVerifier {
    public init() {}
    public var name: String { "token" }
    public var draftLaw: DraftLaw { .independent }
    public func supports(draftCount count: Int) -> Bool { count == 1 }

    public func decide(target: [Double], draft: [Double], drafts: [Int], into decision: inout NodeDecision) throws {
        try validate(target: target, draft: draft, drafts: drafts)
        decision.reset(vocabularySize: target.count, drafts: drafts)
        let token = drafts[0]
        decision.tests.append(NodeTest(child: 0, numerator: target[token], denominator: draft[token]))
        decision.residualTotal = Probability.positivePart(target, minus: draft, into: &decision.residual)
    }
}
