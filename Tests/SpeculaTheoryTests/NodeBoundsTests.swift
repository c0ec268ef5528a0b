import SpeculaTheory
import SpeculaVerify
import Testing

/// RRS without replacement at two drafts in O(|V| log |V|) against its O(|V|²) form and enumeration, and the
/// α ≤ α* check at each value's own precision, shown to fail on deliberate mutations.
@Suite("Node bounds: exact RRSw and the α ≤ α* check")
struct NodeBoundsTests {
    /// Random pairs with zeros and ties (both make the sort and the binary search meet equal ratios).
    static func pairs(size: Int, seed: UInt64) -> (target: [Double], draft: [Double]) {
        var random = SplitMix64(seed: seed)
        func vector() -> [Double] {
            let raw = (0..<size).map { _ -> Double in
                let u = random.nextUniform()
                return u < 0.2 ? 0 : (u < 0.35 ? 0.05 : u)
            }
            let total = raw.reduce(0, +)
            return total > 0 ? raw.map { $0 / total } : [Double](repeating: 1 / Double(size), count: size)
        }
        return (vector(), vector())
    }

    @Test func fastRRSwEqualsTheQuadraticFormAndEnumeration() throws {
        for size in [2, 3, 5, 6, 17, 64, 300] {
            for seed in UInt64(0)..<20 {
                let (p, q) = Self.pairs(size: size, seed: seed &* 7919 &+ UInt64(size))
                let fast = try AcceptanceRate.rrswTwoDrafts(target: p, draft: q)
                let quadratic = try AcceptanceRate.rrswTwoDraftsQuadratic(target: p, draft: q)
                #expect(abs(fast - quadratic) < 1e-12, "size \(size), seed \(seed): \(fast) vs \(quadratic)")
                if size <= 6 {
                    let enumerated = try AcceptanceRate.exact(
                        verifier: RRSWithoutReplacementVerifier(), target: p, draft: q, count: 2)
                    #expect(abs(fast - enumerated) < 1e-12, "size \(size), seed \(seed)")
                }
            }
        }
        // At the full vocabulary it stays exact where the quadratic form would take minutes: LLM-like pairs.
        let (p, q) = try SyntheticPair.make(vocabularySize: 151_936, seed: 4)
        let bounds = try NodeBounds(target: p, draft: q, drafts: 2, samples: 10, seed: 1)
        let rrsw = try #require(bounds.acceptance.first { $0.name == "rrsw" })
        #expect(rrsw.method == .closedForm)
        #expect(bounds.violations.isEmpty)
    }

    @Test func noViolationOnRealisticPairs() throws {
        for size in [4, 8, 12, 40] {
            for n in 1...3 {
                for seed in UInt64(0)..<10 {
                    let (p, q) = try SyntheticPair.make(vocabularySize: size, seed: seed &+ 100 &* UInt64(size))
                    let bounds = try NodeBounds(target: p, draft: q, drafts: n, samples: 400, seed: seed)
                    #expect(bounds.violations.isEmpty, "size \(size), n \(n), seed \(seed): \(bounds.violations)")
                }
            }
        }
    }

    /// The second look: a Monte-Carlo value pushed 5 standard errors above its α* (as a sample that met too few
    /// rare tuples gives) is cleared by 100× the tuples; a wrong α* and a wrong exact value are not.
    @Test func aMonteCarloAlarmIsConfirmedBeforeItStopsARun() throws {
        let (p, q) = try SyntheticPair.make(vocabularySize: 40, seed: 9)
        let bounds = try NodeBounds(target: p, draft: q, drafts: 3, samples: 400, seed: 1)
        try #require(bounds.violations.isEmpty)
        let rrsw = try #require(bounds.acceptance.firstIndex { $0.name == "rrsw" })
        guard case .monteCarlo(_, let error) = bounds.acceptance[rrsw].method else {
            Issue.record("RRSw at n = 3 over 40 tokens should be a Monte-Carlo estimate")
            return
        }
        let optimum = try #require(bounds.optimal.first { $0.name == "withoutReplacement" }).value
        var alarm = bounds
        alarm.acceptance[rrsw].value = min(1, optimum + 5 * max(error, 0.01))
        alarm.acceptance[rrsw].method = .monteCarlo(samples: 400, standardError: max(error, 0.01))
        #expect(alarm.violations.map(\.verifier) == ["rrsw"])
        #expect(try alarm.confirmedViolations(target: p, draft: q, seed: 7).isEmpty)
        // A bound well below the true acceptance (a wrong α*) is flagged at both sample sizes.
        var wrongBound = bounds
        let value = bounds.acceptance[rrsw].value
        wrongBound.optimal = wrongBound.optimal.map { $0.name == "withoutReplacement" ? ($0.name, 0.6 * value) : $0 }
        #expect(wrongBound.violations.map(\.verifier) == ["rrsw"])
        #expect(try wrongBound.confirmedViolations(target: p, draft: q, seed: 7).map(\.verifier) == ["rrsw"])
        // An exact value is not estimated again.
        var exact = bounds
        let greedy = try #require(exact.acceptance.firstIndex { $0.name == "greedy" })
        exact.acceptance[greedy].value += 1e-7
        #expect(try exact.confirmedViolations(target: p, draft: q, seed: 7).map(\.verifier) == ["greedy"])
    }

