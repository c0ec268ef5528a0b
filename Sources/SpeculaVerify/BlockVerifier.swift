/// Block verification (Sun, Mendlovic, Leviathan, Aharoni, Ro, Beirami, Suresh, ICLR 2025, arXiv:2403.10444) for a
/// chain of `γ` drafts.
///
/// Weights `w_i = min(1, w_{i−1}·P_{i−1}(X_i)/Q_{i−1}(X_i))` run along the drafted path; position `i < γ` passes
/// with probability `h_i = Z_i/(Z_i + 1 − w_i)`, `Z_i = Σ (w_i·P_i − Q_i)₊`, and the last with `h_γ = w_γ`. The
/// number kept, `τ`, is the last index that passes; the correction is drawn from `norm((w_τ·P_τ − Q_τ)₊)`, or the
/// bonus from `P_γ` when `τ = γ`. Among verifiers that see only the drafted path it maximises expected tokens per
/// step, and it is never worse than token verification (ALGORITHMS.md §3).
///
/// - Complexity: O(γ·|V|): one reduction per position, and one residual for the chosen `τ`.
public struct BlockDecision: Sendable {
    /// `w_0 … w_γ` (`w_0 = 1`).
    public let weights: [Double]
    /// Test `i` (0-based for position `i + 1`): pass iff `η · denominator < numerator`.
    public let tests: [NodeTest]
    let target: [[Double]]
    let draft: [[Double]]

    /// `P(τ = t)` for `t = 0 … γ`: `h_t·Π_{j>t}(1 − h_j)`, and `Π_j (1 − h_j)` for `t = 0`.
    public var acceptedLengthLaw: [Double] {
        let gamma = tests.count
        var law = [Double](repeating: 0, count: gamma + 1)
        var reach = 1.0
        for position in stride(from: gamma, through: 1, by: -1) {
            let pass = tests[position - 1].passProbability
            law[position] = reach * pass
            reach *= 1 - pass
        }
        law[0] = reach
        return law
    }

    /// The unnormalised law of the token emitted after `accepted` drafts: `(w_τ·P_τ − Q_τ)₊`, or `P_γ` as the bonus.
    /// An empty residual (reachable only by round-off) falls back to `P_τ` (§10.4).
    public func residual(accepted: Int) -> [Double] {
        let gamma = tests.count
        precondition(accepted >= 0 && accepted <= gamma)
        if accepted == gamma { return target[gamma] }
        let weight = weights[accepted]
        var result = [Double](repeating: 0, count: target[accepted].count)
        var mass = 0.0
        for token in result.indices {
            let value = max(weight * target[accepted][token] - draft[accepted][token], 0)
            result[token] = value
            mass += value
        }
        return mass > Probability.negligibleMass ? result : target[accepted]
    }

    /// Samples `τ` (scanning from the end, one uniform per position) and the emitted token after it.
    public func sample(using generator: inout some RandomSource) -> (accepted: Int, token: Int) {
        var accepted = 0
        for position in stride(from: tests.count, through: 1, by: -1) {
            let test = tests[position - 1]
            if generator.bernoulli(test.numerator, over: test.denominator) {
                accepted = position
                break
            }
        }
        let weights = residual(accepted: accepted)
        guard let token = generator.categorical(weights) else {
            preconditionFailure("validated target with no mass")
        }
        return (accepted, token)
    }
}

public enum BlockVerifier {
    /// The deterministic core for one drafted chain.
    ///
    /// - Parameters:
    ///   - target: `P_0 … P_γ`, the processed target vectors after each prefix of the drafts (`γ + 1` of them).
    ///   - draft: `Q_0 … Q_{γ−1}`, the processed draft vectors the drafts were sampled from.
    ///   - drafts: `X_1 … X_γ`.
    public static func decide(target: [[Double]], draft: [[Double]], drafts: [Int]) throws -> BlockDecision {
        let gamma = drafts.count
        if gamma < 1 {
            throw VerifyError.unsupportedDraftCount(verifier: "block", count: 0, supported: "a chain of γ ≥ 1 drafts")
        }
        if target.count != gamma + 1 {
            throw VerifyError.lengthMismatch(what: "block target vectors", expected: gamma + 1, actual: target.count)
        }
        if draft.count != gamma {
            throw VerifyError.lengthMismatch(what: "block draft vectors", expected: gamma, actual: draft.count)
        }
        for (index, vector) in target.enumerated() { try Probability.validate(vector, "target distribution \(index)") }
        for (index, vector) in draft.enumerated() {
            try Probability.validate(vector, "draft distribution \(index)")
            if vector.count != target[0].count {
                throw VerifyError.lengthMismatch(
                    what: "draft distribution \(index)", expected: target[0].count, actual: vector.count)
            }
        }
        for (index, vector) in target.enumerated() where vector.count != target[0].count {
            throw VerifyError.lengthMismatch(
                what: "target distribution \(index)", expected: target[0].count, actual: vector.count)
        }
        for token in drafts where token < 0 || token >= target[0].count {
            throw VerifyError.tokenOutOfRange(what: "block drafts", token: token, vocabularySize: target[0].count)
        }
        var weights = [1.0]
        var tests: [NodeTest] = []
        for position in 1...gamma {
            let token = drafts[position - 1]
            let previous = weights[position - 1]
            let numerator = previous * target[position - 1][token]
            let denominator = draft[position - 1][token]
            // w_i = min(1, w·P/Q), computed without dividing by a zero Q.
            let weight = denominator > 0 ? min(1, max(0, numerator / denominator)) : (numerator > 0 ? 1 : 0)
            weights.append(weight)
            if position < gamma {
                var z = 0.0
                for index in target[position].indices {
                    z += max(weight * target[position][index] - draft[position][index], 0)
                }
                tests.append(NodeTest(child: position - 1, numerator: z, denominator: z + 1 - weight))
            } else {
                tests.append(NodeTest(child: position - 1, numerator: weight, denominator: 1))
            }
        }
        return BlockDecision(weights: weights, tests: tests, target: target, draft: draft)
    }
}
