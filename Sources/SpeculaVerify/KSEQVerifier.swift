#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// K-SEQ (Sun et al., SpecTr, NeurIPS 2023, arXiv:2310.15141), for i.i.d. drafts (L1).
///
/// Every draft faces the same test, `accept x_k with probability min(1, p(x_k)/(ρ*·q(x_k)))`, in child rank; `ρ*`
/// is the root in `[1, n]` of `f(ρ) = 1 − (1 − β(ρ))ⁿ − ρ·β(ρ)` with `β(ρ) = Σ min(q, p/ρ)`, the largest
/// scaling for which the accepted mass stays below `p` everywhere. Acceptance `1 − (1 − β(ρ*))ⁿ`, at least
/// `(1 − 1/e)·α*` of the i.i.d. law (ALGORITHMS.md §4.5).
///
/// - Complexity: O(|V|) expected: the bisection keeps only the tokens whose ratio `p/q` is still inside the
///   bracket, and the bracket halves every iteration.
public struct KSEQVerifier: NodeVerifier {
    public init() {}
    public var name: String { "kseq" }
    public var draftLaw: DraftLaw { .independent }
    public func supports(draftCount count: Int) -> Bool { count >= 1 }

    /// Bisection iterations on `[1, n]`; the upper bracket is returned so that `f(ρ*) ≤ 0`.
    public static let bisectionIterations = 60

    public func decide(target: [Double], draft: [Double], drafts: [Int], into decision: inout NodeDecision) throws {
        try validate(target: target, draft: draft, drafts: drafts)
        decision.reset(vocabularySize: target.count, drafts: drafts)
        let (rho, beta) = KSEQVerifier.solve(
            target: target, draft: draft, draftCount: drafts.count, indices: &decision.indices)
        for (child, token) in drafts.enumerated() {
            decision.tests.append(NodeTest(child: child, numerator: target[token], denominator: rho * draft[token]))
        }
        if beta <= 0 {
            copy(target, into: &decision.residual)
            return
        }
        let acceptance = 1 - pow(1 - beta, Double(drafts.count))
        let scale = acceptance / beta
        target.withUnsafeBufferPointer { p in
            draft.withUnsafeBufferPointer { q in
                decision.residual.withUnsafeMutableBufferPointer { r in
                    for index in 0..<p.count {
                        r[index] = max(p[index] - min(q[index], p[index] / rho) * scale, 0)
                    }
                }
            }
        }
    }

    /// `ρ*` and `β(ρ*)` for `n` i.i.d. drafts.
    ///
    /// Tokens with `p = 0` or `q = 0` add nothing to `β`. For the others, `β(ρ) = Σ_{p/q ≥ ρ} q + (1/ρ)·Σ_{p/q < ρ} p`:
    /// once a token's ratio lies outside the bracket its term is fixed, so each iteration touches only the tokens
    /// still inside. `indices` is scratch space, reused without reallocation.
    public static func solve(
        target: [Double], draft: [Double], draftCount: Int, indices: inout [Int]
    ) -> (rho: Double, beta: Double) {
        let n = Double(draftCount)
        var lower = 1.0
        var upper = n
        var fixedDraft = 0.0  // Σ q over tokens with ratio ≥ upper
        var fixedTarget = 0.0  // Σ p over tokens with ratio < lower
        if indices.count < target.count { indices = [Int](repeating: 0, count: target.count) }
        var activeCount = 0
        indices.withUnsafeMutableBufferPointer { active in
            target.withUnsafeBufferPointer { p in
                draft.withUnsafeBufferPointer { q in
                    for token in 0..<p.count where p[token] > 0 && q[token] > 0 {
                        // ratio ≥ upper ⇔ p ≥ upper·q; ratio < lower ⇔ p < lower·q.
                        if p[token] >= upper * q[token] {
                            fixedDraft += q[token]
                        } else if p[token] < lower * q[token] {
                            fixedTarget += p[token]
                        } else {
                            active[activeCount] = token
                            activeCount += 1
                        }
                    }
                    for _ in 0..<bisectionIterations {
                        let middle = (lower + upper) / 2
                        // Partition: ratio < middle first.
                        var low = 0
                        var high = activeCount
                        var targetBelow = 0.0
                        var draftAbove = 0.0
                        while low < high {
                            let token = active[low]
                            if p[token] < middle * q[token] {
                                targetBelow += p[token]
                                low += 1
                            } else {
                                draftAbove += q[token]
                                high -= 1
                                active.swapAt(low, high)
                            }
                        }
                        let beta = fixedDraft + draftAbove + (fixedTarget + targetBelow) / middle
                        let f = 1 - pow(1 - beta, n) - middle * beta
                        if f > 0 {
                            lower = middle
                            fixedTarget += targetBelow
                            // Keep [low, activeCount): move it to the front.
                            for index in low..<activeCount { active[index - low] = active[index] }
                            activeCount -= low
                        } else {
                            upper = middle
                            fixedDraft += draftAbove
                            activeCount = low
                        }
                    }
                    var activeTarget = 0.0
                    for index in 0..<activeCount { activeTarget += p[active[index]] }
                    fixedTarget += activeTarget
                }
            }
        }
        let beta = fixedDraft + fixedTarget / upper
        return (upper, min(max(beta, 0), 1))
    }
}
