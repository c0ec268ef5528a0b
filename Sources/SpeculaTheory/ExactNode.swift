import SpeculaVerify

/// The exact law of one node verification, by enumerating every draft tuple of the verifier's law and running the
/// verifier's own deterministic core on each (ALGORITHMS.md §7). Small vocabularies only.
public struct NodeLaw: Sendable {
    /// P(emitted token = y), accepted or correction: must equal the target for a lossless verifier.
    public var emitted: [Double]
    /// P(child k is the accepted one): the per-child acceptance vector.
    public var perChild: [Double]
    /// α = Σ perChild.
    public var acceptance: Double { perChild.reduce(0, +) }
}

public enum ExactNode {
    /// The largest number of draft tuples enumerated.
    public static let tupleLimit = 2_000_000

    /// Enumerates `verifier` at one node with `count` drafts drawn by its law from `draft`.
    /// - Complexity: O(|supp q|ⁿ · n·|V|).
    public static func law(
        verifier: any NodeVerifier, target: [Double], draft: [Double], count: Int
    ) throws -> NodeLaw {
        try Probability.validatePair(target: target, draft: draft)
        let support = draft.filter { $0 > 0 }.count
        let estimate = (0..<count).reduce(1.0) { product, _ in product * Double(max(support, 1)) }
        if estimate > Double(tupleLimit) {
            throw VerifyError.tooLarge(
                what: "exact enumeration of \(count) drafts over \(support) tokens", size: Int(min(estimate, 1e18)),
                limit: tupleLimit)
        }
        let law = verifier.draftLaw
        let drawn = law.draftCount(requested: count, draft: draft)
        var emitted = [Double](repeating: 0, count: target.count)
        var perChild = [Double](repeating: 0, count: drawn)
        var decision = NodeDecision()
        // A plan shared by every tuple: the optimal-transport verifier solves its max-flow once.
        var plan: OptimalTransportPlan? = nil
        if let otm = verifier as? OptimalTransportVerifier {
            plan = try OptimalTransportPlan(law: otm.draftLaw, draft: draft, count: drawn, target: target)
        }
        let rule: any NodeVerifier = drawn == 1 ? TokenVerifier() : verifier
        let tuples =
            drawn == 1
            ? try DraftLaw.independent.tuples(draft: draft, count: 1)
            : try law.tuples(draft: draft, count: drawn)
        for tuple in tuples {
            if let plan, let otm = rule as? OptimalTransportVerifier {
                try otm.decide(plan: plan, target: target, drafts: tuple.tokens, into: &decision)
            } else {
                try rule.decide(target: target, draft: draft, drafts: tuple.tokens, into: &decision)
            }
            let outcome = decision.outcomeLaw(target: target)
            for (child, probability) in outcome.acceptance.enumerated() {
                perChild[child] += tuple.probability * probability
                emitted[tuple.tokens[child]] += tuple.probability * probability
            }
            for (token, probability) in outcome.correction.enumerated() where probability > 0 {
                emitted[token] += tuple.probability * probability
            }
        }
        return NodeLaw(emitted: emitted, perChild: perChild)
    }
}
