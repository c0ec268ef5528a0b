import Foundation

/// The static shape of a draft tree: node 0 is the root (the last emitted token), every other node is a path of
/// child ranks from the root (EAGLE's format: `[0, 1]` is the second child of the first child). Nodes are in level
/// order, sorted by (length, lexicographic path), so every parent precedes its children (ALGORITHMS.md §6.1).
public struct TreeTopology: Sendable, Equatable, Codable {
    /// Root-to-node child-rank paths; `paths[0] == []` is the root.
    public let paths: [[Int]]
    /// Parent index of each node; −1 for the root.
    public let parents: [Int]
    /// Child rank of each node under its parent (0 for the root).
    public let ranks: [Int]
    /// Ordered children of each node.
    public let children: [[Int]]

    public var nodeCount: Int { paths.count }
    /// Draft tokens in the tree (every node but the root).
    public var draftCount: Int { paths.count - 1 }
    public var depth: Int { paths.last?.count ?? 0 }
    public func depth(of node: Int) -> Int { paths[node].count }

    /// The largest node count any builder accepts.
    public static let nodeLimit = 4096

    /// Builds a topology from root-to-node paths (the root may be omitted). Every proper prefix of a path must be
    /// a path too, and the ranks under a node must be `0, 1, …` without gaps.
    public init(paths input: [[Int]]) throws {
        var unique = Set(input.map { $0 })
        unique.insert([])
        if unique.count > TreeTopology.nodeLimit {
            throw VerifyError.tooLarge(what: "draft tree", size: unique.count, limit: TreeTopology.nodeLimit)
        }
        for path in unique {
            if let bad = path.first(where: { $0 < 0 }) {
                throw VerifyError.invalidTree(reason: "path \(path) has a negative child rank \(bad)")
            }
            if !path.isEmpty && !unique.contains(Array(path.dropLast())) {
                throw VerifyError.invalidTree(reason: "path \(path) has no parent \(Array(path.dropLast()))")
            }
            if let last = path.last, last > 0, !unique.contains(Array(path.dropLast()) + [last - 1]) {
                throw VerifyError.invalidTree(
                    reason: "path \(path) skips rank \(last - 1): child ranks under a node must be 0, 1, …")
            }
        }
        let sorted = unique.sorted { a, b in a.count != b.count ? a.count < b.count : a.lexicographicallyPrecedes(b) }
        var index: [[Int]: Int] = [:]
        for (position, path) in sorted.enumerated() { index[path] = position }
        var parents: [Int] = []
        var ranks: [Int] = []
        var children = [[Int]](repeating: [], count: sorted.count)
        for (position, path) in sorted.enumerated() {
            if path.isEmpty {
                parents.append(-1)
                ranks.append(0)
                continue
            }
            let parent = index[Array(path.dropLast())] ?? -1
            parents.append(parent)
            ranks.append(path[path.count - 1])
            children[parent].append(position)
        }
        self.paths = sorted
        self.parents = parents
        self.ranks = ranks
        self.children = children
    }

    /// A chain of `length` drafts (§6.6).
    public static func chain(_ length: Int) throws -> TreeTopology {
        try checkPositive("chain length", length)
        if length >= nodeLimit { throw VerifyError.tooLarge(what: "draft tree", size: length + 1, limit: nodeLimit) }
        return try TreeTopology(paths: (0...length).map { [Int](repeating: 0, count: $0) })
    }

    /// The complete `branching`-ary tree of `depth` levels below the root: `Σ_{i=1..depth} branchingⁱ` drafts.
    public static func complete(branching: Int, depth: Int) throws -> TreeTopology {
        try checkPositive("branching", branching)
        try checkPositive("depth", depth)
        var total = 1
        var level = 1
        for _ in 0..<depth {
            // Checked: the sizes of a tree past the limit are reported, not computed.
            let (nextLevel, overflow) = level.multipliedReportingOverflow(by: branching)
            if overflow || total + nextLevel > nodeLimit {
                throw VerifyError.tooLarge(
                    what: "draft tree", size: overflow ? Int.max : total + nextLevel, limit: nodeLimit)
            }
            level = nextLevel
            total += level
        }
        var paths: [[Int]] = [[]]
        var frontier: [[Int]] = [[]]
        for _ in 0..<depth {
            frontier = frontier.flatMap { path in (0..<branching).map { path + [$0] } }
            paths += frontier
        }
        return try TreeTopology(paths: paths)
    }

