import SpeculaVerify

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The expected acceptance `α` of each verifier at one node: closed forms where they exist (ALGORITHMS.md §5.4),
/// exact enumeration for small vocabularies, and a seeded Monte-Carlo estimator for any rule at any size.
public enum AcceptanceRate {
    /// Token verification (one draft): `β = Σ min(p, q) = 1 − TV(p, q)`. O(|V|).
    public static func token(target: [Double], draft: [Double]) throws -> Double {
        try Probability.validatePair(target: target, draft: draft)
        return Probability.overlap(target, draft)
    }

    /// RRS with replacement: `1 − Π_k (1 − β_k)` with `β_k = Σ min(p_{k−1}, q)`, `p_k = res(p_{k−1}, q)` (§4.3).
    /// O(n·|V|).
    public static func rrs(target: [Double], draft: [Double], count: Int) throws -> Double {
        try Probability.validatePair(target: target, draft: draft)
        try checkCount(count, "rrs")
        var running = target
        var rejection = 1.0
        var scratch: [Double] = []
        for step in 0..<count {
            let beta = Probability.overlap(running, draft)
            rejection *= max(1 - beta, 0)
            if step + 1 == count { break }
            let mass = Probability.positivePart(running, minus: draft, into: &scratch)
            if mass <= Probability.negligibleMass { return 1 }
            running = scratch.map { $0 / mass }
        }
        return min(max(1 - rejection, 0), 1)
    }

    /// K-SEQ: `1 − (1 − β(ρ*))ⁿ` (§4.5), with the verifier's own `ρ*`. O(|V|) expected.
    public static func kseq(target: [Double], draft: [Double], count: Int) throws -> (acceptance: Double, rho: Double) {
        try Probability.validatePair(target: target, draft: draft)
        try checkCount(count, "kseq")
        var ratios: [Double] = []
        var targets: [Double] = []
        var drafts: [Double] = []
        var cells: [Double] = []
        let (rho, beta) = KSEQVerifier.solve(
            target: target, draft: draft, draftCount: count, ratios: &ratios, targets: &targets, drafts: &drafts,
            cells: &cells)
        return (1 - pow(1 - beta, Double(count)), rho)
    }

    /// SpecHub (two drafts): `p(a) + Σ_{i≠a} min(p(i), q′(i))`, `a = argmax q` (§4.6). Also `α*` of the hub-pair law.
    public static func specHub(target: [Double], draft: [Double]) throws -> Double {
        try Probability.validatePair(target: target, draft: draft)
        if target.count < 2 {
            throw VerifyError.unsupportedDraftCount(
                verifier: "spechub", count: 2, supported: "a vocabulary of ≥ 2 tokens")
        }
        let hub = Probability.argmax(draft)
        let rest = DraftLaw.remainder(draft: draft, excluding: [hub])
        var total = target[hub]
        for token in target.indices where token != hub { total += min(target[token], rest[token]) }
        return min(total, 1)
    }

    /// Greedy-law verifier: `p(T) + Σ_{y∉T} min(p(y), q′(y))` for the top `n − 1` draft tokens `T` (§4.7); also `α*`
    /// of the greedy law. O(n·|V|).
    public static func greedy(target: [Double], draft: [Double], count: Int) throws -> Double {
        try Probability.validatePair(target: target, draft: draft)
        try DraftLaw.greedy.validate(count: count, vocabularySize: target.count)
        let fixed = SamplingSettings.topIndices(draft, count: count - 1)
        let rest = DraftLaw.remainder(draft: draft, excluding: fixed)
        var total = 0.0
        for token in target.indices {
            total += fixed.contains(token) ? target[token] : min(target[token], rest[token])
        }
        return min(total, 1)
    }

    /// The frame of RRS without replacement at two drafts (§4.4): `β_1 = Σ min(p, q)`, the normalised residual
    /// `p_1`, and for each rejected first draft `x_1` its rejected mass `q(x_1) − min(p, q)(x_1)` and
    /// `Σ_{y≠x_1} q(y)` (summed from the other entries, not subtracted from 1). Nil when the residual has no mass
    /// (acceptance 1).
    static func rrswTwoDraftsFrame(target: [Double], draft: [Double]) throws -> (
        first: Double, residual: [Double], rejected: [(token: Int, mass: Double, others: Double)]
    )? {
        try Probability.validatePair(target: target, draft: draft)
        let first = Probability.overlap(target, draft)
        var scratch: [Double] = []
        let mass = Probability.positivePart(target, minus: draft, into: &scratch)
        if mass <= Probability.negligibleMass { return nil }
        var prefix = [Double](repeating: 0, count: draft.count + 1)
        for index in draft.indices { prefix[index + 1] = prefix[index] + draft[index] }
        var suffix = [Double](repeating: 0, count: draft.count + 1)
        for index in draft.indices.reversed() { suffix[index] = suffix[index + 1] + draft[index] }
        var rejected: [(token: Int, mass: Double, others: Double)] = []
        for x1 in draft.indices {
            let mass = draft[x1] - min(target[x1], draft[x1])
            let others = prefix[x1] + suffix[x1 + 1]
            if mass > 0 && others > 0 { rejected.append((x1, mass, others)) }
        }
        return (first, scratch.map { $0 / mass }, rejected)
    }

