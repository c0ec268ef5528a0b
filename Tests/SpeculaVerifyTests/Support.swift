import SpeculaTheory
import SpeculaVerify

/// Shared helpers for the tests: seeded random distributions and the exactness tolerance.
enum Fixture {
    /// ALGORITHMS.md §7: exact enumeration must match the target to 1e-12.
    static let exactTolerance = 1e-12

    /// A random probability vector with some exact zeros and some ties, from a seeded generator.
    static func distribution(
        size: Int, using generator: inout SplitMix64, zeros: Bool = true, ties: Bool = true
    ) -> [Double] {
        var weights = (0..<size).map { _ in generator.nextUniform() + 0.01 }
        if zeros && size > 1 && generator.next() % 3 == 0 { weights[Int(generator.next() % UInt64(size))] = 0 }
        if ties && size > 2 && generator.next() % 3 == 0 { weights[1] = weights[0] }
        let total = weights.reduce(0, +)
        return weights.map { $0 / total }
    }

    /// An LLM-like peaked distribution over a large vocabulary: Zipf-like logits plus noise, softmax at `T = 1`.
    static func peaked(size: Int, seed: UInt64, shift: Double = 0) -> [Double] {
        var generator = SplitMix64(seed: seed)
        var logits = [Double](repeating: 0, count: size)
        for index in 0..<size {
            let rank = Double((index * 7919 + Int(seed % 97)) % size + 1)
            logits[index] = -1.1 * log(rank) + 0.8 * generator.nextUniform() + shift * generator.nextUniform()
        }
        logits[Int(seed % UInt64(size))] += 4
        return (try? Probability.softmax(logits)) ?? []
    }

    static func maxDifference(_ a: [Double], _ b: [Double]) -> Double {
        zip(a, b).map { abs($0 - $1) }.max() ?? 0
    }

    /// Every verifier the package defines, with its name.
    static let verifiers: [any NodeVerifier] = [
        TokenVerifier(), RRSVerifier(), RRSWithoutReplacementVerifier(), KSEQVerifier(), SpecHubVerifier(),
        GreedyVerifier(), OptimalTransportVerifier(law: .independent),
        OptimalTransportVerifier(law: .withoutReplacement), OptimalTransportVerifier(law: .greedy),
        OptimalTransportVerifier(law: .hubPair),
    ]
}

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Upper tail of the chi-square distribution (the library's, `TwoSampleTest.chiSquareTail`).
func chiSquareTail(_ x: Double, degreesOfFreedom k: Int) -> Double {
    TwoSampleTest.chiSquareTail(x, degreesOfFreedom: k)
}

/// Pearson's chi-square of observed counts against expected probabilities, merging cells (in index order) until each
/// merged cell expects at least 5. Returns the statistic and the degrees of freedom.
func chiSquare(counts: [Int], expected: [Double], trials: Int) -> (statistic: Double, degreesOfFreedom: Int) {
    var statistic = 0.0
    var cells = 0
    var observed = 0.0
    var wanted = 0.0
    for index in counts.indices {
        observed += Double(counts[index])
        wanted += expected[index] * Double(trials)
        if wanted >= 5 {
            statistic += (observed - wanted) * (observed - wanted) / wanted
            cells += 1
            observed = 0
            wanted = 0
        }
    }
    if wanted > 0 || observed > 0 {
        // Fold what is left into the statistic as one more cell (it expects under 5, so merge it when possible).
        let w = max(wanted, 1e-300)
        statistic += (observed - wanted) * (observed - wanted) / w
        cells += 1
    }
    return (statistic, max(cells - 1, 1))
}
