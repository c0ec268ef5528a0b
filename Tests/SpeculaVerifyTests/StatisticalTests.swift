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

    /// `leak` plants a bug for the power test: with that probability a trial emits its first draft untested.
    static func run(
        _ verifier: any NodeVerifier, target: [Double], draft: [Double], count: Int, trials: Int, seed: UInt64,
        leak: Double = 0
    ) throws -> Run {
        var counts = [Int](repeating: 0, count: target.count)
        var accepted = 0
        var decision = NodeDecision()
        var drafting = SplitMix64(seed: seed)
        for trial in 0..<trials {
            // Verification uniforms independent of drafting randomness, keyed by (seed, trial, node) (§10.6).
            var verifying = CounterRandom(seed: seed, step: UInt64(trial), node: 0)
            let drafts = try verifier.draftLaw.sample(draft: draft, count: count, using: &drafting)
            if leak > 0 && drafting.nextUniform() < leak {
                counts[drafts[0]] += 1
                continue
            }
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

    // MARK: The full vocabulary, with power

    /// The Qwen vocabulary with LLM-like peaked vectors (the draft's mode is a tail token of the target, as when the
    /// two models disagree).
    static let fullTarget = Fixture.peaked(size: 151_936, seed: 21)
    static let fullDraft = Fixture.peaked(size: 151_936, seed: 22)
    /// Trials per verifier at the full vocabulary and bins for its test: with these a 1 % total-variation error
    /// between bins is caught with probability ≥ 0.99 (``powerAtOnePercent()`` checks it). The 24-bin test needs
    /// about 136,000 trials per verifier for that (its noncentrality grows with trials × distance²), and any test
    /// at least 68,000: 1 % moved onto the head token is a χ² divergence of 7.3e-4, and (z(1e-6) + z(0.99))² /
    /// 7.3e-4 ≈ 68,000. At about 0.5 ms a trial that is 7–8 CPU minutes for the six verifiers.
    /// `SPECULA_STATISTICS=3%` in the environment runs the same tests at 3 % (20,000 trials per verifier, about a
    /// minute), for a quick check while working; every run prints each test's statistic.
    static let quick = ProcessInfo.processInfo.environment["SPECULA_STATISTICS"] == "3%"
    static let fullTrials = quick ? 20_000 : 150_000
    static let detectable = quick ? 0.03 : 0.01
    static let binCount = 24

    /// Ids in bins of about equal target mass: sorted by target probability, largest first, a bin closed once it holds
    /// 1/k of the mass, so an id heavier than that is a bin of its own. Bins by id (the test this replaced) put the
    /// few ids that carry the mass in bins with hundreds of others and gave the test little power; bins by mass give
    /// each head token its own cell and leave the tail, where a leak of mass would go, in cells of their own too.
    static func massBins(_ target: [Double], count k: Int) -> (bin: [Int], mass: [Double]) {
        let order = target.indices.sorted { target[$0] != target[$1] ? target[$0] > target[$1] : $0 < $1 }
        var bin = [Int](repeating: 0, count: target.count)
        var mass: [Double] = [0]
        for id in order {
            if mass[mass.count - 1] >= 1 / Double(k) { mass.append(0) }
            bin[id] = mass.count - 1
            mass[mass.count - 1] += target[id]
        }
        return (bin, mass)
    }

    /// Pearson's chi-square of binned counts against binned masses, and its p-value.
    static func binnedTest(counts: [Double], mass: [Double], trials: Int) -> (statistic: Double, pValue: Double) {
        let n = Double(trials)
        let statistic = zip(counts, mass).reduce(0) { $0 + ($1.0 - n * $1.1) * ($1.0 - n * $1.1) / (n * $1.1) }
        return (statistic, chiSquareTail(statistic, degreesOfFreedom: mass.count - 1))
    }

    /// Per-id values (counts or probabilities) summed per bin.
    static func binned(_ values: [Double], bins: [Int], binCount: Int) -> [Double] {
        var binned = [Double](repeating: 0, count: binCount)
        for (id, value) in values.enumerated() { binned[bins[id]] += value }
        return binned
    }

    /// How often the binned test at `trials` rejects (p < δ) samples drawn from `alternative` (bin masses): the
    /// share of `repetitions` simulated multinomial count vectors it rejects.
    static func power(mass: [Double], alternative: [Double], trials: Int, repetitions: Int, seed: UInt64) -> Double {
        var cumulative: [Double] = []
        var total = 0.0
        for m in alternative {
            total += m
            cumulative.append(total)
        }
        var generator = SplitMix64(seed: seed)
        var rejected = 0
        for _ in 0..<repetitions {
            var counts = [Double](repeating: 0, count: mass.count)
            for _ in 0..<trials {
                let u = generator.nextUniform() * total
                var low = 0
                var high = cumulative.count - 1
                while low < high {
                    let middle = (low + high) / 2
                    if cumulative[middle] > u { high = middle } else { low = middle + 1 }
                }
                counts[low] += 1
            }
            if binnedTest(counts: counts, mass: mass, trials: trials).pValue < delta { rejected += 1 }
        }
        return Double(rejected) / Double(repetitions)
    }

    /// `target` moved toward `other` until the total variation from `target` is exactly `distance`.
    static func moved(_ target: [Double], toward other: [Double], distance: Double) -> [Double] {
        let w = distance / Probability.totalVariation(target, other)
        return zip(target, other).map { (1 - w) * $0 + w * $1 }
    }

    /// Each verifier end to end at the full vocabulary: the output's law over mass bins (chi-square, p ≥ δ) and the
    /// acceptance within five standard errors of its exact value.
    @Test(arguments: 0..<6)
    func fullVocabularyByMassBins(index: Int) throws {
        let (verifier, count) = Self.cases[index]
        let (bins, mass) = Self.massBins(Self.fullTarget, count: Self.binCount)
        let run = try Self.run(
            verifier, target: Self.fullTarget, draft: Self.fullDraft, count: count, trials: Self.fullTrials, seed: 6)
        let counts = Self.binned(run.counts.map(Double.init), bins: bins, binCount: mass.count)
        let (statistic, pValue) = Self.binnedTest(counts: counts, mass: mass, trials: run.trials)
        print(
            "statistics \(verifier.name) n=\(count): \(run.trials) trials, chi-square \(statistic) on "
                + "\(mass.count - 1) df, p = \(pValue), α̂ \(Double(run.accepted) / Double(run.trials))")
        #expect(
            pValue >= Self.delta,
            "\(verifier.name) n=\(count): chi-square \(statistic) on \(mass.count - 1) df over mass bins, p = \(pValue)"
        )
        // Every α here is exact (RRSw at two drafts by its O(|V| log |V|) form).
        let alpha = try Self.exactAcceptance(
            verifier.name, target: Self.fullTarget, draft: Self.fullDraft, count: count)
        let measured = Double(run.accepted) / Double(run.trials)
        let sigma = (alpha * (1 - alpha) / Double(run.trials)).squareRoot()
        #expect(abs(measured - alpha) <= 5 * sigma, "\(verifier.name) n=\(count): α̂ \(measured) vs α \(alpha)")
    }

    /// The test above has power: at its trial count, output laws at total variation 1 % from the target — mass leaked
    /// toward the draft, toward the uniform law (the tail), or toward the target's own head (a sharpened law) — are
    /// rejected at least 99 % of the time (simulated count vectors through the same binned test); and a real
    /// pipeline with that bug (a token verifier that accepts its draft untested in a share of trials, chosen to make
    /// the error exactly 1 % in total variation) is rejected end to end.
    @Test func powerAtOnePercent() throws {
        let target = Self.fullTarget
        let (bins, mass) = Self.massBins(target, count: Self.binCount)
        let uniform = [Double](repeating: 1 / Double(target.count), count: target.count)
        let head = target.indices.max { target[$0] < target[$1] }!
        let sharpened = target.indices.map { $0 == head ? 1.0 : 0.0 }
        for (name, other) in [("draft", Self.fullDraft), ("uniform", uniform), ("sharpened", sharpened)] {
            let alternative = Self.moved(target, toward: other, distance: Self.detectable)
            let binned = Self.binned(alternative, bins: bins, binCount: mass.count)
            let power = Self.power(
                mass: mass, alternative: binned, trials: Self.fullTrials, repetitions: 200, seed: 9)
            print("statistics power toward \(name) at \(Self.detectable): \(power)")
            #expect(
                power >= 0.99, "toward \(name): the test rejects a \(Self.detectable) error only \(power) of the time")
        }
        // The bug end to end: accept the draft without its test with probability w, so the output law is
        // (1 − w)·p + w·q, at total variation w·TV(p, q) = 1 %.
        let w = Self.detectable / Probability.totalVariation(target, Self.fullDraft)
        let run = try Self.run(
            TokenVerifier(), target: target, draft: Self.fullDraft, count: 1, trials: Self.fullTrials, seed: 13, leak: w
        )
        let counts = Self.binned(run.counts.map(Double.init), bins: bins, binCount: mass.count)
        let (statistic, pValue) = Self.binnedTest(counts: counts, mass: mass, trials: Self.fullTrials)
        print("statistics leak of \(Self.detectable): chi-square \(statistic), p = \(pValue)")
        #expect(
            pValue < Self.delta,
            "a \(Self.detectable) leak toward the draft passed: chi-square \(statistic), p = \(pValue)")
    }
}
