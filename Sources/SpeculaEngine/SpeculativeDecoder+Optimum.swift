import SpeculaKernels
import SpeculaModels
import SpeculaTheory
import SpeculaVerify

extension SpeculativeDecoder {
    /// The paired comparison of one chain (``pairedBlock``): both verifiers' exact expected tokens per step.
    func comparePaired(_ target: [[Double]], _ draft: [[Double]], _ drafts: [Int]) throws {
        var reach = 1.0
        var tokenSteps = 1.0
        for (k, token) in drafts.enumerated() {
            let q = draft[k][token]
            reach *= q > 0 ? min(1, target[k][token] / q) : 0
            tokenSteps += reach
        }
        let law = try BlockVerifier.decide(target: target, draft: draft, drafts: drafts).acceptedLengthLaw
        let blockSteps = 1 + law.enumerated().reduce(0) { $0 + Double($1.offset) * $1.element }
        telemetry.pairedRounds += 1
        telemetry.pairedTokenSteps += tokenSteps
        telemetry.pairedBlockSteps += blockSteps
    }

    /// Adds the reached nodes of a chain (the accepted ones and the first rejected one) to the α* telemetry.
    func recordOptimal(_ target: [[Double]], _ draft: [[Double]], accepted: Int) {
        let reached = min(accepted + 1, draft.count)
        telemetry.countOptimal(
            (0..<reached).map { k in zip(target[k], draft[k]).reduce(0) { $0 + min($1.0, $1.1) } }, accepted: accepted)
    }

    /// α* of each reached expanded node's draft law and draft count (RRS: with replacement; RRSw, K-SEQ-style
    /// draws without replacement; the greedy law; SpecHub's hub pair; one child: Σ min(p, q)), and whether the walk
    /// accepted a child there. A node whose α* has no method at this size (n ≥ 4 without replacement on a large
    /// support) is left out.
    func recordTreeOptimum(_ tree: DraftTree, _ target: [[Double]], accepted: [Int]) {
        let start = ContinuousClock.now
        defer { telemetry.optimalSeconds += Self.seconds(since: start) }
        var values: [Double] = []
        var kept = 0
        for (index, node) in ([0] + accepted).enumerated() {
            let count = tree.children[node].count
            guard count > 0, let q = tree.draftProbabilities[node], let law = tree.laws[node] else { continue }
            let p = target[node]
            let value: Double?
            if count == 1 {
                value = Probability.overlap(p, q)
            } else {
                switch law {
                case .independent: value = try? OptimalAcceptance.withReplacement(target: p, draft: q, count: count)
                case .withoutReplacement:
                    value = try? OptimalAcceptance.withoutReplacement(target: p, draft: q, count: count).value
                case .greedy: value = try? OptimalAcceptance.greedy(target: p, draft: q, count: count)
                case .hubPair: value = try? OptimalAcceptance.hubPair(target: p, draft: q)
                }
            }
            guard let value else { continue }
            values.append(value)
            if index < accepted.count { kept += 1 }
        }
        telemetry.countOptimal(values, accepted: kept)
    }
}
