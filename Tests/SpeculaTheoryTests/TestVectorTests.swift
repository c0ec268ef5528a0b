import SpeculaTheory
import SpeculaVerify
import Testing

/// The test vectors of ALGORITHMS.md §8, typed in from the specification (exact rationals where it gives them).
@Suite("ALGORITHMS.md §8 test vectors")
struct TestVectorTests {
    struct Case: Sendable, CustomStringConvertible {
        var name: String
        var target: [Double]
        var draft: [Double]
        var count: Int
        var single: Double
        var rrs: Double
        var kseq: Double
        var rho: Double
        var optimalWith: Double
        var rrsw: Double
        var optimalWithout: Double
        var greedy: Double
        var specHub: Double?
        var description: String { "\(name), n=\(count)" }
    }

    static let a = ([0.5, 0.3, 0.2], [0.2, 0.3, 0.5])
    static let b = ([0.1, 0.2, 0.3, 0.4], [0.4, 0.3, 0.2, 0.1])

    static let cases: [Case] = [
        Case(
            name: "A", target: a.0, draft: a.1, count: 2, single: 0.7, rrs: 19.0 / 25, kseq: 0.791355, rho: 1.4568,
            optimalWith: 43.0 / 50, rrsw: 41.0 / 50, optimalWithout: 69.0 / 70, greedy: 9.0 / 10, specHub: 9.0 / 10),
        Case(
            name: "A", target: a.0, draft: a.1, count: 3, single: 0.7, rrs: 101.0 / 125, kseq: 0.858519, rho: 1.7926,
            optimalWith: 247.0 / 250, rrsw: 1, optimalWithout: 1, greedy: 1, specHub: nil),
        Case(
            name: "B", target: b.0, draft: b.1, count: 2, single: 0.6, rrs: 18.0 / 25, kseq: 0.75, rho: 1.5,
            optimalWith: 79.0 / 100, rrsw: 107.0 / 140, optimalWithout: 701.0 / 840, greedy: 23.0 / 30,
            specHub: 23.0 / 30),
        Case(
            name: "B", target: b.0, draft: b.1, count: 3, single: 0.6, rrs: 96.0 / 125, kseq: 0.793950, rho: 1.9395,
            optimalWith: 871.0 / 1000, rrsw: 14117.0 / 16800, optimalWithout: 1, greedy: 14.0 / 15, specHub: nil),
    ]

