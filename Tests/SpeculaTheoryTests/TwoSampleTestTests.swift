import SpeculaTheory
import SpeculaVerify
import Testing

@Suite("Two-sample test of homogeneity (specula audit)")
struct TwoSampleTestTests {
    /// Chi-square upper tails against printed table values (the 5 % and 0.1 % critical values).
    @Test func chiSquareTailMatchesTables() {
        #expect(abs(TwoSampleTest.chiSquareTail(3.841, degreesOfFreedom: 1) - 0.05) < 1e-4)
        #expect(abs(TwoSampleTest.chiSquareTail(18.307, degreesOfFreedom: 10) - 0.05) < 1e-4)
        #expect(abs(TwoSampleTest.chiSquareTail(29.588, degreesOfFreedom: 10) - 0.001) < 1e-5)
        #expect(abs(TwoSampleTest.chiSquareTail(124.342, degreesOfFreedom: 100) - 0.05) < 1e-4)
        #expect(TwoSampleTest.chiSquareTail(0, degreesOfFreedom: 3) == 1)
    }

    static func sample(_ p: [Double], count: Int, seed: UInt64) -> [Int] {
        var generator = SplitMix64(seed: seed)
        var counts = [Int](repeating: 0, count: p.count)
        for _ in 0..<count { counts[Probability.sampleIndex(p, uniform: generator.nextUniform()) ?? 0] += 1 }
        return counts
    }

    /// Same law: p-values are not small (over 20 seeds at most one below 0.01). A law with 5 % of the mass moved:
    /// p below 1e-6 with 20,000 samples each. Rare categories are pooled.
    @Test func separatesEqualFromDifferentLaws() {
        let p = [0.3, 0.2, 0.15, 0.1, 0.1, 0.05, 0.04, 0.03, 0.02, 0.005, 0.005]
        var q = p
        q[0] -= 0.05
        q[5] += 0.05
        var small = 0
        for seed in 0..<20 {
            let result = TwoSampleTest.compare(
                Self.sample(p, count: 2000, seed: UInt64(seed)), Self.sample(p, count: 2000, seed: UInt64(100 + seed)))
            if result.pValue < 0.01 { small += 1 }
            #expect(result.totalVariation < 0.06)
        }
        #expect(small <= 1)
        let different = TwoSampleTest.compare(
            Self.sample(p, count: 20000, seed: 7), Self.sample(q, count: 20000, seed: 8))
        #expect(different.pValue < 1e-6)
        // The true distance is 0.05; the empirical one of two 20,000-samples is biased upward by about
        // ½ Σ_c σ_c √(2/π) ≈ 0.012 (σ_c ≈ √(2 p_c / 20,000)) and spread by a few thousandths more.
        #expect(different.totalVariation > 0.03 && different.totalVariation < 0.09, "\(different.totalVariation)")
        let pooled = TwoSampleTest.compare([50, 30, 1, 2], [45, 35, 2, 1])
        #expect(pooled.cells == 3)
        #expect(pooled.degreesOfFreedom == 2)
    }
}

@Suite("Clustered means (bench acceptance)")
struct ClusteredMeanTests {
    @Test func meansAndIntervalByGroup() {
        let summary = ClusteredMean(groups: [[1, 1, 1, 1], [0, 0], []])
        #expect(summary.count == 6)
        #expect(summary.groups == 2)
        #expect(abs(summary.mean - 4.0 / 6) < 1e-15)
        #expect(summary.meanOfGroups == 0.5)
        // Group means 1 and 0: sample sd √0.5, standard error 0.5, half-width t(0.975, 1) × 0.5 (scipy's quantile).
        #expect(abs((summary.halfWidth ?? 0) - 0.5 * 12.706204736174694) < 1e-9)
        #expect(ClusteredMean(groups: [[0.3, 0.5]]).halfWidth == nil)
    }
}
