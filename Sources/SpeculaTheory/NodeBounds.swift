import SpeculaVerify

/// Every verifier's expected acceptance and the optimal acceptance α* of each draft law at one node (one target
/// distribution, one draft distribution, `n` drafts), each value labelled with how it was obtained; and the check
/// that no verifier exceeds the α* of its own draft law beyond the precision of its value.
public struct NodeBounds: Sendable {
    /// How a value was obtained.
    public enum Method: Sendable, Equatable {
        case closedForm
        /// By enumerating every draft tuple (small vocabularies).
        case enumeration
        /// A seeded Monte-Carlo mean with its standard error.
        case monteCarlo(samples: Int, standardError: Double)

    }

    public struct Value: Sendable, Equatable {
        public var name: String
        public var value: Double
        public var method: Method
    }

    public var vocabularySize: Int
    public var drafts: Int
    /// Verifiers in a fixed order: token, rrs, rrsw, kseq, spechub (n = 2), greedy (n ≥ 2).
    public var acceptance: [Value] = []
    /// α* of the draft laws: `withReplacement`, `withoutReplacement` (when an exact method exists), `greedy`.
    public var optimal: [(name: String, value: Double)] = []
    /// K-SEQ's ρ*, and the exact method of α* without replacement (or why it is undefined).
    public var kseqRho = 0.0
    public var withoutReplacementMethod = ""

    /// The largest vocabulary RRSw's acceptance is enumerated over (beyond two drafts).
    public static let enumerationLimit = 12

    public init(target p: [Double], draft q: [Double], drafts n: Int, samples: Int, seed: UInt64) throws {
        vocabularySize = p.count
        drafts = n
        acceptance.append(
            Value(name: "token", value: try AcceptanceRate.token(target: p, draft: q), method: .closedForm))
        acceptance.append(
            Value(name: "rrs", value: try AcceptanceRate.rrs(target: p, draft: q, count: n), method: .closedForm))
        let support = q.filter { $0 > 0 }.count
        var enumerationSize = 1.0
        for _ in 0..<min(n, support) { enumerationSize *= Double(support) }
        if n == 1 {
            acceptance.append(
                Value(name: "rrsw", value: try AcceptanceRate.token(target: p, draft: q), method: .closedForm))
        } else if n == 2 {
            acceptance.append(
                Value(name: "rrsw", value: try AcceptanceRate.rrswTwoDrafts(target: p, draft: q), method: .closedForm))
        } else if p.count <= Self.enumerationLimit && enumerationSize <= Double(ExactNode.tupleLimit) {
            let value = try AcceptanceRate.exact(
                verifier: RRSWithoutReplacementVerifier(), target: p, draft: q, count: n)
            acceptance.append(Value(name: "rrsw", value: value, method: .enumeration))
        } else {
            let estimate = try RRSwMonteCarlo(target: p, draft: q).estimate(count: n, samples: samples, seed: seed)
            acceptance.append(
                Value(
                    name: "rrsw", value: estimate.mean,
                    method: .monteCarlo(samples: samples, standardError: estimate.standardError)))
        }
        let kseq = try AcceptanceRate.kseq(target: p, draft: q, count: n)
        acceptance.append(Value(name: "kseq", value: kseq.acceptance, method: .closedForm))
        kseqRho = kseq.rho
        if n == 2 && p.count >= 2 {
            acceptance.append(
                Value(name: "spechub", value: try AcceptanceRate.specHub(target: p, draft: q), method: .closedForm))
        }
        let greedyDefined = n >= 2 && n <= p.count
        if greedyDefined {
            acceptance.append(
                Value(
                    name: "greedy", value: try AcceptanceRate.greedy(target: p, draft: q, count: n),
                    method: .closedForm))
        }
        optimal.append(("withReplacement", try OptimalAcceptance.withReplacement(target: p, draft: q, count: n)))
        do {
            let without = try OptimalAcceptance.withoutReplacement(target: p, draft: q, count: n)
            optimal.append(("withoutReplacement", without.value))
            withoutReplacementMethod = without.method.rawValue
        } catch VerifyError.tooLarge(let what, _, _) {
            withoutReplacementMethod = "undefined: no exact method for n = \(n) (\(what))"
        }
        if greedyDefined { optimal.append(("greedy", try OptimalAcceptance.greedy(target: p, draft: q, count: n))) }
    }

