/// Verification of fixed candidates: children proposed without randomness — tokens copied from the text, as the
/// suffix drafter proposes them — distinct, in child rank.
///
/// Child k is accepted with probability `p(c_k) / (p(c_k) + p(c_{k+1}) + … + rest)`, where `rest` is the target's
/// mass off every candidate: the target's conditional probability of `c_k` given that none of the earlier candidates
/// was drawn. When every test fails the residual is `p` with the candidates removed. So the node asks a draw from
/// `p` "is it c_1? c_2? …" in turn: the emitted token has law `p` exactly, and the acceptance `Σ_k p(c_k)` is the
/// most any rule can keep for this candidate set (a draw from `p` lands in the set with that probability). It is
/// token verification with point-mass drafts taken one candidate at a time, so a one-child node gives the same
/// law as ``TokenVerifier`` with `q = δ(c)`.
///
/// The candidates are not drawn from one draft vector, so ``decide(target:draft:drafts:into:)`` does not read
/// `draft` (a tree still stores one per expanded node); ``draftLaw`` says `.independent` only because each candidate
/// is, trivially, a draw from its own point mass — nothing is ever sampled from it.
///
/// - Complexity: O(|V| + k) per node.
public struct CandidateVerifier: NodeVerifier {
    public init() {}
    public var name: String { "candidates" }
    public var draftLaw: DraftLaw { .independent }
    public func supports(draftCount count: Int) -> Bool { count >= 1 }

    public func decide(target: [Double], draft: [Double], drafts: [Int], into decision: inout NodeDecision) throws {
        try Probability.validate(target, "candidates' target distribution")
        if drafts.isEmpty {
            throw VerifyError.unsupportedDraftCount(verifier: name, count: 0, supported: "n ≥ 1")
        }
        var seen = Set<Int>()
        for token in drafts {
            if token < 0 || token >= target.count {
                throw VerifyError.tokenOutOfRange(what: "candidates", token: token, vocabularySize: target.count)
            }
            if !seen.insert(token).inserted {
                throw VerifyError.draftsNotFromLaw(verifier: name, reason: "candidate \(token) is listed twice")
            }
        }
        decision.reset(vocabularySize: target.count, drafts: drafts)
        for index in target.indices { decision.residual[index] = target[index] }
        for token in drafts { decision.residual[token] = 0 }
        // Denominators as sums of what is left (the rest, then each later candidate's mass), never 1 minus a sum.
        let rest = Probability.sum(decision.residual)
        var remaining = rest
        var denominators = [Double](repeating: 0, count: drafts.count)
        for k in drafts.indices.reversed() {
            remaining += target[drafts[k]]
            denominators[k] = remaining
        }
        for (k, token) in drafts.enumerated() {
            decision.tests.append(NodeTest(child: k, numerator: target[token], denominator: denominators[k]))
        }
    }
}
