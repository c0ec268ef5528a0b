/// A drafted tree for one step: flat nodes in level order, node 0 the root (the last emitted token, with no KV entry
/// yet). Each expanded node keeps the processed draft vector its children were drawn from, which is the `q` its
/// verifier must see (ALGORITHMS.md §6.1, §10.1).
public struct DraftTree: Sendable {
    public private(set) var tokens: [Int]
    public private(set) var parents: [Int]
    public private(set) var depths: [Int]
    /// Children of each node in child rank (draw order).
    public private(set) var children: [[Int]]
    /// The draft vector at each expanded node; nil at leaves.
    public private(set) var draftProbabilities: [[Double]?]
    /// The draft law each expanded node's children were drawn with.
    public private(set) var laws: [DraftLaw?]

    public var nodeCount: Int { tokens.count }

    public init(rootToken: Int) {
        tokens = [rootToken]
        parents = [-1]
        depths = [0]
        children = [[]]
        draftProbabilities = [nil]
        laws = [nil]
    }

    /// Appends the drafted children of `node`, drawn from `draft` by `law`. Children must be added level by level
    /// (all of one depth before the next) so that the node list stays in level order.
    @discardableResult
    public mutating func expand(_ node: Int, draft: [Double], law: DraftLaw, childTokens: [Int]) -> [Int] {
        precondition(node >= 0 && node < nodeCount && children[node].isEmpty, "node expanded twice or unknown")
        precondition(depths.last.map { $0 <= depths[node] + 1 } ?? true, "children added out of level order")
        draftProbabilities[node] = draft
        laws[node] = law
        var added: [Int] = []
        for token in childTokens {
            let index = tokens.count
            tokens.append(token)
            parents.append(node)
            depths.append(depths[node] + 1)
            children.append([])
            draftProbabilities.append(nil)
            laws.append(nil)
            children[node].append(index)
            added.append(index)
        }
        return added
    }

    /// The tokens on the path from the root to `node`, root included.
    public func path(to node: Int) -> [Int] {
        var result: [Int] = []
        var current = node
        while current >= 0 {
            result.append(tokens[current])
            current = parents[current]
        }
        return result.reversed()
    }

    /// The static shape of this drafted tree (for the attention mask and position ids).
    public func topology() throws -> TreeTopology {
        var paths: [[Int]] = [[]]
        var nodePaths: [[Int]] = [[]]
        for node in 1..<max(nodeCount, 1) {
            let parent = parents[node]
            let rank = children[parent].firstIndex(of: node) ?? 0
            let path = nodePaths[parent] + [rank]
            nodePaths.append(path)
            paths.append(path)
        }
        return try TreeTopology(paths: paths)
    }

    /// Drafts a whole tree of shape `topology` level by level.
    ///
    /// At a node with one child in the topology the child is one draw from `q` (every law reduces to that); with
    /// more, the node's law draws them. Under L2 a node whose `q` has fewer tokens than the topology asks for gets
    /// fewer children, and the missing ranks lose their subtrees (short support: never pad, §4.1).
    /// - Parameters:
    ///   - law: the draft law for each topology node.
    ///   - draftDistribution: the processed draft vector after a path of tokens (root first).
    public static func draft(
        topology: TreeTopology, rootToken: Int, law: (Int) -> DraftLaw,
        draftDistribution: ([Int]) throws -> [Double], using generator: inout some RandomSource
    ) throws -> DraftTree {
        var tree = DraftTree(rootToken: rootToken)
        var treeNode: [Int?] = [Int?](repeating: nil, count: topology.nodeCount)
        treeNode[0] = 0
        for node in 0..<topology.nodeCount {
            guard let current = treeNode[node] else { continue }
            let wanted = topology.children[node]
            if wanted.isEmpty { continue }
            let draft = try draftDistribution(tree.path(to: current))
            let nodeLaw = wanted.count == 1 ? DraftLaw.withoutReplacement : law(node)
            let drafts = try nodeLaw.sample(draft: draft, count: wanted.count, using: &generator)
            let added = tree.expand(current, draft: draft, law: nodeLaw, childTokens: drafts)
            for (rank, child) in added.enumerated() { treeNode[wanted[rank]] = child }
        }
        return tree
    }
}

/// The result of walking a tree with a verifier (ALGORITHMS.md §6.4).
public struct TreeWalkResult: Sendable, Equatable {
    /// Accepted nodes, root excluded, from the top down.
    public var acceptedNodes: [Int]
    /// The tokens of the accepted nodes, then one correction or bonus token.
    public var emittedTokens: [Int]
    /// True when the last token is a bonus (a leaf was reached), false for a correction.
    public var endedWithBonus: Bool

    public init(acceptedNodes: [Int], emittedTokens: [Int], endedWithBonus: Bool) {
        self.acceptedNodes = acceptedNodes
        self.emittedTokens = emittedTokens
        self.endedWithBonus = endedWithBonus
    }

