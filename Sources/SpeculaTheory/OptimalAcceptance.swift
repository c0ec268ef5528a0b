import SpeculaVerify

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The optimal acceptance rate `α*`: the largest acceptance any lossless verifier can reach for a draft law and a
/// target (Hu et al., ICLR 2025, arXiv:2502.18779; Khisti et al., ICLR 2025, arXiv:2410.18234).
///
/// `α*(Q, p) = min_H [p(H) + 1 − Q(H)]` over token sets `H`, `Q(H) = P(every draft ∈ H)` (ALGORITHMS.md §5.1). For
/// the i.i.d. and without-replacement laws the minimum is over the prefixes `H_k` of the tokens sorted by `p/q`
/// ascending (§5.2), so `α* = min_k [p(H_k) + (1 − Q(H_k))]`, where `1 − Q(H_k)` is computed from `c = q(V∖H_k)`
/// (a suffix sum), never by subtracting from 1.
public enum OptimalAcceptance {
    /// Which method computed a without-replacement `α*` for three drafts (§5.3).
    public enum Method: String, Sendable, Codable {
        /// A closed form with no approximation.
        case closedForm
        /// Method E: every pair term summed directly, O(N²).
        case exactPairs
        /// Method S: head pairs exact, tail pairs by a truncated series of non-negative terms, O(N·K).
        case series
        /// The exact max-flow over every draft set (small supports).
        case maxFlow
    }

    /// Method E is used up to this support size; Method S above it (§5.3's rule).
    public static let exactPairLimit = 8192
    /// Method S: head size `h` and series length `K`; truncation error ≤ `N·h^{−K}/(1 − 1/h)` (below 1e-15 for
    /// `N ≤ 10⁶`).
    public static let seriesHead = 64
    public static let seriesTerms = 12

    /// The support of `q` sorted by `p/q` ascending (ties in any order), with prefix sums of `p` and suffix sums of
    /// `q` along that order.
    package struct SortedSupport {
        var order: [Int]
        /// targetPrefix[k] = p(H_k).
        var targetPrefix: [Double]
        /// draftSuffix[k] = q(V ∖ H_k) over the support, summed from the end.
        var draftSuffix: [Double]
        /// draftPrefix[k] = q(H_k).
        var draftPrefix: [Double]
        /// The rounding error of each `draftPrefix[k]` (a two-sum per step), so that a difference of two prefixes is
        /// accurate even when one token before them holds almost all the mass.
        var draftPrefixError: [Double]

        package init(target: [Double], draft: [Double]) {
            var keys: [UInt64] = []
            var tokens: [Int32] = []
            keys.reserveCapacity(draft.count)
            tokens.reserveCapacity(draft.count)
            for token in draft.indices where draft[token] > 0 {
                // Non-negative doubles (+∞ included) order exactly as their bit patterns.
                keys.append((target[token] / draft[token]).bitPattern)
                tokens.append(Int32(token))
            }
            RadixSort.sort(keys: &keys, values: &tokens)
            order = tokens.map { Int($0) }
            let count = order.count
            targetPrefix = [Double](repeating: 0, count: count + 1)
            draftPrefix = [Double](repeating: 0, count: count + 1)
            draftSuffix = [Double](repeating: 0, count: count + 1)
            draftPrefixError = [Double](repeating: 0, count: count + 1)
            for k in 0..<count {
                targetPrefix[k + 1] = targetPrefix[k] + target[order[k]]
                // Knuth's two-sum: sum + error = draftPrefix[k] + q exactly.
                let a = draftPrefix[k]
                let b = draft[order[k]]
                let sum = a + b
                let bPart = sum - a
                let error = (a - (sum - bPart)) + (b - bPart)
                draftPrefix[k + 1] = sum
                draftPrefixError[k + 1] = draftPrefixError[k] + error
            }
            for k in stride(from: count - 1, through: 0, by: -1) {
                draftSuffix[k] = draftSuffix[k + 1] + draft[order[k]]
            }
        }

        /// Σ q over the support except position `k`: a sum of the other entries (§10.3).
        func others(_ k: Int) -> Double { draftPrefix[k] + draftSuffix[k + 1] }

        /// Σ q over the support except positions `i < j`. The tokens between them are a difference of two prefixes,
        /// taken with each prefix's rounding error: when a token at or before `i` holds almost all the mass (q ≈ 1,
        /// the rest 1e-14), the plain difference of two sums near 1 kept only two or three digits of the rest, and α*
        /// for three drafts came out 3.6e-5 low (found by the `bound` fuzz target).
        func others(_ i: Int, _ j: Int) -> Double {
            let between = (draftPrefix[j] - draftPrefix[i + 1]) + (draftPrefixError[j] - draftPrefixError[i + 1])
            return draftPrefix[i] + between + draftSuffix[j + 1]
        }
    }

