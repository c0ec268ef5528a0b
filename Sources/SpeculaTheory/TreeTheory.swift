import SpeculaVerify

/// Expected tokens per step of trees and chains.
public enum TreeTheory {
    /// Tokens per step of a tree when the `b`-th child of every node is the accepted one with probability `a_b`
    /// (a positional acceptance vector, as Sequoia assumes): `Σ_v Π_{edges to v} a_rank`, the root counting 1
    /// (the bonus or correction token). Ranks beyond the vector have acceptance 0.
    /// - Complexity: O(m).
    public static func expectedTokensPerStep(topology: TreeTopology, positionalAcceptance: [Double]) -> Double {
        var reach = [Double](repeating: 0, count: topology.nodeCount)
        reach[0] = 1
        var total = 1.0
        for node in 1..<max(topology.nodeCount, 1) {
            let rank = topology.ranks[node]
            let a = rank < positionalAcceptance.count ? positionalAcceptance[rank] : 0
            reach[node] = reach[topology.parents[node]] * a
            total += reach[node]
        }
        return total
    }

    /// Tokens per step of a tree given the acceptance probability of every node: `acceptance[v]` = P(the walk enters
    /// `v` | it reached `v`'s parent). Per-node acceptance measured by the engine fits here.
    public static func expectedTokensPerStep(topology: TreeTopology, nodeAcceptance: [Double]) -> Double {
        precondition(nodeAcceptance.count == topology.nodeCount, "one acceptance per node")
        var reach = [Double](repeating: 0, count: topology.nodeCount)
        reach[0] = 1
        var total = 1.0
        for node in 1..<max(topology.nodeCount, 1) {
            reach[node] = reach[topology.parents[node]] * nodeAcceptance[node]
            total += reach[node]
        }
        return total
    }

    /// Tokens per step of a chain of `γ` drafts that accepts each position with the same rate `α`:
    /// `(1 − α^{γ+1})/(1 − α)`, or `γ + 1` when `α = 1` (Leviathan et al.; ALGORITHMS.md §2).
    public static func chainTokensPerStep(acceptance alpha: Double, length gamma: Int) -> Double {
        if alpha >= 1 { return Double(gamma + 1) }
        var power = 1.0
        var total = 0.0
        for _ in 0...gamma {
            total += power
            power *= alpha
        }
        return total
    }

    /// A context-dependent model pair on a small vocabulary: the processed target and draft vectors after a prefix.
    public typealias ContextModel = @Sendable ([Int]) -> (target: [Double], draft: [Double])

    /// How a chain is verified.
    public enum ChainRule: String, Sendable, CaseIterable {
        case token
        case block
    }

    /// The exact expected number of accepted drafts `E[τ]` of a chain of `γ` drafts under `rule`, by enumerating
    /// every block `X_1..X_γ` (vocabularies of a few tokens; ALGORITHMS.md §3).
    /// - Complexity: O(|V|^γ · γ·|V|).
    public static func expectedAccepted(
        model: ContextModel, vocabularySize: Int, length gamma: Int, rule: ChainRule
    ) throws -> Double {
        if gamma < 1 {
            throw VerifyError.invalidSetting(name: "chain length", value: "\(gamma)", reason: "must be ≥ 1")
        }
        var blocks = 1.0
        for _ in 0..<gamma { blocks *= Double(vocabularySize) }
        if blocks > 1e6 { throw VerifyError.tooLarge(what: "block enumeration", size: Int(blocks), limit: 1_000_000) }
        var expected = 0.0
        func visit(_ block: [Int], _ probability: Double) throws {
            if probability == 0 { return }
            if block.count == gamma {
                var targets: [[Double]] = []
                var drafts: [[Double]] = []
                for length in 0...gamma {
                    let (target, draft) = model(Array(block.prefix(length)))
                    targets.append(target)
                    if length < gamma { drafts.append(draft) }
                }
                let law = try acceptedLengthLaw(target: targets, draft: drafts, drafts: block, rule: rule)
                for (accepted, chance) in law.enumerated() { expected += probability * Double(accepted) * chance }
                return
            }
            let draft = model(block).draft
            for token in 0..<vocabularySize where draft[token] > 0 {
                try visit(block + [token], probability * draft[token])
            }
        }
        try visit([], 1)
        return expected
    }

    /// `P(τ = t)` for one drafted chain under `rule`.
    public static func acceptedLengthLaw(target: [[Double]], draft: [[Double]], drafts: [Int], rule: ChainRule) throws
        -> [Double]
    {
        switch rule {
        case .block:
            return try BlockVerifier.decide(target: target, draft: draft, drafts: drafts).acceptedLengthLaw
        case .token:
            var law = [Double](repeating: 0, count: drafts.count + 1)
            var reach = 1.0
            for (position, token) in drafts.enumerated() {
                let pass = NodeTest(child: 0, numerator: target[position][token], denominator: draft[position][token])
                    .passProbability
                law[position] = reach * (1 - pass)
                reach *= pass
            }
            law[drafts.count] = reach
            return law
        }
    }
}
