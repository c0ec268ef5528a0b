#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Do two samples come from one distribution? Pearson's chi-square test of homogeneity on their category counts,
/// and the empirical total-variation distance — the statistics of `specula audit`.
public enum TwoSampleTest {
    public struct Result: Sendable, Equatable {
        /// ½ Σ |a_c/n_a − b_c/n_b| over all categories.
        public var totalVariation: Double
        public var statistic: Double
        public var degreesOfFreedom: Int
        /// P(χ² ≥ statistic) under homogeneity.
        public var pValue: Double
        /// Categories kept as their own cells (the rest pooled into one).
        public var cells: Int
    }

    /// Compares the counts of two samples over the same categories (`first[c]`, `second[c]`). Categories seen fewer
    /// than `pool` times in both samples together are pooled into one cell, so that every cell's expected counts
    /// are large enough for the chi-square approximation.
    public static func compare(_ first: [Int], _ second: [Int], pool: Int = 10) -> Result {
        precondition(first.count == second.count, "one count per category in each sample")
        let na = Double(first.reduce(0, +))
        let nb = Double(second.reduce(0, +))
        guard na > 0, nb > 0 else {
            return Result(totalVariation: 0, statistic: 0, degreesOfFreedom: 0, pValue: 1, cells: 0)
        }
        var tv = 0.0
        var cellsA: [Double] = []
        var cellsB: [Double] = []
        var pooledA = 0.0
        var pooledB = 0.0
        for c in first.indices {
            tv += abs(Double(first[c]) / na - Double(second[c]) / nb)
            if first[c] + second[c] >= pool {
                cellsA.append(Double(first[c]))
                cellsB.append(Double(second[c]))
            } else {
                pooledA += Double(first[c])
                pooledB += Double(second[c])
            }
        }
        if pooledA + pooledB > 0 {
            cellsA.append(pooledA)
            cellsB.append(pooledB)
        }
        var statistic = 0.0
        for k in cellsA.indices {
            let total = cellsA[k] + cellsB[k]
            let expectedA = na * total / (na + nb)
            let expectedB = nb * total / (na + nb)
            statistic += (cellsA[k] - expectedA) * (cellsA[k] - expectedA) / expectedA
            statistic += (cellsB[k] - expectedB) * (cellsB[k] - expectedB) / expectedB
        }
        let degrees = max(cellsA.count - 1, 0)
        let p = degrees == 0 ? 1 : chiSquareTail(statistic, degreesOfFreedom: degrees)
        return Result(
            totalVariation: tv / 2, statistic: statistic, degreesOfFreedom: degrees, pValue: p, cells: cellsA.count)
    }

    /// Upper tail of the chi-square distribution, `P(X ≥ x)` with `k` degrees of freedom: the regularised upper
    /// incomplete gamma `Q(k/2, x/2)`, by its series below `a + 1` and Lentz's continued fraction above.
    public static func chiSquareTail(_ x: Double, degreesOfFreedom k: Int) -> Double {
        let a = Double(k) / 2
        let z = x / 2
        if z <= 0 { return 1 }
        let logPrefix = a * log(z) - z - lgamma(a)
        if z < a + 1 {
            var term = 1 / a
            var sum = term
            var n = a
            for _ in 0..<10_000 {
                n += 1
                term *= z / n
                sum += term
                if abs(term) < abs(sum) * 1e-16 { break }
            }
            return max(0, 1 - sum * exp(logPrefix))
        }
        let tiny = 1e-300
        var b = z + 1 - a
        var c = 1 / tiny
        var d = 1 / b
        var h = d
        for i in 1..<10_000 {
            let an = -Double(i) * (Double(i) - a)
            b += 2
            d = an * d + b
            if abs(d) < tiny { d = tiny }
            c = b + an / c
            if abs(c) < tiny { c = tiny }
            d = 1 / d
            let delta = d * c
            h *= delta
            if abs(delta - 1) < 1e-16 { break }
        }
        return exp(logPrefix) * h
    }
}
