import Foundation
import SpeculaTheory
import SpeculaVerify
import Testing

/// End-to-end sampling (draft law sampler, verifier, residual sampler, RNG plumbing) against the target, with
/// fixed seeds (ALGORITHMS.md §7, statistical tests). Each bound's false-alarm probability is at most δ = 1e-6.
@Suite("Statistical: sampled verification follows the target")
struct StatisticalTests {
    static let delta = 1e-6

    struct Run {
        var counts: [Int]
        var accepted: Int
        var trials: Int
    }

    static func run(
        _ verifier: any NodeVerifier, target: [Double], draft: [Double], count: Int, trials: Int, seed: UInt64
    ) throws -> Run {
        var counts = [Int](repeating: 0, count: target.count)
        var accepted = 0
        var decision = NodeDecision()
        var drafting = SplitMix64(seed: seed)
        for trial in 0..<trials {
            // Verification uniforms independent of drafting randomness, keyed by (seed, trial, node) (§10.6).
            var verifying = CounterRandom(seed: seed, step: UInt64(trial), node: 0)
            let drafts = try verifier.draftLaw.sample(draft: draft, count: count, using: &drafting)
            switch try verifier.verify(
                target: target, draft: draft, drafts: drafts, decision: &decision, using: &verifying)
            {
            case .accepted(let child):
                counts[drafts[child]] += 1
                accepted += 1
            case .correction(let token):
                counts[token] += 1
            }
        }
        return Run(counts: counts, accepted: accepted, trials: trials)
    }

    /// Chi-square with merged cells (p-value ≥ δ), Bretagnolle–Huber–Carol TV bound on the merged cells, and the
    /// acceptance within five standard deviations of its exact value.
    static func check(
        _ run: Run, target: [Double], exactAcceptance: Double, acceptanceError: Double = 0, label: String
    ) {
        let (statistic, degrees) = chiSquare(counts: run.counts, expected: target, trials: run.trials)
        let pValue = chiSquareTail(statistic, degreesOfFreedom: degrees)
        #expect(pValue >= delta, "\(label): chi-square \(statistic) on \(degrees) df, p = \(pValue)")
        // TV between empirical and target over cells merged to ≥ 5 expected counts (k cells).
        var cells: [(observed: Double, expected: Double)] = []
        var observed = 0.0
        var expected = 0.0
        for index in target.indices {
            observed += Double(run.counts[index])
            expected += target[index]
            if expected * Double(run.trials) >= 5 {
                cells.append((observed / Double(run.trials), expected))
                observed = 0
                expected = 0
            }
        }
        cells.append((observed / Double(run.trials), expected))
        let tv = cells.map { abs($0.observed - $0.expected) }.reduce(0, +) / 2
        let bound = ((Double(cells.count) * log(2) + log(1 / delta)) / (2 * Double(run.trials))).squareRoot()
        #expect(tv <= bound, "\(label): TV \(tv) > \(bound) over \(cells.count) cells")
        let alpha = Double(run.accepted) / Double(run.trials)
        let sigma = (exactAcceptance * (1 - exactAcceptance) / Double(run.trials) + acceptanceError * acceptanceError)
            .squareRoot()
        #expect(abs(alpha - exactAcceptance) <= 5 * sigma + 1e-9, "\(label): α̂ \(alpha) vs α \(exactAcceptance)")
    }

    static func exactAcceptance(_ name: String, target: [Double], draft: [Double], count: Int) throws -> Double {
        switch name {
        case "token": return try AcceptanceRate.token(target: target, draft: draft)
        case "rrs": return try AcceptanceRate.rrs(target: target, draft: draft, count: count)
        case "kseq": return try AcceptanceRate.kseq(target: target, draft: draft, count: count).acceptance
        case "spechub": return try AcceptanceRate.specHub(target: target, draft: draft)
        case "greedy": return try AcceptanceRate.greedy(target: target, draft: draft, count: count)
        default: return try AcceptanceRate.rrswTwoDrafts(target: target, draft: draft)
        }
    }

    static let cases: [(any NodeVerifier, Int)] = [
        (TokenVerifier(), 1), (RRSVerifier(), 3), (RRSWithoutReplacementVerifier(), 2), (KSEQVerifier(), 3),
        (SpecHubVerifier(), 2), (GreedyVerifier(), 3),
    ]

    @Test(arguments: 0..<6)
    func vocabularyOfOneThousand(index: Int) throws {
        let (verifier, count) = Self.cases[index]
        let target = Fixture.peaked(size: 1000, seed: 11, shift: 1)
        let draft = Fixture.peaked(size: 1000, seed: 12, shift: 1)
        let run = try Self.run(verifier, target: target, draft: draft, count: count, trials: 200_000, seed: 5)
        let alpha = try Self.exactAcceptance(verifier.name, target: target, draft: draft, count: count)
        Self.check(run, target: target, exactAcceptance: alpha, label: "\(verifier.name) n=\(count), V=1000")
    }

    /// The Qwen vocabulary size, with LLM-like peaked vectors. Fewer trials (each costs O(n·|V|)); the bounds are
    /// on cells merged to ≥ 5 expected counts.
    @Test(arguments: 0..<6)
    func qwenVocabulary(index: Int) throws {
        let (verifier, count) = Self.cases[index]
        let target = Fixture.peaked(size: 151_936, seed: 21)
        let draft = Fixture.peaked(size: 151_936, seed: 22)
        let run = try Self.run(verifier, target: target, draft: draft, count: count, trials: 4000, seed: 6)
        // Every α here is exact (RRSw at two drafts by its O(|V| log |V|) form).
        let alpha = try Self.exactAcceptance(verifier.name, target: target, draft: draft, count: count)
        Self.check(run, target: target, exactAcceptance: alpha, label: "\(verifier.name) n=\(count), V=151936")
    }
}
