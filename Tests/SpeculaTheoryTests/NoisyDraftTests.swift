import SpeculaTheory
import SpeculaVerify
import Testing

/// The noisy draft of the acceptance bench's weaker-draft axis: a distribution again, with the draft's zeros kept,
/// the same for the same seed, the draft itself at σ = 0, and weaker (further from the target it was near, its
/// favourite token moved) as σ grows.
@Suite("Noisy draft")
struct NoisyDraftTests {
    @Test func itIsADistributionWithTheDraftsZerosKept() {
        let q: [Double] = [0.5, 0, 0.3, 0.15, 0, 0.05]
        for sigma in [0.5, 1, 3] {
            let noisy = NoisyDraft.perturb(q, sigma: sigma, seed: 7)
            #expect(abs(noisy.reduce(0, +) - 1) < 1e-12)
            #expect(noisy[1] == 0 && noisy[4] == 0)
            #expect(noisy.allSatisfy { $0 >= 0 })
            #expect(noisy == NoisyDraft.perturb(q, sigma: sigma, seed: 7))
            #expect(noisy != NoisyDraft.perturb(q, sigma: sigma, seed: 8))
        }
        #expect(NoisyDraft.perturb(q, sigma: 0, seed: 7) == q)
    }

    /// On the synthetic pair at |V| = 4,096 (draft noise 0.3: a close draft), over 200 positions: the mean total
    /// variation to the target grows with σ, and at σ = 2 the draft's most likely token is no longer the target's
    /// at some positions where it was.
    @Test func moreNoiseMakesAWeakerDraft() throws {
        var distances: [Double] = []
        var moved = 0
        for sigma in [0.0, 0.5, 1, 2] {
            var total = 0.0
            for seed in 0..<200 {
                let (p, q) = try SyntheticPair.make(vocabularySize: 4096, seed: UInt64(seed), draftNoise: 0.3)
                let noisy = NoisyDraft.perturb(q, sigma: sigma, seed: UInt64(1000 + seed))
                total += zip(p, noisy).reduce(0) { $0 + abs($1.0 - $1.1) } / 2
                if sigma == 2, Self.argmax(q) == Self.argmax(p), Self.argmax(noisy) != Self.argmax(p) { moved += 1 }
            }
            distances.append(total / 200)
        }
        #expect(zip(distances, distances.dropFirst()).allSatisfy { $0 < $1 }, "\(distances)")
        #expect(moved > 0)
    }

    static func argmax(_ v: [Double]) -> Int { v.indices.max { v[$0] < v[$1] } ?? 0 }
}