    /// The draft law each verifier's drafts follow, and so the α* it is bounded by: RRS and K-SEQ draw
    /// independently (L1), RRSw without replacement (L2), SpecHub's hub pair is the greedy law at two drafts (L3 =
    /// L4 for n = 2), the greedy verifier the greedy law. Token verification uses one draft, whose α* is at most
    /// the independent law's with n drafts.
    public static let lawOfVerifier = [
        "token": "withReplacement", "rrs": "withReplacement", "kseq": "withReplacement",
        "rrsw": "withoutReplacement", "greedy": "greedy", "spechub": "greedy",
    ]

    /// The violations that survive a second look. A Monte-Carlo value above its α* beyond four of its standard
    /// errors can be a false alarm: where almost every draft tuple is accepted with certainty and a few rare ones
    /// much less, a mean of a few thousand tuples that meets too few of the rare ones lies further above the truth
    /// than its own standard error says. Each flagged Monte-Carlo value is estimated again with `factor` times its
    /// samples (seed `seed`) and is a violation only if that estimate is above its α* too. Exact values are never
    /// re-estimated, and a wrong α* or a wrong estimator is flagged at both sample sizes.
    public func confirmedViolations(target p: [Double], draft q: [Double], factor: Int = 100, seed: UInt64) throws
        -> [(verifier: String, acceptance: Double, optimum: Double)]
    {
        let flagged = violations
        var refined = self
        var changed = false
        for (index, entry) in acceptance.enumerated() where entry.name == "rrsw" {
            guard case .monteCarlo(let samples, _) = entry.method, flagged.contains(where: { $0.verifier == "rrsw" })
            else { continue }
            let count = samples * max(1, factor)
            let estimate = try RRSwMonteCarlo(target: p, draft: q).estimate(count: drafts, samples: count, seed: seed)
            refined.acceptance[index] = Value(
                name: entry.name, value: estimate.mean,
                method: .monteCarlo(samples: count, standardError: estimate.standardError))
            changed = true
        }
        return changed ? refined.violations : flagged
    }

    /// The slack a value is allowed above its α*: rounding (1e-9) for exact values, four of its own standard errors
    /// for a Monte-Carlo estimate — the standard error of its samples with two more, one at 0 and one at 1
    /// (``guardedStandardError(mean:standardError:samples:)``).
    public static func slack(_ method: Method, value: Double) -> Double {
        if case .monteCarlo(let samples, let standardError) = method {
            return 1e-9 + 4 * guardedStandardError(mean: value, standardError: standardError, samples: samples)
        }
        return 1e-9
    }

    /// The standard error of a mean of `samples` values in [0, 1] (the given mean and standard error) after adding
    /// one value at 0 and one at 1. Samples that are all alike have a standard error of 0, yet a rare outcome none
    /// of them met can still move the mean: a node where every one of 200 sampled draft tuples is accepted with
    /// certainty, while α* = 1 − 10⁻⁹, would otherwise fail a check with no slack at all. The two added values bound
    /// the error of such a sample by about 1/`samples` and change a spread sample's error by about 1/`samples`
    /// of itself.
    public static func guardedStandardError(mean: Double, standardError: Double, samples: Int) -> Double {
        let n = Double(samples)
        let sum = mean * n + 1
        let squares = (n - 1) * standardError * standardError * n + n * mean * mean + 1
        let count = n + 2
        let guardedMean = sum / count
        let variance = max(0, (squares - count * guardedMean * guardedMean) / (count - 1))
        return (variance / count).squareRoot()
    }

    /// Every verifier whose acceptance exceeds the α* of its own draft law by more than its precision allows, as
    /// `(verifier, acceptance, α*)`. Not empty only if a verifier or an α* is wrong.
    public var violations: [(verifier: String, acceptance: Double, optimum: Double)] {
        let bounds = Dictionary(optimal.map { ($0.name, $0.value) }, uniquingKeysWith: { a, _ in a })
        return acceptance.compactMap { entry in
            guard let law = Self.lawOfVerifier[entry.name], let limit = bounds[law] else { return nil }
            return entry.value > limit + Self.slack(entry.method, value: entry.value)
                ? (entry.name, entry.value, limit) : nil
        }
    }
}
