import SpeculaTheory
import SpeculaVerify
import Testing

/// The candidate rule (fixed, distinct candidates copied from the text): exact by enumeration of its outcome law,
/// with the largest acceptance a candidate set allows.
@Suite("Candidate verification of fixed drafts")
struct CandidateVerifierTests {
    /// Every candidate list of 1…4 distinct tokens, in every order, over random targets (some with zeros and ties):
    /// the emitted token's law is the target's, and the acceptance is the target's mass on the set.
    @Test(arguments: 2...6)
    func emittedLawIsTheTargetAndAcceptanceTheSetsMass(size: Int) throws {
        var generator = SplitMix64(seed: UInt64(77 + size))
        func lists(_ prefix: [Int], _ length: Int) -> [[Int]] {
            if prefix.count == length { return [prefix] }
            return (0..<size).filter { !prefix.contains($0) }.flatMap { lists(prefix + [$0], length) }
        }
        let candidateLists = (1...min(4, size)).flatMap { lists([], $0) }
        var decision = NodeDecision()
        for _ in 0..<20 {
            let target = Fixture.distribution(size: size, using: &generator)
            for candidates in candidateLists {
                // The stored draft vector is ignored: give a wrong one on purpose.
                let unrelated = Fixture.distribution(size: size, using: &generator)
                try CandidateVerifier().decide(
                    target: target, draft: unrelated, drafts: candidates, into: &decision)
                let law = decision.outcomeLaw(target: target)
                var emitted = law.correction
                for (rank, token) in candidates.enumerated() { emitted[token] += law.acceptance[rank] }
                let error = Fixture.maxDifference(emitted, target)
                #expect(error <= Fixture.exactTolerance, "p=\(target) candidates=\(candidates): off by \(error)")
                let mass = candidates.map { target[$0] }.reduce(0, +)
                let accepted = law.acceptance.reduce(0, +)
                #expect(abs(accepted - mass) <= Fixture.exactTolerance)
                // Each candidate is emitted (as itself) exactly with its target probability.
                for (rank, token) in candidates.enumerated() {
                    #expect(abs(law.acceptance[rank] - target[token]) <= Fixture.exactTolerance)
                }
            }
        }
    }

    /// A candidate that holds all the mass is accepted surely; one with none never; the residual then never emits a
    /// candidate.
    @Test func edgeCases() throws {
        var decision = NodeDecision()
        try CandidateVerifier().decide(
            target: [0, 1, 0], draft: [1, 0, 0], drafts: [0, 1], into: &decision)
        let law = decision.outcomeLaw(target: [0, 1, 0])
        #expect(law.acceptance == [0, 1])
        #expect(law.correction.allSatisfy { $0 == 0 })
        #expect(decision.tests.map(\.passProbability) == [0, 1])
        var generator = SplitMix64(seed: 3)
        for _ in 0..<200 {
            #expect(decision.sample(target: [0, 1, 0], using: &generator) == .accepted(child: 1))
        }
    }

    /// A candidate listed twice, a token out of range and an empty list are errors that say what was wrong.
    @Test func badCandidatesAreRefused() {
        var decision = NodeDecision()
        let target = [0.5, 0.25, 0.25]
        #expect(throws: VerifyError.self) {
            try CandidateVerifier().decide(target: target, draft: target, drafts: [1, 1], into: &decision)
        }
        #expect(throws: VerifyError.self) {
            try CandidateVerifier().decide(target: target, draft: target, drafts: [3], into: &decision)
        }
        #expect(throws: VerifyError.self) {
            try CandidateVerifier().decide(target: target, draft: target, drafts: [], into: &decision)
        }
    }
}
