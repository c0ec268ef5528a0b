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
        // The running target is `scale · residual`; unnormalised, the residual is the correction law after the last
        // rejection.
        copy(target, into: &decision.residual)
        var scale = 1.0
        for (child, token) in drafts.enumerated() {
            decision.tests.append(
                NodeTest(child: child, numerator: decision.residual[token] * scale, denominator: draft[token]))
            scale = nextResidual(&decision, scale: scale, draft: draft, draftScale: 1, target: target)
        }
        decision.residualTotal = 1 / scale
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
        // The running target is `scale · residual`, the current draft law q_cur is `draftScale · scratch2`.
        copy(target, into: &decision.residual)
        var scale = 1.0
        copy(draft, into: &decision.scratch2)
        var draftScale = 1.0
        for (child, token) in drafts.enumerated() {
            decision.tests.append(
                NodeTest(
                    child: child, numerator: decision.residual[token] * scale,
                    denominator: decision.scratch2[token] * draftScale))
            scale = nextResidual(
                &decision, scale: scale, draft: decision.scratch2, draftScale: draftScale, target: target)
            if child + 1 < drafts.count {
                // Law of the next draw given the earlier ones: remove the token and renormalise by the sum of
                // what remains (never by a subtraction from 1).
                decision.scratch2[token] = 0
                let remaining = Probability.sum(decision.scratch2)
                if remaining > 0 { draftScale = 1 / remaining }
            }
        }
        decision.residualTotal = 1 / scale
    }
}

/// Replaces the running target `scale · residual` by `res(running, draftScale · draft)`, built unnormalised in
/// `scratch` and swapped into `residual` (no pass to normalise it); returns the new target's scale, `1 / mass`. If
/// that residual is empty (`β = 1`), the branch after it is reachable only by round-off and the running target
/// restarts from `target` (§10.4).
@inline(__always)
func nextResidual(
    _ decision: inout NodeDecision, scale: Double, draft: [Double], draftScale: Double, target: [Double]
) -> Double {
    var mass = 0.0
    decision.residual.withUnsafeBufferPointer { running in
        draft.withUnsafeBufferPointer { q in
            decision.scratch.withUnsafeMutableBufferPointer { out in
                for index in 0..<running.count {
                    let difference = max(running[index] * scale - q[index] * draftScale, 0)
                    out[index] = difference
                    mass += difference
                }
            }
        }
    }
    if mass > Probability.negligibleMass {
        swap(&decision.residual, &decision.scratch)
        return 1 / mass
    }
    copy(target, into: &decision.residual)
    return 1
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
