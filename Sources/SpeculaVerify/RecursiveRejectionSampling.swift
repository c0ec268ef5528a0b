/// Recursive rejection sampling with replacement, RRS (SpecInfer's multi-step speculative sampling, Miao et al.,
/// ASPLOS 2024, arXiv:2305.09781), for i.i.d. drafts (L1).
///
/// Test the drafts in child rank against a running target `p_k`: accept child `k` with probability
/// `min(1, p_{k−1}(x_k)/q(x_k))`, else replace the running target by `res(p_{k−1}, q)`. If every draft is rejected,
/// emit `y ~ p_n`. Acceptance `1 − Π_k (1 − β_k)` with `β_k = Σ min(p_{k−1}, q)` (ALGORITHMS.md §4.3).
///
/// - Complexity: O(n·|V|).
public struct RRSVerifier: NodeVerifier {
    public init() {}
    public var name: String { "rrs" }
    public var draftLaw: DraftLaw { .independent }
    public func supports(draftCount count: Int) -> Bool { count >= 1 }

    public func decide(target: [Double], draft: [Double], drafts: [Int], into decision: inout NodeDecision) throws {
        try validate(target: target, draft: draft, drafts: drafts)
        decision.reset(vocabularySize: target.count, drafts: drafts)
        // The running target lives in `residual`, which is the correction law after the last rejection.
        copy(target, into: &decision.residual)
        for (child, token) in drafts.enumerated() {
            decision.tests.append(
                NodeTest(child: child, numerator: decision.residual[token], denominator: draft[token]))
            nextResidual(&decision.residual, draft: draft, target: target, scratch: &decision.scratch)
        }
    }
}

/// Recursive rejection sampling without replacement, RRSw (Jeon et al., RSD, arXiv:2402.14160; Sequoia,
/// arXiv:2402.12374), for drafts drawn without replacement (L2), tested in draw order.
///
/// Test `k` compares the running target with the law the `k`-th draw came from, `q_{k−1}` (`q` with the earlier
/// drafts removed and renormalised); on rejection the running target becomes `res(p_{k−1}, q_{k−1})` (§4.4).
/// Its acceptance has no closed form: the theory layer enumerates draw prefixes.
///
/// - Complexity: O(n·|V|).
public struct RRSWithoutReplacementVerifier: NodeVerifier {
    public init() {}
    public var name: String { "rrsw" }
    public var draftLaw: DraftLaw { .withoutReplacement }
    public func supports(draftCount count: Int) -> Bool { count >= 1 }

    public func decide(target: [Double], draft: [Double], drafts: [Int], into decision: inout NodeDecision) throws {
        try validate(target: target, draft: draft, drafts: drafts)
        for (index, token) in drafts.enumerated() {
            if draft[token] <= 0 {
                throw VerifyError.draftsNotFromLaw(verifier: name, reason: "draft \(token) has zero draft probability")
            }
            if drafts[..<index].contains(token) {
                throw VerifyError.draftsNotFromLaw(verifier: name, reason: "token \(token) is drafted twice")
            }
        }
        decision.reset(vocabularySize: target.count, drafts: drafts)
        copy(target, into: &decision.residual)
        // The current draft law q_cur lives in scratch2.
        copy(draft, into: &decision.scratch2)
        for (child, token) in drafts.enumerated() {
            decision.tests.append(
                NodeTest(child: child, numerator: decision.residual[token], denominator: decision.scratch2[token]))
            nextResidual(&decision.residual, draft: decision.scratch2, target: target, scratch: &decision.scratch)
            if child + 1 < drafts.count {
                // Law of the next draw given the earlier ones: remove the token and renormalise by the sum of
                // what remains (never by a subtraction from 1).
                decision.scratch2[token] = 0
                let remaining = Probability.sum(decision.scratch2)
                if remaining > 0 {
                    decision.scratch2.withUnsafeMutableBufferPointer { q in
                        for index in 0..<q.count { q[index] /= remaining }
                    }
                }
            }
        }
    }
}

/// Replaces the running target `running` by `res(running, draft)`. If that residual is empty (`β = 1`), the branch
/// after it is reachable only by round-off and the running target restarts from `target` (§10.4).
@inline(__always)
func nextResidual(_ running: inout [Double], draft: [Double], target: [Double], scratch: inout [Double]) {
    let mass = Probability.positivePart(running, minus: draft, into: &scratch)
    if mass > Probability.negligibleMass {
        let scale = 1 / mass
        scratch.withUnsafeBufferPointer { source in
            running.withUnsafeMutableBufferPointer { destination in
                for index in 0..<source.count { destination[index] = source[index] * scale }
            }
        }
    } else {
        copy(target, into: &running)
    }
}

@inline(__always)
func copy(_ source: [Double], into destination: inout [Double]) {
    if destination.count != source.count {
        destination = source
        return
    }
    source.withUnsafeBufferPointer { s in
        destination.withUnsafeMutableBufferPointer { d in
            for index in 0..<s.count { d[index] = s[index] }
        }
    }
}