    /// `accepted + 1`.
    public var tokensPerStep: Int { emittedTokens.count }
}

public enum TreeWalk {
    /// The verification walk with any per-node rule.
    ///
    /// From the root, verify each node's children with its rule (a node with one child uses token verification,
    /// §2, whatever the rule), descend into the accepted child, and stop with a correction or, at a leaf, a bonus
    /// drawn from `p`.
    /// - Parameters:
    ///   - target: the processed target vector at every node of the tree (from one target pass).
    ///   - verifier: the rule at each expanded node.
    public static func walk(
        tree: DraftTree, target: [[Double]], verifier: (Int) -> any NodeVerifier,
        decision: inout NodeDecision, using generator: inout some RandomSource
    ) throws -> TreeWalkResult {
        if target.count != tree.nodeCount {
            throw VerifyError.lengthMismatch(
                what: "target vectors for the tree", expected: tree.nodeCount, actual: target.count)
        }
        var node = 0
        var accepted: [Int] = []
        while true {
            let childNodes = tree.children[node]
            if childNodes.isEmpty {
                try Probability.validate(target[node], "target distribution at node \(node)")
                guard let bonus = generator.categorical(target[node]) else {
                    throw VerifyError.zeroMass(what: "target distribution at node \(node)")
                }
                return TreeWalkResult(
                    acceptedNodes: accepted, emittedTokens: accepted.map { tree.tokens[$0] } + [bonus],
                    endedWithBonus: true)
            }
            guard let draft = tree.draftProbabilities[node] else {
                throw VerifyError.invalidTree(reason: "expanded node \(node) has no draft distribution")
            }
            let rule: any NodeVerifier = childNodes.count == 1 ? TokenVerifier() : verifier(node)
            let outcome = try rule.verify(
                target: target[node], draft: draft, drafts: childNodes.map { tree.tokens[$0] }, decision: &decision,
                using: &generator)
            switch outcome {
            case .accepted(let child):
                node = childNodes[child]
                accepted.append(node)
            case .correction(let token):
                return TreeWalkResult(
                    acceptedNodes: accepted, emittedTokens: accepted.map { tree.tokens[$0] } + [token],
                    endedWithBonus: false)
            }
        }
    }

    /// The greedy (temperature 0) walk: follow the lowest-rank child holding `argmax p`, else emit the argmax.
    /// Its output equals plain greedy decoding token for token.
    public static func greedyWalk(tree: DraftTree, target: [[Double]]) throws -> TreeWalkResult {
        if target.count != tree.nodeCount {
            throw VerifyError.lengthMismatch(
                what: "target vectors for the tree", expected: tree.nodeCount, actual: target.count)
        }
        var node = 0
        var accepted: [Int] = []
        while true {
            if target[node].isEmpty { throw VerifyError.emptyVocabulary(what: "target distribution at node \(node)") }
            let best = Probability.argmax(target[node])
            if let child = tree.children[node].first(where: { tree.tokens[$0] == best }) {
                node = child
                accepted.append(child)
                continue
            }
            return TreeWalkResult(
                acceptedNodes: accepted, emittedTokens: accepted.map { tree.tokens[$0] } + [best],
                endedWithBonus: tree.children[node].isEmpty)
        }
    }

    /// Block verification (§3) of a chain-shaped tree: one child per node.
    public static func blockWalk(
        tree: DraftTree, target: [[Double]], using generator: inout some RandomSource
    ) throws -> TreeWalkResult {
        var chain: [Int] = []
        var node = 0
        while let next = tree.children[node].first {
            if tree.children[node].count != 1 {
                throw VerifyError.invalidTree(
                    reason: "block verification needs a chain; node \(node) has several children")
            }
            chain.append(next)
            node = next
        }
        if chain.isEmpty {
            throw VerifyError.invalidTree(reason: "block verification needs at least one draft")
        }
        if target.count != tree.nodeCount {
            throw VerifyError.lengthMismatch(
                what: "target vectors for the tree", expected: tree.nodeCount, actual: target.count)
        }
        let drafts = [0] + chain.dropLast()
        let draftVectors = try drafts.map { index -> [Double] in
            guard let vector = tree.draftProbabilities[index] else {
                throw VerifyError.invalidTree(reason: "expanded node \(index) has no draft distribution")
            }
            return vector
        }
        let decision = try BlockVerifier.decide(
            target: ([0] + chain).map { target[$0] }, draft: draftVectors, drafts: chain.map { tree.tokens[$0] })
        let (count, token) = decision.sample(using: &generator)
        let accepted = Array(chain.prefix(count))
        return TreeWalkResult(
            acceptedNodes: accepted, emittedTokens: accepted.map { tree.tokens[$0] } + [token],
            endedWithBonus: count == chain.count)
    }
}
