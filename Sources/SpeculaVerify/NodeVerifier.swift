/// One acceptance test of a node verifier: accept `child` iff `u · denominator < numerator` for a fresh uniform
/// `u ∈ [0, 1)`, that is with probability `min(1, numerator / denominator)` (ALGORITHMS.md §4.2, §10.2).
public struct NodeTest: Sendable, Equatable {
    /// The child rank (0-based) that the test accepts.
    public var child: Int
    public var numerator: Double
    public var denominator: Double

    public init(child: Int, numerator: Double, denominator: Double) {
        self.child = child
        self.numerator = numerator
        self.denominator = denominator
    }

    /// The probability that the test passes: `min(1, num/den)`; with `den ≤ 0` the strict test passes iff
    /// `num > 0`.
    public var passProbability: Double {
        if denominator <= 0 { return numerator > 0 ? 1 : 0 }
        return min(1, max(0, numerator / denominator))
    }
}

/// What happened at one node: a draft child was accepted, or a correction token was sampled from the residual.
public enum NodeOutcome: Sendable, Equatable {
    /// The child of this rank (0-based) was accepted; its token is emitted and the walk continues below it.
    case accepted(child: Int)
    /// Every test failed and the residual produced a token that no child holds.
    case correction(token: Int)
}

/// The deterministic core of a node verifier for one draft tuple: an ordered list of tests and an unnormalised
/// residual `r`. The sampler runs the tests in order; if all fail it draws `y ~ norm(r)`; if `y` is the token of a
/// child, the lowest-rank such child is accepted, else `y` is a correction (§4.2).
///
/// It also carries the scratch buffers verifiers reuse, so that a verifier called again with the same vocabulary
/// size allocates nothing.
public struct NodeDecision: Sendable {
    public var tests: [NodeTest] = []
    /// `r`, unnormalised, length |V|. When its mass is below ``Probability/negligibleMass`` the sampler uses the
    /// target instead (that branch is reachable only by round-off, §10.4).
    public var residual: [Double] = []
    /// The draft tokens the decision was made for, in child rank.
    public var drafts: [Int] = []

    /// The residual's mass when the verifier had it from building the residual (so the sampler needs no pass to
    /// sum it), else nil. Cleared by ``reset(vocabularySize:drafts:)``.
    package var residualTotal: Double? = nil

    package var scratch: [Double] = []
    package var scratch2: [Double] = []
    package var fixedTokens: [Int] = []
    package var cells: [Double] = []

    public init() {}

    /// Prepares the buffers for a vocabulary of `size` without reallocating when the size is unchanged.
    package mutating func reset(vocabularySize size: Int, drafts: [Int]) {
        tests.removeAll(keepingCapacity: true)
        residualTotal = nil
        self.drafts.removeAll(keepingCapacity: true)
        self.drafts.append(contentsOf: drafts)
        if residual.count != size { residual = [Double](repeating: 0, count: size) }
        if scratch.count != size { scratch = [Double](repeating: 0, count: size) }
        if scratch2.count != size { scratch2 = [Double](repeating: 0, count: size) }
    }

    /// The lowest child rank holding `token`, if any.
    public func child(holding token: Int) -> Int? { drafts.firstIndex(of: token) }

    /// The exact law of the outcome: `acceptance[k]` = P(child k is accepted), `correction[y]` = P(y is emitted as
    /// a correction). Used by the exact tests and the theory layer; it mirrors ``sample(target:using:)`` exactly.
    /// - Complexity: O(|tests| + |V|).
    public func outcomeLaw(target: [Double]) -> (acceptance: [Double], correction: [Double]) {
        var acceptance = [Double](repeating: 0, count: drafts.count)
        var correction = [Double](repeating: 0, count: residual.count)
        var reach = 1.0
        for test in tests {
            let pass = test.passProbability
            acceptance[test.child] += reach * pass
            reach *= 1 - pass
        }
        if reach > 0 {
            let source = residualMass > Probability.negligibleMass ? residual : target
            let mass = Probability.sum(source)
            for token in source.indices where source[token] > 0 {
                let probability = reach * source[token] / mass
                if let child = child(holding: token) {
                    acceptance[child] += probability
                } else {
                    correction[token] += probability
                }
            }
        }
        return (acceptance, correction)
    }

    /// The probability that one of the drafts is emitted (the node's acceptance for this tuple).
    public func acceptanceProbability(target: [Double]) -> Double {
        outcomeLaw(target: target).acceptance.reduce(0, +)
    }

    var residualMass: Double { residualTotal ?? Probability.sum(residual) }

    /// Runs the tests with fresh uniforms from `generator`, then samples the residual (§4.2).
    /// - Complexity: O(|tests|), plus O(|V|) when every test fails.
    public func sample(target: [Double], using generator: inout some RandomSource) -> NodeOutcome {
        for test in tests where generator.bernoulli(test.numerator, over: test.denominator) {
            return .accepted(child: test.child)
        }
        let mass = residualMass
        let token: Int?
        if mass > Probability.negligibleMass {
            token = generator.categorical(residual, total: mass)
        } else {
            token = generator.categorical(target)
        }
        guard let token else { preconditionFailure("the target distribution has no mass (validated before)") }
        if let child = child(holding: token) { return .accepted(child: child) }
        return .correction(token: token)
    }
}

/// A rule that decides which draft at a node to keep, lossless for its draft law.
///
/// Every verifier exposes its deterministic core (``decide(target:draft:drafts:into:)``: the tests and the
/// residual for one draft tuple) beside the sampling entry point ``verify(target:draft:drafts:decision:using:)``,
/// which runs that same core. Randomness goes in as an argument.
public protocol NodeVerifier: Sendable {
    /// A short name used in errors, telemetry and the CLI (`token`, `rrs`, `rrsw`, `kseq`, `spechub`, `greedy`,
    /// `otm`).
    var name: String { get }
    /// The draft law the drafts must come from.
    var draftLaw: DraftLaw { get }
    /// Whether the verifier serves a node with `count` drafts.
    func supports(draftCount count: Int) -> Bool
    /// Fills `decision` with the tests and the residual for `drafts` (tokens in child rank, drawn from `draft` by
    /// ``draftLaw``). Validates its input and throws ``VerifyError`` on bad input.
    func decide(target: [Double], draft: [Double], drafts: [Int], into decision: inout NodeDecision) throws
}

extension NodeVerifier {
    /// Decides and samples in one call: the sampling entry point.
    public func verify(
        target: [Double], draft: [Double], drafts: [Int], decision: inout NodeDecision,
        using generator: inout some RandomSource
    ) throws -> NodeOutcome {
        try decide(target: target, draft: draft, drafts: drafts, into: &decision)
        return decision.sample(target: target, using: &generator)
    }

    /// The common input checks: vectors, draft count, token range.
    func validate(target: [Double], draft: [Double], drafts: [Int]) throws {
        try Probability.validatePair(target: target, draft: draft)
        if !supports(draftCount: drafts.count) {
            throw VerifyError.unsupportedDraftCount(verifier: name, count: drafts.count, supported: supportedCounts)
        }
        for token in drafts where token < 0 || token >= target.count {
            throw VerifyError.tokenOutOfRange(what: "\(name) drafts", token: token, vocabularySize: target.count)
        }
    }

    var supportedCounts: String {
        let counts = (1...8).filter { supports(draftCount: $0) }
        if counts == [1] { return "n = 1" }
        if counts == [2] { return "n = 2" }
        if let first = counts.first { return "n ≥ \(first)" }
        return "none"
    }
}
