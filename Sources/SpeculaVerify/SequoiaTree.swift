/// Sequoia-style trees (Chen et al., NeurIPS 2024, arXiv:2402.12374): the tree of a given size that maximises
/// expected tokens per step, assuming a positional acceptance vector `a_b` (P(the `b`-th child is accepted)) that
/// holds at every node. A tree's value is `Σ_v Π_{edges on the path to v} a_rank`, the root counting 1
/// (ALGORITHMS.md §6.6).
///
/// `T[m][l][b]` is the best value for `m` nodes (root included), at most `l` levels, and a root with exactly `b`
/// children; back-pointers rebuild the tree. Ranks beyond `maxNodes − 1` cannot occur and are not planned.
/// - Complexity: O(M²·L·B) for `M` nodes, `L` levels and `B = min(ranks, M − 1)`; flat storage and a kept
///   best-over-`b` per `(m, l)` keep the constant small (a 256-node budget plans in milliseconds in release).
public struct SequoiaPlanner: Sendable {
    public let acceptance: [Double]
    public let maxNodes: Int
    public let maxLevels: Int
    /// The ranks planned: `min(acceptance.count, maxNodes − 1)`, at least 1.
    private let ranks: Int
    /// The levels planned: `min(maxLevels, maxNodes)`, since a tree of `m` nodes has at most `m` levels.
    private let levels: Int
    /// T[m][l][b] at `index(m, l, b)`; −∞ where impossible.
    private var values: [Double]
    /// For b ≥ 2: the node count `y` of the first b − 1 children's tree, at `index(m, l, b)`.
    private var splits: [Int32]
    /// max over b of T[m][l][b], at `m · (levels + 1) + l`.
    private var bests: [Double]

    /// - Parameters:
    ///   - acceptance: `a_1, a_2, …`, each in `[0, 1]`; its length bounds the children per node.
    ///   - maxNodes: the largest tree considered, root included.
    ///   - maxLevels: levels including the root (depth + 1).
    public init(acceptance: [Double], maxNodes: Int, maxLevels: Int) throws {
        if acceptance.isEmpty { throw VerifyError.emptyVocabulary(what: "Sequoia acceptance vector") }
        for (index, value) in acceptance.enumerated() where !(value >= 0 && value <= 1) {
            throw VerifyError.invalidSetting(
                name: "Sequoia acceptance a_\(index + 1)", value: "\(value)", reason: "must be in [0, 1]")
        }
        if maxNodes < 1 || maxNodes > TreeTopology.nodeLimit {
            throw VerifyError.invalidSetting(
                name: "Sequoia node budget", value: "\(maxNodes)", reason: "must be in 1...\(TreeTopology.nodeLimit)")
        }
        if maxLevels < 1 {
            throw VerifyError.invalidSetting(name: "Sequoia levels", value: "\(maxLevels)", reason: "must be ≥ 1")
        }
        self.acceptance = acceptance
        self.maxNodes = maxNodes
        self.maxLevels = maxLevels
        let levels = min(maxLevels, maxNodes)
        self.levels = levels
        let ranks = max(1, min(acceptance.count, maxNodes - 1))
        self.ranks = ranks
        let none = -Double.infinity
        let stride = ranks + 1
        let size = (maxNodes + 1) * (levels + 1) * stride
        var values = [Double](repeating: none, count: size)
        var splits = [Int32](repeating: 0, count: size)
        var bests = [Double](repeating: none, count: (maxNodes + 1) * (levels + 1))
        values.withUnsafeMutableBufferPointer { values in
            splits.withUnsafeMutableBufferPointer { splits in
                bests.withUnsafeMutableBufferPointer { bests in
                    @inline(__always) func at(_ m: Int, _ l: Int, _ b: Int) -> Int {
                        (m * (levels + 1) + l) * stride + b
                    }
                    @inline(__always) func bestAt(_ m: Int, _ l: Int) -> Int { m * (levels + 1) + l }
                    for m in 1...maxNodes {
                        for l in 1...levels {
                            if m == 1 {
                                values[at(1, l, 0)] = 1
                                bests[bestAt(1, l)] = 1
                                continue
                            }
                            if l < 2 { continue }
                            var rowBest = none
                            let single = bests[bestAt(m - 1, l - 1)]
                            if single > none {
                                values[at(m, l, 1)] = 1 + acceptance[0] * single
                                rowBest = values[at(m, l, 1)]
                            }
                            if ranks >= 2 {
                                for b in 2...ranks {
                                    let weight = acceptance[b - 1]
                                    var bestValue = none
                                    var bestSplit = 0
                                    for y in 1..<m {
                                        let head = values[at(y, l, b - 1)]
                                        let tail = bests[bestAt(m - y, l - 1)]
                                        guard head > none, tail > none else { continue }
                                        let value = head + weight * tail
                                        if value > bestValue {
                                            bestValue = value
                                            bestSplit = y
                                        }
                                    }
                                    values[at(m, l, b)] = bestValue
                                    splits[at(m, l, b)] = Int32(bestSplit)
                                    if bestValue > rowBest { rowBest = bestValue }
                                }
                            }
                            bests[bestAt(m, l)] = rowBest
                        }
                    }
                }
            }
        }
        self.values = values
        self.splits = splits
        self.bests = bests
    }