    @Test func theCheckCatchesMutations() throws {
        let (p, q) = try SyntheticPair.make(vocabularySize: 40, seed: 9)
        let bounds = try NodeBounds(target: p, draft: q, drafts: 2, samples: 400, seed: 1)
        try #require(bounds.violations.isEmpty)
        // The greedy verifier attains the greedy law's α* exactly: a value 1e-7 too high is caught…
        var mutated = bounds
        let greedy = try #require(mutated.acceptance.firstIndex { $0.name == "greedy" })
        mutated.acceptance[greedy].value += 1e-7
        #expect(mutated.violations.map(\.verifier) == ["greedy"])
        // … as is an exact (closed-form) RRSw value above α* without replacement, as a formula bug would give.
        mutated = bounds
        let rrsw = try #require(mutated.acceptance.firstIndex { $0.name == "rrsw" })
        let optimum = try #require(bounds.optimal.first { $0.name == "withoutReplacement" }).value
        mutated.acceptance[rrsw].value = optimum + 1e-6
        #expect(mutated.violations.map(\.verifier) == ["rrsw"])
        // A Monte-Carlo value is held to four of its own standard errors: 3 SE above α* passes, 5 SE fails (a
        // spread sample: 400 values with standard deviation 0.4, whose guarded error is within 1 % of its own).
        mutated = bounds
        mutated.acceptance[rrsw].method = .monteCarlo(samples: 400, standardError: 0.02)
        mutated.acceptance[rrsw].value = optimum - 0.2 + 0.06
        mutated.optimal = mutated.optimal.map { $0.name == "withoutReplacement" ? ($0.name, optimum - 0.2) : $0 }
        #expect(mutated.violations.isEmpty)
        mutated.acceptance[rrsw].value = optimum - 0.2 + 0.1
        #expect(mutated.violations.map(\.verifier) == ["rrsw"])
        // 200 sampled tuples all accepted with certainty (standard error 0) are consistent with α* = 1 − 10⁻⁹ —
        // a real node of the pinned pair at T = 0.7 — but not with α* = 0.9.
        mutated = bounds
        mutated.acceptance[rrsw].method = .monteCarlo(samples: 200, standardError: 0)
        mutated.acceptance[rrsw].value = 1
        mutated.optimal = mutated.optimal.map { $0.name == "withoutReplacement" ? ($0.name, 1 - 1.1e-9) : $0 }
        #expect(mutated.violations.isEmpty)
        mutated.optimal = mutated.optimal.map { $0.name == "withoutReplacement" ? ($0.name, 0.9) : $0 }
        #expect(mutated.violations.map(\.verifier) == ["rrsw"])
        // SpecHub is bounded by the greedy law's α* (the same law at two drafts), K-SEQ by the independent law's.
        mutated = bounds
        let specHub = try #require(mutated.acceptance.firstIndex { $0.name == "spechub" })
        let greedyOptimum = try #require(bounds.optimal.first { $0.name == "greedy" }).value
        mutated.acceptance[specHub].value = greedyOptimum + 1e-6
        #expect(mutated.violations.map(\.verifier) == ["spechub"])
        mutated = bounds
        let kseq = try #require(mutated.acceptance.firstIndex { $0.name == "kseq" })
        let independent = try #require(bounds.optimal.first { $0.name == "withReplacement" }).value
        mutated.acceptance[kseq].value = independent + 1e-6
        #expect(mutated.violations.map(\.verifier) == ["kseq"])
    }

    @Test func guardedStandardErrorIsTheErrorWithTwoMoreValues() {
        var random = SplitMix64(seed: 5)
        for (count, spread) in [(200, 0.0), (200, 0.3), (37, 1.0), (2, 0.5)] {
            let values = (0..<count).map { _ in
                min(1, max(0, 0.7 + spread * (Double(random.next() % 1000) / 1000 - 0.5)))
            }
            func meanAndError(_ xs: [Double]) -> (Double, Double) {
                let mean = xs.reduce(0, +) / Double(xs.count)
                let variance = xs.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(xs.count - 1)
                return (mean, (variance / Double(xs.count)).squareRoot())
            }
            let (mean, error) = meanAndError(values)
            let (_, expected) = meanAndError(values + [0, 1])
            let got = NodeBounds.guardedStandardError(mean: mean, standardError: error, samples: count)
            #expect(abs(got - expected) <= 1e-12, "\(count) values, spread \(spread): \(got) vs \(expected)")
        }
    }
}
