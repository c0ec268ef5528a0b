import SpeculaTheory
import SpeculaVerify
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// The fast K-SEQ root finder (binning, then bisection over the tokens left in the bracket) against §4.5's plain
/// bisection written out here: 60 iterations on [1, n], β summed over the whole vocabulary each time, upper bracket.
@Suite("K-SEQ ρ* against plain bisection")
struct KSEQSolveTests {
    static func plainBisection(target p: [Double], draft q: [Double], n: Int) -> (rho: Double, beta: Double) {
        func beta(_ rho: Double) -> Double {
            var total = 0.0
            for x in p.indices { total += min(q[x], p[x] / rho) }
            return total
        }
        var lower = 1.0
        var upper = Double(n)
        for _ in 0..<60 {
            let middle = (lower + upper) / 2
            let b = beta(middle)
            if 1 - pow(1 - b, Double(n)) - middle * b > 0 { lower = middle } else { upper = middle }
        }
        return (upper, beta(upper))
    }

    @Test(arguments: [(151_936, 2, 0.5), (151_936, 3, 1.0), (50_000, 4, 2.0), (20_000, 3, 0.2), (300, 2, 1.0)])
    func matchesPlainBisection(size: Int, n: Int, noise: Double) throws {
        let (p, q) = try SyntheticPair.make(vocabularySize: size, seed: UInt64(size + n), draftNoise: noise)
        let reference = Self.plainBisection(target: p, draft: q, n: n)
        var (ratios, targets, drafts, cells) = ([Double](), [Double](), [Double](), [Double]())
        let fast = KSEQVerifier.solve(
            target: p, draft: q, draftCount: n, ratios: &ratios, targets: &targets, drafts: &drafts, cells: &cells)
        // Both sum β in a different order, so a bisection step whose f(middle) is at rounding level (|f| ≲ 1e-14 at
        // this size) may go either way; since |f′| ≥ β ≥ 0.1 here, both results then lie within ~1e-13 of the root.
        #expect(abs(fast.rho - reference.rho) <= 1e-13 * reference.rho, "ρ* \(fast.rho) vs \(reference.rho)")
        #expect(abs(fast.beta - reference.beta) < 1e-12, "β \(fast.beta) vs \(reference.beta)")
        // The accepted mass min(q, p/ρ)·A/β stays below p at every token (what losslessness needs).
        let acceptance = 1 - pow(1 - fast.beta, Double(n))
        var worst = 0.0
        for x in p.indices { worst = max(worst, min(q[x], p[x] / fast.rho) * acceptance / fast.beta - p[x]) }
        #expect(worst < 1e-15)
    }
}
