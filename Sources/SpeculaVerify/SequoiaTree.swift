/// Sequoia-style trees (Chen et al., NeurIPS 2024, arXiv:2402.12374): the tree of a given size that maximises
/// expected tokens per step, assuming a positional acceptance vector `a_b` (P(the `b`-th child is accepted)) that
/// holds at every node. A tree's value is `Σ_v Π_{edges on the path to v} a_rank`, the root counting 1
/// (ALGORITHMS.md §6.6).
///
/// `T[m][l][b]` is the best value for `m` nodes (root included), at most `l` levels, and a root with exactly `b`
/// children; back-pointers rebuild the tree.
/// - Complexity: O(M²·L·B) for `M` nodes, `L` levels and `B` ranks.
public struct SequoiaPlanner: Sendable {
    public let acceptance: [Double]
    public let maxNodes: Int
    public let maxLevels: Int
    /// values[m][l][b]; −∞ where impossible.
    private var values: [[[Double]]]
    /// For b ≥ 2: the node count `y` of the first b − 1 children's tree.
    private var splits: [[[Int]]]

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
        let ranks = acceptance.count
        let none = -Double.infinity
        var values = [[[Double]]](
            repeating: [[Double]](repeating: [Double](repeating: none, count: ranks + 1), count: maxLevels + 1),
            count: maxNodes + 1)
        var splits = [[[Int]]](
            repeating: [[Int]](repeating: [Int](repeating: 0, count: ranks + 1), count: maxLevels + 1),
            count: maxNodes + 1)
        func best(_ m: Int, _ l: Int) -> Double { values[m][l].max() ?? none }
        for m in 1...maxNodes {
            for l in 1...maxLevels {
                if m == 1 {
                    values[1][l][0] = 1
                    continue
                }
                if l < 2 { continue }
                let single = best(m - 1, l - 1)
                if single > none { values[m][l][1] = 1 + acceptance[0] * single }
                if ranks < 2 { continue }
                for b in 2...ranks {
                    var bestValue = none
                    var bestSplit = 0
                    for y in 1..<m {
                        let head = values[y][l][b - 1]
                        let tail = best(m - y, l - 1)
                        guard head > none, tail > none else { continue }
                        let value = head + acceptance[b - 1] * tail
                        if value > bestValue {
                            bestValue = value
                            bestSplit = y
                        }
                    }
                    values[m][l][b] = bestValue
                    splits[m][l][b] = bestSplit
                }
            }
        }
        self.values = values
        self.splits = splits
    }

    /// The best expected tokens per step with exactly `nodes` nodes and at most `levels` levels.
    public func value(nodes: Int, levels: Int) -> Double {
        values[nodes][levels].max() ?? -.infinity
    }

    /// The best tree with exactly `nodes` nodes (root included) and at most `levels` levels.
    public func tree(nodes: Int, levels: Int) throws -> TreeTopology {
        guard nodes >= 1 && nodes <= maxNodes && levels >= 1 && levels <= maxLevels else {
            throw VerifyError.invalidSetting(
                name: "Sequoia tree", value: "\(nodes) nodes, \(levels) levels",
                reason: "outside the planned range \(maxNodes) nodes, \(maxLevels) levels")
        }
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
        for b in values[m][l].indices where values[m][l][b] > -.infinity {
            if bestB == nil || values[m][l][b] > values[m][l][bestB ?? 0] { bestB = b }
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
        let y = splits[m][l][b]
        appendChildren(y, l, b - 1, prefix: prefix, into: &paths)
        if let childB = bestRootDegree(m - y, l - 1) {
            build(m - y, l - 1, childB, prefix: prefix + [b - 1], into: &paths)
        }
    }
}