    /// `α*` for `n` i.i.d. drafts (L1): `min_k [P_k + 1 − C_kⁿ]`. O(|V| log |V|).
    public static func withReplacement(target: [Double], draft: [Double], count: Int) throws -> Double {
        try Probability.validatePair(target: target, draft: draft)
        try checkCount(count)
        let sorted = SortedSupport(target: target, draft: draft)
        var best = Double.infinity
        for k in 0...sorted.order.count {
            // 1 − C_kⁿ = 1 − (1 − c)ⁿ with c the suffix mass; −expm1(n·log1p(−c)) keeps it accurate when c is small.
            let c = sorted.draftSuffix[k]
            let uncovered = c >= 1 ? 1 : -expm1(Double(count) * log1p(-c))
            best = min(best, sorted.targetPrefix[k] + uncovered)
        }
        return min(max(best, 0), 1)
    }

    /// `α*` for `n` drafts without replacement (L2), with the method used.
    ///
    /// `n = 1`: `Σ min(p, q)`. `n ≥ |supp q|`: the drafts cover the support, `α* = p(supp q)`. `n = 2`: closed form,
    /// `1 − Q(H) = c·(1 + Σ_{x∈H} a(x))`, `a(x) = q(x)/(1 − q(x))`. `n = 3`: `1 − Q(H) = c·(1 + Σ a(x) +
    /// Σ_{pairs} b(x, y))` by Method E up to ``exactPairLimit`` support tokens, Method S above (§5.3). Larger `n`:
    /// the exact max-flow when the support is small, otherwise an error.
    public static func withoutReplacement(target: [Double], draft: [Double], count: Int) throws
        -> (value: Double, method: Method)
    {
        try Probability.validatePair(target: target, draft: draft)
        try checkCount(count)
        let sorted = SortedSupport(target: target, draft: draft)
        let support = sorted.order.count
        if count == 1 { return (Probability.overlap(target, draft), .closedForm) }
        if count >= support { return (min(sorted.targetPrefix[support], 1), .closedForm) }
        switch count {
        case 2:
            var best = Double.infinity
            var aSum = 0.0
            for k in 0...support {
                if k > 0 {
                    let q = draft[sorted.order[k - 1]]
                    aSum += q / sorted.others(k - 1)
                }
                best = min(best, sorted.targetPrefix[k] + sorted.draftSuffix[k] * (1 + aSum))
            }
            return (min(max(best, 0), 1), .closedForm)
        case 3:
            if support <= exactPairLimit {
                return (threeDraftsExact(sorted, draft), .exactPairs)
            }
            return (threeDraftsSeries(sorted, draft), .series)
        default:
            let plan = try OptimalTransportPlan(law: .withoutReplacement, draft: draft, count: count, target: target)
            return (min(plan.value, 1), .maxFlow)
        }
    }

    /// `b(x, y)` in its product form, with complementary sums for every `1 − q(·)`.
    @inline(__always)
    static func pairTerm(_ qx: Double, _ qy: Double, othersX: Double, othersY: Double, othersXY: Double) -> Double {
        qx * qy * (othersX + othersY) / (othersX * othersY * othersXY)
    }

    /// Method E: sum the new pairs directly as each token joins the prefix. O(N²).
    package static func threeDraftsExact(_ sorted: SortedSupport, _ draft: [Double]) -> Double {
        let support = sorted.order.count
        var best = sorted.targetPrefix[0] + sorted.draftSuffix[0]
        var aSum = 0.0
        var pairSum = 0.0
        for k in 0..<support {
            let qx = draft[sorted.order[k]]
            let othersX = sorted.others(k)
            for j in 0..<k {
                let qy = draft[sorted.order[j]]
                pairSum += pairTerm(
                    qx, qy, othersX: othersX, othersY: sorted.others(j), othersXY: sorted.others(j, k))
            }
            aSum += qx / othersX
            best = min(best, sorted.targetPrefix[k + 1] + sorted.draftSuffix[k + 1] * (1 + aSum + pairSum))
        }
        return min(max(best, 0), 1)
    }

