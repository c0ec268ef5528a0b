import SpeculaTheory
import SpeculaVerify
import Testing

/// The O(n log |V|) RRS-without-replacement tuple acceptance and sampler against the verifier's own O(n·|V|)
/// decision, the without-replacement law and exact enumeration.
@Suite("RRSw Monte Carlo by clipped sums")
struct RRSwMonteCarloTests {
    @Test func tupleAcceptanceEqualsTheVerifiersDecision() throws {
        var generator = SplitMix64(seed: 11)
        let verifier = RRSWithoutReplacementVerifier()
        var decision = NodeDecision()
        var compared = 0
        for size in [3, 5, 12, 40, 1000] {
            for seed in UInt64(0)..<12 {
                let (p, q) = NodeBoundsTests.pairs(size: size, seed: seed &* 31 &+ UInt64(size))
                let fast = try RRSwMonteCarlo(target: p, draft: q)
                for n in 1...4 {
                    for _ in 0..<10 {
                        let drafts = try DraftLaw.withoutReplacement.sample(draft: q, count: n, using: &generator)
                        try verifier.decide(target: p, draft: q, drafts: drafts, into: &decision)
                        let expected = decision.acceptanceProbability(target: p)
                        let got = fast.acceptance(of: drafts)
                        #expect(abs(got - expected) <= 1e-12, "size \(size), seed \(seed), drafts \(drafts)")
                        compared += 1
                    }
                }
            }
        }
        // LLM-like pairs at the full vocabulary, peaked and flat.
        for (seed, temperature) in [(UInt64(3), 0.3), (4, 1.0)] {
            let (p, q) = try SyntheticPair.make(vocabularySize: 151_936, seed: seed, temperature: temperature)
            let fast = try RRSwMonteCarlo(target: p, draft: q)
            for _ in 0..<5 {
                let drafts = try DraftLaw.withoutReplacement.sample(draft: q, count: 3, using: &generator)
                try verifier.decide(target: p, draft: q, drafts: drafts, into: &decision)
                let expected = decision.acceptanceProbability(target: p)
                #expect(abs(fast.acceptance(of: drafts) - expected) <= 1e-12, "T \(temperature), drafts \(drafts)")
                compared += 1
            }
        }
        #expect(compared == 5 * 12 * 4 * 10 + 10)
    }

    @Test func samplerDrawsTheWithoutReplacementLaw() throws {
        // Five tokens, one with no mass: every ordered triple's frequency against
        // q(a)·q(b)/(1 − q(a))·q(c)/(1 − q(a) − q(b)), each within five binomial standard errors.
        let q = [0.5, 0.0, 0.3, 0.15, 0.05]
        let p = [0.2, 0.2, 0.2, 0.2, 0.2]
        let fast = try RRSwMonteCarlo(target: p, draft: q)
        var generator = SplitMix64(seed: 7)
        let trials = 60_000
        var counts: [[Int]: Int] = [:]
        for _ in 0..<trials { counts[fast.sample(count: 3, using: &generator), default: 0] += 1 }
        var cells = 0
        for a in q.indices where q[a] > 0 {
            for b in q.indices where q[b] > 0 && b != a {
                for c in q.indices where q[c] > 0 && c != a && c != b {
                    let law = q[a] * q[b] / (1 - q[a]) * q[c] / (1 - q[a] - q[b])
                    let frequency = Double(counts[[a, b, c], default: 0]) / Double(trials)
                    let error = (law * (1 - law) / Double(trials)).squareRoot()
                    #expect(abs(frequency - law) <= 5 * error, "\([a, b, c]): \(frequency) vs \(law)")
                    cells += 1
                }
            }
        }
        #expect(cells == 24)
        #expect(counts.keys.allSatisfy { $0.count == 3 && Set($0).count == 3 && !$0.contains(1) })
        // Asking for more drafts than the support holds gives the whole support.
        #expect(Set(fast.sample(count: 6, using: &generator)) == [0, 2, 3, 4])
    }

    @Test func estimateAgreesWithEnumeration() throws {
        for seed in UInt64(0)..<6 {
            let (p, q) = NodeBoundsTests.pairs(size: 8, seed: seed &+ 500)
            for n in [3, 4] {
                let exact = try AcceptanceRate.exact(
                    verifier: RRSWithoutReplacementVerifier(), target: p, draft: q, count: n)
                let estimate = try RRSwMonteCarlo(target: p, draft: q).estimate(count: n, samples: 20_000, seed: seed)
                #expect(
                    abs(estimate.mean - exact) <= 4.5 * estimate.standardError + 1e-12,
                    "seed \(seed), n \(n): \(estimate.mean) ± \(estimate.standardError) vs \(exact)")
            }
        }
    }
}
