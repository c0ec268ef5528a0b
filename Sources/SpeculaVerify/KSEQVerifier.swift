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
    /// Cells of the binning that replaces the first log2(cells) bisection steps.
    static let histogramCells = 4096

    public func decide(target: [Double], draft: [Double], drafts: [Int], into decision: inout NodeDecision) throws {
        try validate(target: target, draft: draft, drafts: drafts)
        decision.reset(vocabularySize: target.count, drafts: drafts)
        // The residual buffer serves as scratch here; it is written afterwards.
        let (rho, beta) = KSEQVerifier.solve(
            target: target, draft: draft, draftCount: drafts.count, ratios: &decision.scratch,
            targets: &decision.scratch2, drafts: &decision.residual, cells: &decision.cells)
        for (child, token) in drafts.enumerated() {
            decision.tests.append(NodeTest(child: child, numerator: target[token], denominator: rho * draft[token]))
        }
        if beta <= 0 {
            copy(target, into: &decision.residual)
            return
        }
        let acceptance = 1 - pow(1 - beta, Double(drafts.count))
        let scale = acceptance / beta
        let inverseRho = 1 / rho
        target.withUnsafeBufferPointer { p in
            draft.withUnsafeBufferPointer { q in
                decision.residual.withUnsafeMutableBufferPointer { r in
                    for index in 0..<p.count {
                        r[index] = max(p[index] - min(q[index], p[index] * inverseRho) * scale, 0)
                    }
                }
            }
        }
    }

    /// `ρ*` and `β(ρ*)` for `n` i.i.d. drafts.
    ///
    /// Tokens with `p = 0` or `q = 0` add nothing to `β`. For the others, `β(ρ) = Σ_{p/q ≥ ρ} q + (1/ρ)·Σ_{p/q < ρ} p`:
    /// once a token's ratio lies outside the bracket its term is fixed, so each iteration touches only the tokens
    /// still inside, kept contiguous (ratio, p, q) in the three scratch arrays, which are reused without
    /// reallocation. The first 12 steps run on per-cell sums of a 4096-cell binning of the bracket (`cells`), so the
    /// whole solve reads the vocabulary about twice instead of once per step.
    public static func solve(
        target: [Double], draft: [Double], draftCount: Int,
        ratios: inout [Double], targets: inout [Double], drafts: inout [Double], cells: inout [Double]
    ) -> (rho: Double, beta: Double) {
        let n = Double(draftCount)
        var lower = 1.0
        var upper = n
        var fixedDraft = 0.0  // Σ q over tokens with ratio ≥ upper
        var fixedTarget = 0.0  // Σ p over tokens with ratio < lower
        let size = target.count
        if ratios.count < size { ratios = [Double](repeating: 0, count: size) }
        if targets.count < size { targets = [Double](repeating: 0, count: size) }
        if drafts.count < size { drafts = [Double](repeating: 0, count: size) }
        var activeCount = 0
        if cells.count < 2 * histogramCells { cells = [Double](repeating: 0, count: 2 * histogramCells) }
        var initialDraft = 0.0
        var initialTarget = 0.0
        ratios.withUnsafeMutableBufferPointer { ratio in
            targets.withUnsafeMutableBufferPointer { activeP in
                drafts.withUnsafeMutableBufferPointer { activeQ in
                    target.withUnsafeBufferPointer { p in
                        draft.withUnsafeBufferPointer { q in
                            // Branch-free classification: ratio ≥ upper ⇔ p ≥ upper·q (term q), ratio < lower ⇔
                            // p < lower·q (term p/ρ), else active. A token with q = 0 lands in the first class and
                            // one with p = 0 in the second, where each adds 0, as it should.
                            for token in 0..<size {
                                let pt = p[token]
                                let qt = q[token]
                                let high = pt >= upper * qt
                                let low = pt < lower * qt
                                fixedDraft += high ? qt : 0
                                fixedTarget += low ? pt : 0
                                activeP[activeCount] = pt
                                activeQ[activeCount] = qt
                                activeCount += high == low ? 1 : 0
                            }
                        }
                    }
                    initialDraft = fixedDraft
                    initialTarget = fixedTarget
                    for index in 0..<activeCount { ratio[index] = activeP[index] / activeQ[index] }
                    // Phase 1: the first `histogramLevels` bisection steps only need sums over dyadic cells of the
                    // bracket, so one pass bins the active tokens and those steps cost O(cells).
                    var iteration = 0
                    if activeCount > 4 * histogramCells && upper > lower {
                        cells.withUnsafeMutableBufferPointer { cellBuffer in
                            do {
                                // cells[0..<H] holds Σ p per cell, cells[H..<2H] Σ q per cell.
                                let cellP = UnsafeMutableBufferPointer(rebasing: cellBuffer[0..<histogramCells])
                                let cellQ = UnsafeMutableBufferPointer(
                                    rebasing: cellBuffer[histogramCells..<(2 * histogramCells)])
                                for cell in 0..<histogramCells {
                                    cellP[cell] = 0
                                    cellQ[cell] = 0
                                }
                                let cellsPerUnit = Double(histogramCells) / (upper - lower)
                                for index in 0..<activeCount {
                                    let cell = min(Int((ratio[index] - lower) * cellsPerUnit), histogramCells - 1)
                                    cellP[cell] += activeP[index]
                                    cellQ[cell] += activeQ[index]
                                }
                                var lowCell = 0
                                var highCell = histogramCells
                                while highCell - lowCell > 1 && iteration < bisectionIterations {
                                    let middleCell = (lowCell + highCell) / 2
                                    let middle = (lower + upper) / 2
                                    var targetBelow = 0.0
                                    var draftAbove = 0.0
                                    for cell in lowCell..<middleCell { targetBelow += cellP[cell] }
                                    for cell in middleCell..<highCell { draftAbove += cellQ[cell] }
                                    let beta = fixedDraft + draftAbove + (fixedTarget + targetBelow) / middle
                                    if 1 - pow(1 - beta, n) - middle * beta > 0 {
                                        lower = middle
                                        fixedTarget += targetBelow
                                        lowCell = middleCell
                                    } else {
                                        upper = middle
                                        fixedDraft += draftAbove
                                        highCell = middleCell
                                    }
                                    iteration += 1
                                }
                            }
                        }
                        // Restart the fixed sums from the exact comparisons, so that the state equals plain
                        // bisection's even for a token the binning put on the other side of a cell boundary.
                        fixedDraft = initialDraft
                        fixedTarget = initialTarget
                        var kept = 0
                        for index in 0..<activeCount {
                            let r = ratio[index]
                            let below = r < lower
                            let above = r >= upper
                            fixedTarget += below ? activeP[index] : 0
                            fixedDraft += above ? activeQ[index] : 0
                            ratio[kept] = r
                            activeP[kept] = activeP[index]
                            activeQ[kept] = activeQ[index]
                            kept += below || above ? 0 : 1
                        }
                        activeCount = kept
                    }
                    // Phase 2: plain bisection over the few tokens left in the bracket.
                    while iteration < bisectionIterations {
                        iteration += 1
                        let middle = (lower + upper) / 2
                        // Branch-free sums over the active tokens (the comparison outcomes are unpredictable).
                        var targetBelow = 0.0
                        var draftAbove = 0.0
                        for index in 0..<activeCount {
                            let below = ratio[index] < middle
                            targetBelow += below ? activeP[index] : 0
                            draftAbove += below ? 0 : activeQ[index]
                        }
                        let beta = fixedDraft + draftAbove + (fixedTarget + targetBelow) / middle
                        let f = 1 - pow(1 - beta, n) - middle * beta
                        let keepAbove = f > 0
                        if keepAbove {
                            lower = middle
                            fixedTarget += targetBelow
                        } else {
                            upper = middle
                            fixedDraft += draftAbove
                        }
                        // Branch-free compaction: keep the tokens on the side the bracket moved to.
                        var kept = 0
                        for index in 0..<activeCount {
                            let r = ratio[index]
                            ratio[kept] = r
                            activeP[kept] = activeP[index]
                            activeQ[kept] = activeQ[index]
                            kept += (r < middle) != keepAbove ? 1 : 0
                        }
                        activeCount = kept
                    }
                    for index in 0..<activeCount { fixedTarget += activeP[index] }
                }
            }
        }
        let beta = fixedDraft + fixedTarget / upper
        return (upper, min(max(beta, 0), 1))
    }
}