    /// Method S. The head is the `h` tokens of largest `q`. Head–head pairs are summed exactly. Every pair with a
    /// tail member `t` and partner `x` uses `b(x, t) = Σ_{j≥1} q_tʲ·[(1 − q_x)^{−(j+1)} − 1]`, all terms ≥ 0 and
    /// `q_t/(1 − q_x) ≤ 1/h`: so a token joining the prefix adds `Σ_j M_j·B_j(x)` for the tail tokens already in
    /// (`M_j = Σ q_tʲ`) and, if it is itself a tail token, `Σ_j q_xʲ·G_j` for the head tokens already in
    /// (`G_j = Σ B_j(y)`). `B_j(x) = expm1((j+1)·t_x)`, `t_x = −log1p(−q_x)`, by the recurrence
    /// `B_{j+1} = B_j + B_0·(1 + B_j)` (all terms positive, no cancellation).
    ///
    /// This differs from §5.3's wording (which sums tail–head pairs exactly, O(N·h)): the series is used for those
    /// too, with the tail member as the small partner, under the same bound. Tests hold it to Method E within 1e-12.
    package static func threeDraftsSeries(_ sorted: SortedSupport, _ draft: [Double]) -> Double {
        let support = sorted.order.count
        let terms = seriesTerms
        let headTokens = SamplingSettings.topIndices(draft, count: seriesHead)
        var isHead = [Bool](repeating: false, count: draft.count)
        for token in headTokens { isHead[token] = true }
        var headPositions: [Int] = []  // sorted positions of head tokens already in the prefix
        var tailPowers = [Double](repeating: 0, count: terms)  // M_j
        var headBrackets = [Double](repeating: 0, count: terms)  // G_j
        var brackets = [Double](repeating: 0, count: terms)
        var best = sorted.targetPrefix[0] + sorted.draftSuffix[0]
        var aSum = 0.0
        var pairSum = 0.0
        for k in 0..<support {
            let token = sorted.order[k]
            let qx = draft[token]
            let othersX = sorted.others(k)
            // B_j(x) for j = 1…K: expm1((j+1)·t), t = −log(1 − q_x). Below one half, log1p(−q_x) is exact to
            // rounding; above it, 1 − q_x cancels, and the sum of the other entries is the accurate value (a draft
            // with all but 3e-11 of its mass on one token put α* 8.7e-7 off the exact pairs).
            let t = qx < 0.5 ? -log1p(-qx) : -log(othersX)
            let first = expm1(t)
            var current = first + first * (1 + first)  // expm1(2t)
            for j in 0..<terms {
                brackets[j] = current
                current = current + first * (1 + current)
            }
            var added = 0.0
            for j in 0..<terms { added += tailPowers[j] * brackets[j] }
            if isHead[token] {
                for position in headPositions {
                    let qy = draft[sorted.order[position]]
                    let (i, l) = position < k ? (position, k) : (k, position)
                    added += pairTerm(
                        qx, qy, othersX: othersX, othersY: sorted.others(position), othersXY: sorted.others(i, l))
                }
                headPositions.append(k)
                for j in 0..<terms { headBrackets[j] += brackets[j] }
            } else {
                var power = qx
                for j in 0..<terms {
                    added += power * headBrackets[j]
                    tailPowers[j] += power
                    power *= qx
                }
            }
            pairSum += added
            aSum += qx / othersX
            best = min(best, sorted.targetPrefix[k + 1] + sorted.draftSuffix[k + 1] * (1 + aSum + pairSum))
        }
        return min(max(best, 0), 1)
    }

    /// `α*` of the greedy law (L4) = the greedy verifier's acceptance (§5.3).
    public static func greedy(target: [Double], draft: [Double], count: Int) throws -> Double {
        try AcceptanceRate.greedy(target: target, draft: draft, count: count)
    }

    /// `α*` of the hub-pair law (L3) = SpecHub's acceptance (§5.3).
    public static func hubPair(target: [Double], draft: [Double]) throws -> Double {
        try AcceptanceRate.specHub(target: target, draft: draft)
    }

    /// `α*` of any law by the exact max-flow over its draft sets (§4.8): small supports only.
    public static func maxFlow(law: DraftLaw, target: [Double], draft: [Double], count: Int) throws -> Double {
        min(try OptimalTransportPlan(law: law, draft: draft, count: count, target: target).value, 1)
    }

    static func checkCount(_ count: Int) throws {
        if count < 1 {
            throw VerifyError.unsupportedDraftCount(verifier: "optimal acceptance", count: count, supported: "n ≥ 1")
        }
    }
}