    @Test(arguments: cases)
    func closedForms(_ c: Case) throws {
        let tolerance = 1e-6
        #expect(abs(try AcceptanceRate.token(target: c.target, draft: c.draft) - c.single) < tolerance)
        #expect(abs(try AcceptanceRate.rrs(target: c.target, draft: c.draft, count: c.count) - c.rrs) < tolerance)
        let (kseq, rho) = try AcceptanceRate.kseq(target: c.target, draft: c.draft, count: c.count)
        #expect(abs(kseq - c.kseq) < tolerance, "K-SEQ \(kseq)")
        #expect(abs(rho - c.rho) < 1e-4, "ρ* \(rho)")
        #expect(
            abs(try OptimalAcceptance.withReplacement(target: c.target, draft: c.draft, count: c.count) - c.optimalWith)
                < tolerance)
        let without = try OptimalAcceptance.withoutReplacement(target: c.target, draft: c.draft, count: c.count)
        #expect(abs(without.value - c.optimalWithout) < tolerance, "OPT-wo \(without)")
        #expect(abs(try AcceptanceRate.greedy(target: c.target, draft: c.draft, count: c.count) - c.greedy) < tolerance)
        if let specHub = c.specHub {
            #expect(abs(try AcceptanceRate.specHub(target: c.target, draft: c.draft) - specHub) < tolerance)
            #expect(abs(try AcceptanceRate.rrswTwoDrafts(target: c.target, draft: c.draft) - c.rrsw) < tolerance)
        }
    }

    /// The same numbers by exact enumeration of each verifier's core, and α* by max-flow: to 1e-12 against the
    /// exact rationals (K-SEQ against its closed form with the same ρ*).
    @Test(arguments: cases)
    func enumeration(_ c: Case) throws {
        let tolerance = 1e-12
        func exact(_ verifier: any NodeVerifier) throws -> Double {
            try AcceptanceRate.exact(verifier: verifier, target: c.target, draft: c.draft, count: c.count)
        }
        #expect(abs(try exact(RRSVerifier()) - c.rrs) < tolerance)
        #expect(abs(try exact(RRSWithoutReplacementVerifier()) - c.rrsw) < tolerance)
        #expect(abs(try exact(GreedyVerifier()) - c.greedy) < tolerance)
        let kseqClosed = try AcceptanceRate.kseq(target: c.target, draft: c.draft, count: c.count).acceptance
        #expect(abs(try exact(KSEQVerifier()) - kseqClosed) < tolerance)
        if let specHub = c.specHub { #expect(abs(try exact(SpecHubVerifier()) - specHub) < tolerance) }
        let flowWith = try OptimalAcceptance.maxFlow(
            law: .independent, target: c.target, draft: c.draft, count: c.count)
        #expect(abs(flowWith - c.optimalWith) < tolerance)
        let flowWithout = try OptimalAcceptance.maxFlow(
            law: .withoutReplacement, target: c.target, draft: c.draft, count: c.count)
        #expect(abs(flowWithout - c.optimalWithout) < tolerance)
        #expect(abs(try exact(OptimalTransportVerifier(law: .withoutReplacement)) - c.optimalWithout) < tolerance)
    }

    /// §3's toy block: P = [1/3, 2/3], Q = [2/3, 1/3] at every prefix, γ = 2.
    @Test func blockToyExample() throws {
        let model: TreeTheory.ContextModel = { _ in ([1.0 / 3, 2.0 / 3], [2.0 / 3, 1.0 / 3]) }
        let token = try TreeTheory.expectedAccepted(model: model, vocabularySize: 2, length: 2, rule: .token)
        let block = try TreeTheory.expectedAccepted(model: model, vocabularySize: 2, length: 2, rule: .block)
        #expect(abs(token - 10.0 / 9) < 1e-12)
        #expect(abs(block - 11.0 / 9) < 1e-12)
        // The per-block table of §3.
        let p = [1.0 / 3, 2.0 / 3]
        let q = [2.0 / 3, 1.0 / 3]
        let rows: [([Int], [Double], [Double])] = [
            ([0, 0], [0.75, 0, 0.25], [0.5, 0.25, 0.25]),
            ([0, 1], [0, 0, 1], [0.5, 0, 0.5]),
            ([1, 0], [0, 0.5, 0.5], [0, 0.5, 0.5]),
            ([1, 1], [0, 0, 1], [0, 0, 1]),
        ]
        for (drafts, blockLaw, tokenLaw) in rows {
            let b = try TreeTheory.acceptedLengthLaw(target: [p, p, p], draft: [q, q], drafts: drafts, rule: .block)
            let t = try TreeTheory.acceptedLengthLaw(target: [p, p, p], draft: [q, q], drafts: drafts, rule: .token)
            #expect(zip(b, blockLaw).allSatisfy { abs($0 - $1) < 1e-12 }, "block \(drafts): \(b)")
            #expect(zip(t, tokenLaw).allSatisfy { abs($0 - $1) < 1e-12 }, "token \(drafts): \(t)")
        }
        // Every reachable correction in the example is b (token 1).
        let decision = try BlockVerifier.decide(target: [p, p, p], draft: [q, q], drafts: [0, 0])
        for accepted in 0..<2 where decision.acceptedLengthLaw[accepted] > 0 {
            let r = decision.residual(accepted: accepted)
            #expect(r[0] == 0 && r[1] > 0)
        }
        #expect(abs(TreeTheory.chainTokensPerStep(acceptance: 2.0 / 3, length: 2) - 19.0 / 9) < 1e-12)
    }
}
