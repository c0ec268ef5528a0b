import Foundation
import SpeculaModels
import SpeculaVerify

/// What a round costs on this machine: one draft forward pass (one tree level) and one target pass over `N`
/// nodes, measured with the models themselves after a real context.
public struct CostModel: Sendable, Equatable {
    /// Seconds of one draft pass over a level (one token).
    public var draftStep: Double
    /// Seconds of one target pass over `nodes` tokens, for the measured sizes (ascending).
    public var verify: [(nodes: Int, seconds: Double)]

    public static func == (a: CostModel, b: CostModel) -> Bool {
        a.draftStep == b.draftStep && a.verify.map(\.nodes) == b.verify.map(\.nodes)
            && a.verify.map(\.seconds) == b.verify.map(\.seconds)
    }

    public init(draftStep: Double, verify: [(nodes: Int, seconds: Double)]) {
        self.draftStep = draftStep
        self.verify = verify.sorted { $0.nodes < $1.nodes }
    }

    /// Linear interpolation between the measured sizes, linear extrapolation beyond the last two.
    public func verifyTime(_ nodes: Int) -> Double {
        guard let first = verify.first else { return 0 }
        if verify.count == 1 || nodes <= first.nodes { return first.seconds }
        for index in 1..<verify.count where nodes <= verify[index].nodes {
            let (a, b) = (verify[index - 1], verify[index])
            return a.seconds + (b.seconds - a.seconds) * Double(nodes - a.nodes) / Double(b.nodes - a.nodes)
        }
        let (a, b) = (verify[verify.count - 2], verify[verify.count - 1])
        return b.seconds + (b.seconds - a.seconds) * Double(nodes - b.nodes) / Double(b.nodes - a.nodes)
    }

    /// Times the draft's one-token step and the target's pass over 1, 2, 4, … `maxNodes` tokens after `context`
    /// (median of `repeats`); the scratch caches are thrown away.
    public static func measure(
        target: Transformer, draft: Transformer, context: [Int], maxNodes: Int = 32, repeats: Int = 3
    ) throws -> CostModel {
        let body = Array(context.suffix(256))
        let targetCache = target.makeCache(capacity: body.count + maxNodes + 1)
        let draftCache = draft.makeCache(capacity: body.count + 2)
        if !body.isEmpty {
            _ = try target.forward(tokens: body, cache: targetCache, logitRows: [])
            _ = try draft.forward(tokens: body, cache: draftCache, logitRows: [])
        }
        func median(_ model: Transformer, tokens: Int) throws -> Double {
            let cache = model === target ? targetCache : draftCache
            var samples: [Double] = []
            for _ in 0..<repeats {
                let batch = [Int](repeating: body.last ?? 0, count: tokens)
                let start = ContinuousClock.now
                _ = try model.forward(tokens: batch, cache: cache, logitRows: Array(0..<tokens))
                samples.append((ContinuousClock.now - start).inSeconds)
                _ = cache.trim(to: body.count)
            }
            return samples.sorted()[samples.count / 2]
        }
        var sizes: [Int] = []
        var size = 1
        while size < maxNodes {
            sizes.append(size)
            size *= 2
        }
        sizes.append(maxNodes)
        return CostModel(
            draftStep: try median(draft, tokens: 1),
            verify: try sizes.map { ($0, try median(target, tokens: $0)) })
    }
}

/// `--verifier auto`: chooses the draft tree that maximises expected tokens per second — Sequoia's planner over
/// the per-child acceptance vector (a prior, blended with what the rounds so far observed) and this machine's
/// measured costs (one draft pass per level plus one target pass over the tree).
public struct AutoPlanner: Sendable {
    /// The largest tree planned by default (root included).
    public static let defaultMaxNodes = 32

    /// A tree in a few characters for the stats: nodes, depth, and the children of the root.
    public static func describe(_ tree: TreeTopology) -> String {
        tree.nodeCount == 1
            ? "no drafts (plain steps)"
            : tree.children.allSatisfy { $0.count <= 1 }
                ? "chain:\(tree.depth)" : "\(tree.nodeCount) nodes, depth \(tree.depth), root \(tree.children[0].count)"
    }

    public var cost: CostModel
    /// a_r before any observation.
    public var prior: [Double]
    /// Observations weigh like this many prior rounds.
    public var priorWeight = 8.0
    public var maxNodes: Int
    public var maxLevels: Int

    public init(cost: CostModel, prior: [Double], maxNodes: Int = 32, maxLevels: Int = 8) {
        self.cost = cost
        self.prior = prior
        self.maxNodes = maxNodes
        self.maxLevels = maxLevels
    }

    /// The acceptance vector: per rank, (prior · weight + accepted) / (weight + reached).
    public func acceptance(reached: [Int], accepted: [Int]) -> [Double] {
        prior.indices.map { rank in
            let seen = rank < reached.count ? Double(reached[rank]) : 0
            let kept = rank < accepted.count ? Double(accepted[rank]) : 0
            return min(1, max(0, (prior[rank] * priorWeight + kept) / (priorWeight + seen)))
        }
    }

    /// Plain steps (a one-node plan) observe no acceptance, so a plan that fell back to them could never change
    /// again: after this many planning periods of plain steps in a row, ``next(acceptance:plainPeriods:)`` tries a
    /// chain of `probeDepth` drafts for one period, whose rounds add observations.
    public var probeAfter = 4
    public var probeDepth = 2

    /// The plan for the next period: the fastest tree, or the probe chain once `plainPeriods` (periods in a row
    /// whose plan was plain, updated here) exceeds `probeAfter`.
    public func next(acceptance: [Double], plainPeriods: inout Int) throws -> TreeTopology {
        let planned = try plan(acceptance: acceptance)
        guard planned.nodeCount == 1 else {
            plainPeriods = 0
            return planned
        }
        plainPeriods += 1
        if plainPeriods > probeAfter {
            plainPeriods = 0
            return try TreeTopology.chain(probeDepth)
        }
        return planned
    }

    /// The fastest tree for an acceptance vector.
    public func plan(acceptance: [Double]) throws -> TreeTopology {
        let planner = try SequoiaPlanner(acceptance: acceptance, maxNodes: maxNodes, maxLevels: maxLevels)
        return try planner.fastestTree(draftStepTime: cost.draftStep, targetTime: cost.verifyTime)
    }
}
