import Foundation
import SpeculaTheory
import SpeculaVerify
import Testing

/// Exact losslessness of every node verifier by enumeration (ALGORITHMS.md §7): every draft tuple with its
/// probability, the verifier's own deterministic core, the outcome law accumulated in Double.
@Suite("Node verifiers: exact losslessness by enumeration")
struct NodeExactnessTests {
    static let counts = [1, 2, 3]

    /// Draft counts each verifier serves at a node of `size` tokens.
    static func servedCounts(_ verifier: any NodeVerifier, size: Int) -> [Int] {
        counts.filter { verifier.supports(draftCount: $0) && !(verifier.draftLaw == .greedy && $0 > size) }
            .filter { _ in !(verifier.draftLaw == .hubPair && size < 2) }
    }

    static func checkLossless(_ verifier: any NodeVerifier, target: [Double], draft: [Double], count: Int) throws {
        let law = try ExactNode.law(verifier: verifier, target: target, draft: draft, count: count)
        let error = Fixture.maxDifference(law.emitted, target)
        #expect(
            error <= Fixture.exactTolerance,
            "\(verifier.name) n=\(count): emitted law off by \(error); p=\(target) q=\(draft)")
        #expect(law.acceptance <= 1 + 1e-12)
    }

    @Test(arguments: 1...4)
    func randomInstances(size: Int) throws {
        var generator = SplitMix64(seed: UInt64(1000 + size))
        for _ in 0..<40 {
            let target = Fixture.distribution(size: size, using: &generator)
            let draft = Fixture.distribution(size: size, using: &generator)
            for verifier in Fixture.verifiers {
                for count in Self.servedCounts(verifier, size: size) {
                    try Self.checkLossless(verifier, target: target, draft: draft, count: count)
                }
            }
        }
    }

    /// Vocabularies up to 6, as §7 asks for the node tests.
    @Test func sixTokenInstances() throws {
        var generator = SplitMix64(seed: 66)
        for _ in 0..<6 {
            let target = Fixture.distribution(size: 6, using: &generator)
            let draft = Fixture.distribution(size: 6, using: &generator)
            for verifier in Fixture.verifiers {
                for count in Self.servedCounts(verifier, size: 6) {
                    try Self.checkLossless(verifier, target: target, draft: draft, count: count)
                }
            }
        }
    }

    /// The corner cases §7 names: p = q, disjoint supports, zeros in p or q, ties, one-hot vectors.
    @Test(arguments: [
        ([0.5, 0.3, 0.2], [0.5, 0.3, 0.2]),
        ([0.5, 0.5, 0, 0], [0, 0, 0.5, 0.5]),
        ([0, 0.7, 0.3], [0.6, 0.4, 0]),
        ([1, 0, 0], [0.2, 0.3, 0.5]),
        ([0.2, 0.3, 0.5], [1, 0, 0]),
        ([0.25, 0.25, 0.25, 0.25], [0.4, 0.4, 0.1, 0.1]),
        ([0.5, 0.25, 0.25], [1, 0, 0]),
        ([0, 1], [1, 0]),
        ([0.1, 0.2, 0.3, 0.4], [0.4, 0.3, 0.2, 0.1]),
    ])
    func cornerCases(target: [Double], draft: [Double]) throws {
        for verifier in Fixture.verifiers {
            for count in Self.servedCounts(verifier, size: target.count) {
                try Self.checkLossless(verifier, target: target, draft: draft, count: count)
            }
        }
    }

    @Test func identicalDistributionsAcceptEverything() throws {
        let p = [0.5, 0.3, 0.15, 0.05]
        for verifier in Fixture.verifiers {
            for count in Self.servedCounts(verifier, size: p.count) {
                let law = try ExactNode.law(verifier: verifier, target: p, draft: p, count: count)
                #expect(abs(law.acceptance - 1) < 1e-12, "\(verifier.name) n=\(count): α = \(law.acceptance)")
            }
        }
    }

    /// §4.1: padding a short-support L2 node with a token outside supp q is not lossless; the law returns fewer
    /// drafts instead. This is the counterexample from the text, and the library's behaviour on it.
    @Test func shortSupportIsNeverPadded() throws {
        let target = [0.5, 0.25, 0.25]
        let draft = [1.0, 0, 0]
        #expect(DraftLaw.withoutReplacement.draftCount(requested: 2, draft: draft) == 1)
        var generator = SplitMix64(seed: 3)
        let drafts = try DraftLaw.withoutReplacement.sample(draft: draft, count: 2, using: &generator)
        #expect(drafts == [0])
        // The padded tuple (0, 1) would emit [.5, .5, 0]: RRSw refuses it as not drawn from its law.
        var decision = NodeDecision()
        #expect(throws: VerifyError.self) {
            try RRSWithoutReplacementVerifier().decide(target: target, draft: draft, drafts: [0, 1], into: &decision)
        }
        let law = try ExactNode.law(
            verifier: RRSWithoutReplacementVerifier(), target: target, draft: draft, count: 2)
        #expect(Fixture.maxDifference(law.emitted, target) < 1e-12)
    }

    /// §4.2: sorting children by token before testing breaks RRS. The exact enumeration must see the bias, which
    /// shows that the exactness test can fail.
    @Test func enumerationDetectsAnOrderBias() throws {
        struct SortedRRS: NodeVerifier {
            var name: String { "rrs-sorted" }
            var draftLaw: DraftLaw { .independent }
            func supports(draftCount count: Int) -> Bool { count >= 1 }
            func decide(target: [Double], draft: [Double], drafts: [Int], into decision: inout NodeDecision) throws {
                try RRSVerifier().decide(target: target, draft: draft, drafts: drafts.sorted(), into: &decision)
                decision.drafts = drafts.sorted()
            }
        }
        var generator = SplitMix64(seed: 5)
        var worst = 0.0
        for _ in 0..<50 {
            let target = Fixture.distribution(size: 3, using: &generator)
            let draft = Fixture.distribution(size: 3, using: &generator)
            let law = try ExactNode.law(verifier: SortedRRS(), target: target, draft: draft, count: 2)
            worst = max(worst, Fixture.maxDifference(law.emitted, target))
        }
        #expect(worst > 1e-3)
    }

    /// The sampling entry point runs the same core: the outcome for fixed uniforms matches the tests in order.
    @Test func samplingFollowsTheCore() throws {
        var decision = NodeDecision()
        let target = [0.5, 0.3, 0.2]
        let draft = [0.2, 0.3, 0.5]
        try RRSVerifier().decide(target: target, draft: draft, drafts: [2, 2], into: &decision)
        // First test: 0.2 vs 0.5 → pass 0.4. Residual after it: [1, 0, 0] (β = 0.7), and after the second test
        // still [1, 0, 0] as a law (the residual is kept unnormalised).
        #expect(decision.tests[0] == NodeTest(child: 0, numerator: 0.2, denominator: 0.5))
        #expect(abs(decision.tests[1].numerator) < 1e-15)
        let mass = decision.residual.reduce(0, +)
        #expect(Fixture.maxDifference(decision.residual.map { $0 / mass }, [1, 0, 0]) < 1e-15)
    }
}