    /// `count` drafts of `depth` tokens sharing only the root (Hu et al.'s "n drafts × depth d", SpecTr, RRS): the
    /// root has `count` children, each the start of a chain.
    public static func sequences(count: Int, depth: Int) throws -> TreeTopology {
        try checkPositive("drafts", count)
        try checkPositive("depth", depth)
        let (drafts, overflow) = count.multipliedReportingOverflow(by: depth)
        if overflow || drafts >= nodeLimit {
            throw VerifyError.tooLarge(what: "draft tree", size: overflow ? Int.max : 1 + drafts, limit: nodeLimit)
        }
        var paths: [[Int]] = [[]]
        for level in 1...depth {
            for draft in 0..<count { paths.append([draft] + [Int](repeating: 0, count: level - 1)) }
        }
        return try TreeTopology(paths: paths)
    }

    /// SpecHub's binary `2^k`: the complete binary tree with `k` levels including the root (`2^k − 2` drafts).
    public static func binary(levels: Int) throws -> TreeTopology {
        if levels < 2 {
            throw VerifyError.invalidSetting(name: "binary levels", value: "\(levels)", reason: "must be ≥ 2")
        }
        return try complete(branching: 2, depth: levels - 1)
    }

    /// EAGLE-1's default sparse tree: 25 drafts, 4/8/8/3/2 per depth (§6.6).
    public static func eagle() throws -> TreeTopology {
        try TreeTopology(paths: [
            [0], [1], [2], [3],
            [0, 0], [0, 1], [0, 2], [1, 0], [1, 1], [2, 0], [2, 1], [3, 0],
            [0, 0, 0], [0, 0, 1], [0, 0, 2], [0, 1, 0], [0, 1, 1], [0, 2, 0], [0, 2, 1], [1, 0, 0],
            [0, 0, 0, 0], [0, 0, 0, 1], [0, 0, 0, 2],
            [0, 0, 0, 0, 0], [0, 0, 0, 0, 1],
        ])
    }

    /// A tree read from JSON: an array of child-rank paths, or an object with a `"paths"` array.
    public static func json(_ data: Data) throws -> TreeTopology {
        struct Wrapped: Decodable { let paths: [[Int]] }
        if let paths = try? JSONDecoder().decode([[Int]].self, from: data) { return try TreeTopology(paths: paths) }
        if let wrapped = try? JSONDecoder().decode(Wrapped.self, from: data) {
            return try TreeTopology(paths: wrapped.paths)
        }
        throw VerifyError.invalidTree(reason: "expected a JSON array of child-rank paths, such as [[0],[1],[0,0]]")
    }

    /// The attention mask over the tree's nodes (§6.2): `mask[i][j]` is true iff node `j` is node `i` or one of its
    /// ancestors. Every node also sees the whole committed prefix, which is not part of this matrix.
    /// - Complexity: O(m · depth).
    public var attentionMask: [[Bool]] {
        var mask = [[Bool]](repeating: [Bool](repeating: false, count: nodeCount), count: nodeCount)
        for node in 0..<nodeCount {
            var current = node
            while current >= 0 {
                mask[node][current] = true
                current = parents[current]
            }
        }
        return mask
    }

    /// Position ids: the root's position (committed tokens before it) plus each node's depth. Siblings share one.
    public func positionIds(rootPosition: Int) -> [Int] {
        paths.map { rootPosition + $0.count }
    }

    /// The topology with only the nodes for which `keep` is true; a removed node takes its subtree with it. Used
    /// for short support (§4.1): missing ranks and their subtrees leave this step's tree.
    public func pruned(keeping keep: (Int) -> Bool) throws -> TreeTopology {
        var kept: [[Int]] = []
        var alive = [Bool](repeating: false, count: nodeCount)
        for node in 0..<nodeCount {
            let parentAlive = parents[node] < 0 || alive[parents[node]]
            alive[node] = parentAlive && (node == 0 || keep(node))
            if alive[node] { kept.append(paths[node]) }
        }
        return try TreeTopology(paths: kept)
    }

    static func checkPositive(_ name: String, _ value: Int) throws {
        if value < 1 { throw VerifyError.invalidSetting(name: name, value: "\(value)", reason: "must be ≥ 1") }
    }
}