    private func index(_ m: Int, _ l: Int, _ b: Int) -> Int { (m * (levels + 1) + l) * (ranks + 1) + b }

    /// The best expected tokens per step with exactly `nodes` nodes and at most `levels` levels.
    public func value(nodes: Int, levels: Int) -> Double {
        guard nodes >= 1, nodes <= maxNodes, levels >= 1 else { return -.infinity }
        return bests[nodes * (self.levels + 1) + min(levels, maxLevels, self.levels)]
    }

    /// The best tree with exactly `nodes` nodes (root included) and at most `levels` levels.
    public func tree(nodes: Int, levels: Int) throws -> TreeTopology {
        guard nodes >= 1 && nodes <= maxNodes && levels >= 1 && levels <= maxLevels else {
            throw VerifyError.invalidSetting(
                name: "Sequoia tree", value: "\(nodes) nodes, \(levels) levels",
                reason: "outside the planned range \(maxNodes) nodes, \(maxLevels) levels")
        }
        let levels = min(levels, self.levels)
        guard let b = bestRootDegree(nodes, levels) else {
            throw VerifyError.invalidTree(reason: "no tree of \(nodes) nodes fits in \(levels) levels")
        }
        var paths: [[Int]] = []
        build(nodes, levels, b, prefix: [], into: &paths)
        return try TreeTopology(paths: paths)
    }

    /// The tree minimising `(levels·draftStepTime + targetTime(nodes)) / value`, over every size up to `maxNodes`
    /// and every depth up to `maxLevels` (Sequoia's hardware-aware choice; this charges one draft forward per level).
    public func fastestTree(draftStepTime: Double, targetTime: (Int) -> Double) throws -> TreeTopology {
        var bestCost = Double.infinity
        var choice = (1, 1)
        for m in 1...maxNodes {
            for l in 1...maxLevels {
                let value = self.value(nodes: m, levels: l)
                guard value > 0 else { continue }
                let cost = (Double(l) * draftStepTime + targetTime(m)) / value
                if cost < bestCost {
                    bestCost = cost
                    choice = (m, l)
                }
            }
        }
        return try tree(nodes: choice.0, levels: choice.1)
    }

    private func bestRootDegree(_ m: Int, _ l: Int) -> Int? {
        var bestB: Int? = nil
        for b in 0...ranks where values[index(m, l, b)] > -.infinity {
            if bestB == nil || values[index(m, l, b)] > values[index(m, l, bestB ?? 0)] { bestB = b }
        }
        return bestB
    }

    private func build(_ m: Int, _ l: Int, _ b: Int, prefix: [Int], into paths: inout [[Int]]) {
        paths.append(prefix)
        appendChildren(m, l, b, prefix: prefix, into: &paths)
    }

    /// Appends the subtrees of a root (at `prefix`) holding `m` nodes, `l` levels, `b` children.
    private func appendChildren(_ m: Int, _ l: Int, _ b: Int, prefix: [Int], into paths: inout [[Int]]) {
        if b == 0 { return }
        if b == 1 {
            if let childB = bestRootDegree(m - 1, l - 1) {
                build(m - 1, l - 1, childB, prefix: prefix + [0], into: &paths)
            }
            return
        }
        let y = Int(splits[index(m, l, b)])
        appendChildren(y, l, b - 1, prefix: prefix, into: &paths)
        if let childB = bestRootDegree(m - y, l - 1) {
            build(m - y, l - 1, childB, prefix: prefix + [b - 1], into: &paths)
        }
    }
}