    /// RRS without replacement, two drafts, exactly (§4.4), in O(|V| log |V|). For a rejected first draft `x_1`
    /// (`q(x_1) > p(x_1)`, so `p_1(x_1) = 0` and its own term vanishes) the inner sum is
    /// `g(c) = Σ_x min(p_1(x), c·q(x))` at `c = 1/(1 − q(x_1))`; `g` is concave and piecewise linear in `c`: with the
    /// tokens sorted by `p_1(x)/q(x)`, the ones at or below `c` give `p_1(x)`, the rest `c·q(x)`, so each `g(c)` is a
    /// binary search and two prefix sums. Equal to ``rrswTwoDraftsQuadratic(target:draft:)`` up to rounding (tested).
    public static func rrswTwoDrafts(target: [Double], draft: [Double]) throws -> Double {
        guard let frame = try rrswTwoDraftsFrame(target: target, draft: draft) else { return 1 }
        let residual = frame.residual
        // Tokens with q > 0 by the ratio p_1/q (q = 0 adds min(p_1, 0) = 0 at every c).
        let order = draft.indices.filter { draft[$0] > 0 }.sorted {
            residual[$0] * draft[$1] < residual[$1] * draft[$0]
        }
        let ratios = order.map { residual[$0] / draft[$0] }
        // below[k] = Σ p_1 over the first k tokens; above[k] = Σ q over the tokens from k on.
        var below = [Double](repeating: 0, count: order.count + 1)
        for (k, token) in order.enumerated() { below[k + 1] = below[k] + residual[token] }
        var above = [Double](repeating: 0, count: order.count + 1)
        for k in order.indices.reversed() { above[k] = above[k + 1] + draft[order[k]] }
        var total = frame.first
        for (_, mass, others) in frame.rejected {
            let c = 1 / others
            // k: the number of ratios ≤ c.
            var low = 0
            var high = ratios.count
            while low < high {
                let middle = (low + high) / 2
                if ratios[middle] <= c { low = middle + 1 } else { high = middle }
            }
            total += mass * (below[low] + c * above[low])
        }
        return min(total, 1)
    }

    /// The same sum term by term, `Σ_{x≠x_1} min(p_1(x), q(x)/(1 − q(x_1)))` for each rejected `x_1`. O(|V|²): the
    /// reference the fast form is tested against.
    public static func rrswTwoDraftsQuadratic(target: [Double], draft: [Double]) throws -> Double {
        guard let frame = try rrswTwoDraftsFrame(target: target, draft: draft) else { return 1 }
        var total = frame.first
        for (x1, mass, others) in frame.rejected {
            var second = 0.0
            for x in draft.indices where x != x1 { second += min(frame.residual[x], draft[x] / others) }
            total += mass * second
        }
        return min(total, 1)
    }

    /// Exact acceptance of any verifier by enumerating its draft tuples (small vocabularies).
    public static func exact(verifier: any NodeVerifier, target: [Double], draft: [Double], count: Int) throws -> Double
    {
        try ExactNode.law(verifier: verifier, target: target, draft: draft, count: count).acceptance
    }

    /// A Monte-Carlo estimate of any verifier's acceptance: sample draft tuples from the verifier's law with a
    /// seeded generator and average the exact acceptance probability of each tuple (from the deterministic core;
    /// lower variance than sampling the outcome too). Returns the mean and its standard error.
    /// - Complexity: O(samples · n·|V|).
    public static func monteCarlo(
        verifier: any NodeVerifier, target: [Double], draft: [Double], count: Int, samples: Int, seed: UInt64
    ) throws -> (mean: Double, standardError: Double) {
        try Probability.validatePair(target: target, draft: draft)
        if samples < 2 {
            throw VerifyError.invalidSetting(name: "samples", value: "\(samples)", reason: "must be ≥ 2")
        }
        var generator = SplitMix64(seed: seed)
        var decision = NodeDecision()
        let drawn = verifier.draftLaw.draftCount(requested: count, draft: draft)
        let rule: any NodeVerifier = drawn == 1 ? TokenVerifier() : verifier
        return try sampleMean(samples) {
            let drafts = try verifier.draftLaw.sample(draft: draft, count: count, using: &generator)
            try rule.decide(target: target, draft: draft, drafts: drafts, into: &decision)
            return decision.acceptanceProbability(target: target)
        }
    }

    /// The mean of `samples` values drawn by `draw` and its standard error (sample variance, n − 1).
    static func sampleMean(_ samples: Int, _ draw: () throws -> Double) rethrows -> (
        mean: Double, standardError: Double
    ) {
        var sum = 0.0
        var sumOfSquares = 0.0
        for _ in 0..<samples {
            let value = try draw()
            sum += value
            sumOfSquares += value * value
        }
        let n = Double(samples)
        let mean = sum / n
        let variance = max(sumOfSquares / n - mean * mean, 0) * n / (n - 1)
        return (mean, (variance / n).squareRoot())
    }

    static func checkCount(_ count: Int, _ name: String) throws {
        if count < 1 { throw VerifyError.unsupportedDraftCount(verifier: name, count: count, supported: "n ≥ 1") }
    }
}
