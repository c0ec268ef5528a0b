import SpeculaVerify

/// RRS without replacement at any number of drafts, one sampled draft tuple at a time in O(n log |V|) after an
/// O(|V| log |V|) set-up, for Monte-Carlo estimates at a full vocabulary.
///
/// Every running target of RRSw is a clipped difference of the target and the draft: with `k_0 = 0`, `W_0 = 1` and
/// `S_i = Σ q` over the tokens not yet drafted,
/// `p_i(x) = max(p(x) − k_i·q(x), 0) / W_i`, `k_{i+1} = k_i + W_i / S_i`, `W_i = h(k_i) = Σ_x max(p(x) − k_i·q(x), 0)`
/// (ALGORITHMS.md §4.4; a drafted and rejected token has `p(x) ≤ k·q(x)` from then on, so its term vanishes and the
/// draws' renormalisation is all that `S_i` carries). `h` is piecewise linear: with the tokens sorted by
/// `p(x)/q(x)`, `h(k)` is one binary search and two suffix sums. Draft `i + 1` is accepted with probability
/// `min(1, p_i(x)·S_i / (q(x)·W_i))`, and a tuple's acceptance is one minus the product of its rejections — what
/// ``RRSWithoutReplacementVerifier`` decides from whole vectors in O(n·|V|), equal up to rounding (tested tuple by
/// tuple). Sums are kept in `Float80`, so `S_i` and `W_i` stay accurate when the drafted tokens hold almost all the
/// mass.
public struct RRSwMonteCarlo: Sendable {
    let target: [Double]
    let draft: [Double]
    /// `p/q` of the tokens with `p > 0` or `q > 0`, ascending (`q = 0` last, as +∞).
    let ratios: [Double]
    /// Sums of `p` and `q` over the tokens from the `j`-th in that order on.
    let targetSuffix: [Float80]
    let draftSuffix: [Float80]
    /// `Σ q` over tokens `0..<x`, for sampling by inversion.
    let cumulative: [Float80]
    /// Tokens with `q > 0`: the most drafts a tuple can hold.
    let support: Int

    public init(target p: [Double], draft q: [Double]) throws {
        try Probability.validatePair(target: p, draft: q)
        target = p
        draft = q
        let order = p.indices.filter { p[$0] > 0 || q[$0] > 0 }.sorted { p[$0] * q[$1] < p[$1] * q[$0] }
        ratios = order.map { q[$0] > 0 ? p[$0] / q[$0] : .infinity }
        var targetSuffix = [Float80](repeating: 0, count: order.count + 1)
        var draftSuffix = [Float80](repeating: 0, count: order.count + 1)
        for j in order.indices.reversed() {
            targetSuffix[j] = targetSuffix[j + 1] + Float80(p[order[j]])
            draftSuffix[j] = draftSuffix[j + 1] + Float80(q[order[j]])
        }
        self.targetSuffix = targetSuffix
        self.draftSuffix = draftSuffix
        var cumulative = [Float80](repeating: 0, count: q.count + 1)
        for x in q.indices { cumulative[x + 1] = cumulative[x] + Float80(q[x]) }
        self.cumulative = cumulative
        support = q.reduce(0) { $0 + ($1 > 0 ? 1 : 0) }
    }

    /// `h(k) = Σ_x max(p(x) − k·q(x), 0)`.
    func clippedMass(_ k: Float80) -> Float80 {
        var low = 0
        var high = ratios.count
        while low < high {
            let middle = (low + high) / 2
            if Float80(ratios[middle]) <= k { low = middle + 1 } else { high = middle }
        }
        return max(targetSuffix[low] - k * draftSuffix[low], 0)
    }

    /// `Σ q` over the tokens not in `drafted`.
    func remainingDraftMass(excluding drafted: [Int]) -> Float80 {
        var total = cumulative[draft.count]
        for x in drafted { total -= Float80(draft[x]) }
        return max(total, 0)
    }

    /// The probability that RRSw accepts one of `drafts` (distinct tokens with `q > 0`, in drawing order).
    public func acceptance(of drafts: [Int]) -> Double {
        var k: Float80 = 0
        var mass: Float80 = 1  // W_i
        var rejection = 1.0
        var drafted: [Int] = []
        for x in drafts {
            let remaining = drafted.isEmpty ? 1 : remainingDraftMass(excluding: drafted)
            let numerator = max(Float80(target[x]) - k * Float80(draft[x]), 0) * remaining
            let denominator = Float80(draft[x]) * mass
            let accept = numerator >= denominator ? 1 : Double(numerator / denominator)
            rejection *= 1 - accept
            if rejection == 0 { break }  // accepted for certain: later drafts are never reached
            drafted.append(x)
            // The next running target; a residual with no mass restarts from the target, as the verifier does.
            let next = k + mass / remaining
            let nextMass = clippedMass(next)
            if Double(nextMass / mass) > Probability.negligibleMass {
                (k, mass) = (next, nextMass)
            } else {
                (k, mass) = (0, 1)
            }
        }
        return 1 - rejection
    }

    /// `count` distinct tokens drawn one after another from `q` restricted to the tokens not yet drawn (the
    /// without-replacement law), by inversion of the cumulative sums with the drawn tokens' intervals skipped.
    public func sample(count: Int, using generator: inout some RandomNumberGenerator) -> [Int] {
        var drawn: [Int] = []
        let n = min(count, support)
        while drawn.count < n {
            let remaining = drawn.isEmpty ? cumulative[draft.count] : remainingDraftMass(excluding: drawn)
            var point = Float80(Double.random(in: 0..<1, using: &generator)) * remaining
            // From the remaining tokens' coordinate to the whole line: add each drawn interval at or before it.
            for x in drawn.sorted() {
                if point >= cumulative[x] { point += Float80(draft[x]) } else { break }
            }
            // The first token whose interval ends beyond the point.
            var low = 0
            var high = draft.count - 1
            while low < high {
                let middle = (low + high) / 2
                if cumulative[middle + 1] > point { high = middle } else { low = middle + 1 }
            }
            // Rounding at an interval's edge can land on a drawn or empty token: take the next usable one.
            var token = low
            var steps = 0
            while draft[token] <= 0 || drawn.contains(token) {
                token = (token + 1) % draft.count
                steps += 1
                if steps > draft.count { return drawn }
            }
            drawn.append(token)
        }
        return drawn
    }

    /// The mean acceptance over `samples` seeded draft tuples and its standard error.
    public func estimate(count: Int, samples: Int, seed: UInt64) throws -> (mean: Double, standardError: Double) {
        if samples < 2 {
            throw VerifyError.invalidSetting(name: "samples", value: "\(samples)", reason: "must be ≥ 2")
        }
        var generator = SplitMix64(seed: seed)
        return AcceptanceRate.sampleMean(samples) { acceptance(of: sample(count: count, using: &generator)) }
    }
}
