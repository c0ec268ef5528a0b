import SpeculaKernels
import SpeculaModels
import SpeculaTheory
import SpeculaVerify

extension SpeculativeDecoder {
    /// A tree round: draft level by level (one draft pass per level over the nodes to expand, each seeing the
    /// committed text and its own ancestors), one target pass over the whole tree, the walk, and the commit of the
    /// accepted path in both caches.
    func treeRound(draft: Transformer, draftCache: KVCache) throws -> [Int] {
        guard let topology = tree else { return try chainRound(draft: draft, draftCache: draftCache, length: depth) }
        // A chain-shaped tree (as the auto planner picks at temperature 0) is drafted as a chain: the same draft law
        // and walk (token verification at one-child nodes), and the chain's lookahead applies.
        if topology.nodeCount > 1 && topology.children.allSatisfy({ $0.count <= 1 }) {
            return try chainRound(draft: draft, draftCache: draftCache, length: topology.depth)
        }
        let prefix = targetCache.length
        // Near the end of the cache a tree that no longer fits gives way to a chain of the room left (one draft per
        // node, token verification; the choice depends on the position only, so the law is kept).
        if prefix + topology.nodeCount > targetCache.capacity {
            return try chainRound(draft: draft, draftCache: draftCache, length: topology.depth)
        }
        let roundStart = ContinuousClock.now
        defer { telemetry.roundSeconds += Self.seconds(since: roundStart) }
        if topology.nodeCount == 1 { return try plainRound() }
        let draftStart = ContinuousClock.now
        var draftTree = DraftTree(rootToken: root)
        var draftRow: [Int: Int] = [:]  // drafted node → its row in the draft cache
        var paths: [[Int]] = [[]]  // tokens after the root, per drafted node
        var ancestors: [[Int]] = [[]]  // drafted nodes above each node
        // The root (and a missing row from the previous round) first.
        let rootLogits = try draft.forward(tokens: draftBacklog + [root], cache: draftCache)[0]
        telemetry.draftPasses += 1
        draftBacklog = []
        draftRow[0] = prefix
        var vectors: [Int: [Double]] = [0: try process(rootLogits)]
        var level: [(shape: Int, node: Int)] = [(0, 0)]
        while !level.isEmpty {
            var next: [(shape: Int, node: Int)] = []
            for (shape, node) in level {
                let wanted = topology.children[shape]
                guard !wanted.isEmpty, let q = vectors[node] else { continue }
                let law = wanted.count == 1 ? DraftLaw.withoutReplacement : (nodeVerifier?.draftLaw ?? .independent)
                let tokens = try law.sample(draft: q, count: wanted.count, using: &random)
                let added = draftTree.expand(node, draft: q, law: law, childTokens: tokens)
                for (rank, child) in added.enumerated() {
                    paths.append(paths[node] + [tokens[rank]])
                    ancestors.append(ancestors[node] + [node])
                    next.append((wanted[rank], child))
                }
            }
            // One draft pass over the next level's nodes that will be expanded.
            let feed = next.filter { !topology.children[$0.shape].isEmpty }
            if !feed.isEmpty {
                let base = draftCache.length
                let logits = try draft.forward(
                    tokens: feed.map { draftTree.tokens[$0.node] },
                    positions: feed.map { prefix + draftTree.depths[$0.node] },
                    visibility: feed.indices.map { [$0] }, cache: draftCache, logitRows: Array(feed.indices),
                    treeBase: prefix,
                    cacheVisibility: feed.map { item in ancestors[item.node].compactMap { draftRow[$0] } })
                telemetry.draftPasses += 1
                for (index, item) in feed.enumerated() {
                    draftRow[item.node] = base + index
                    vectors[item.node] = try process(logits[index], path: paths[item.node])
                }
            }
            level = next
        }
        telemetry.draftSeconds += Self.seconds(since: draftStart)
        let count = draftTree.nodeCount
        let (targetVectors, result) = try verifyTree(
            draftTree, ancestors: ancestors, paths: paths, prefix: prefix, rule: nodeVerifier ?? TokenVerifier())
        if treeOptimum && !settings.isGreedy {
            recordTreeOptimum(draftTree, targetVectors, accepted: result.acceptedNodes)
        }
        // Commit: the root and the accepted nodes, in both caches.
        let path = [0] + result.acceptedNodes
        draftCache.commit(prefix: prefix, kept: path.compactMap { draftRow[$0].map { $0 - prefix } })
        if let last = path.last, draftRow[last] == nil { draftBacklog = [draftTree.tokens[last]] }
        return finishRound(
            prefix: prefix, path: path, result: result, drafted: count - 1, depths: draftTree.depths.max() ?? 0)
    }
}

extension SpeculativeDecoder {
    /// A suffix round (no draft model): the ``SuffixDrafter``'s tree of continuations copied from the text, one
    /// target pass over it, the walk with ``CandidateVerifier`` at every branching node (token verification against
    /// the point mass at one-child nodes, the same rule), the commit of the accepted path. A chain-shaped proposal
    /// runs as an n-gram round (where block verification applies), none as a plain step.
    ///
    /// `given`: the tree to verify (the adaptive mode's cut; it must fit the cache), else the drafter's own. With a
    /// draft model the draft is not run: the root and the accepted tokens join the rows it will be fed next.
    /// `acceptedNodes`: the tree indices the walk accepted.
    func suffixRound(proposal given: SuffixDrafter.Proposal? = nil, acceptedNodes: inout [Int]) throws -> [Int] {
        let prefix = targetCache.length
        let room = targetCache.capacity - prefix - 1
        if room < 0 { throw ModelError.contextOverflow(needed: prefix + 1, capacity: targetCache.capacity) }
        let proposal: SuffixDrafter.Proposal
        if let given {
            if given.tokens.count > room {
                throw ModelError.contextOverflow(
                    needed: prefix + 1 + given.tokens.count, capacity: targetCache.capacity)
            }
            proposal = given
        } else {
            let draftStart = ContinuousClock.now
            proposal = SuffixDrafter.propose(
                history: history, longest: ngramLongest, nodes: min(suffixNodes, room), depth: depth)
            telemetry.draftSeconds += Self.seconds(since: draftStart)
        }
        if proposal.isChain {
            let emitted = try ngramRound(proposal: proposal.tokens)
            acceptedNodes = Array(0..<(emitted.count - 1)).map { $0 + 1 }
            return emitted
        }
        let roundStart = ContinuousClock.now
        defer { telemetry.roundSeconds += Self.seconds(since: roundStart) }
        // The tree: each branching node's candidates in rank order, with the uniform vector over them as its stored
        // draft (a one-child node's is the point mass its token verification reads; the candidate rule reads none).
        var draftTree = DraftTree(rootToken: root)
        var below = [[Int]](repeating: [], count: proposal.tokens.count + 1)
        for (index, parent) in proposal.parents.enumerated() { below[parent].append(index) }
        for node in 0...proposal.tokens.count where !below[node].isEmpty {
            let candidates = below[node].map { proposal.tokens[$0] }
            var vector = [Double](repeating: 0, count: target.vocabularySize)
            for token in candidates { vector[token] = 1 / Double(candidates.count) }
            let added = draftTree.expand(node, draft: vector, law: .independent, childTokens: candidates)
            if added != below[node].map({ $0 + 1 }) { throw ModelError.invalid(path: "suffix", reason: "tree order") }
        }
        let count = draftTree.nodeCount
        var ancestors: [[Int]] = [[]]
        var paths: [[Int]] = [[]]
        for node in 1..<count {
            let parent = draftTree.parents[node]
            ancestors.append(ancestors[parent] + [parent])
            paths.append(paths[parent] + [draftTree.tokens[node]])
        }
        let (_, result) = try verifyTree(
            draftTree, ancestors: ancestors, paths: paths, prefix: prefix, rule: CandidateVerifier())
        telemetry.suffixTreeRounds += 1
        acceptedNodes = result.acceptedNodes
        if draft != nil {
            draftBacklog += [root] + result.acceptedNodes.map { draftTree.tokens[$0] }
            telemetry.lookupRounds += 1
            telemetry.lookupAccepted += result.acceptedNodes.count
        }
        return finishRound(
            prefix: prefix, path: [0] + result.acceptedNodes, result: result, drafted: count - 1,
            depths: draftTree.depths.max() ?? 0)
    }
}

extension SpeculativeDecoder {
    /// The verification half of a tree round, shared by draft-model and suffix trees: one target pass over the tree
    /// (each node sees the committed text, its ancestors and itself), the target's vectors along each node's path,
    /// and the walk — greedy at temperature 0, else `rule` at every node on this step's uniforms. At temperature 0
    /// with no penalty the walk reads the logits' argmaxes and no vectors are returned.
    func verifyTree(
        _ draftTree: DraftTree, ancestors: [[Int]], paths: [[Int]], prefix: Int, rule: any NodeVerifier
    ) throws -> (targetVectors: [[Double]], result: TreeWalkResult) {
        let count = draftTree.nodeCount
        let verifyStart = ContinuousClock.now
        let logits = try target.forward(
            tokens: draftTree.tokens, positions: draftTree.depths.map { prefix + $0 },
            visibility: (0..<count).map { ancestors[$0] + [$0] }, cache: targetCache, logitRows: Array(0..<count))
        telemetry.targetPassSeconds += Self.seconds(since: verifyStart)
        passLogits = logits
        if fastGreedy {
            // Temperature 0 with no penalty: each reached row's argmax, no distribution built (no vectors returned).
            var node = 0
            var accepted: [Int] = []
            while true {
                let best = try SamplingSettings.greedyToken(logits[node])
                if let child = draftTree.children[node].first(where: { draftTree.tokens[$0] == best }) {
                    accepted.append(child)
                    node = child
                    continue
                }
                let result = TreeWalkResult(
                    acceptedNodes: accepted, emittedTokens: accepted.map { draftTree.tokens[$0] } + [best],
                    endedWithBonus: draftTree.children[node].isEmpty)
                step += 1
                telemetry.countRanks(tree: draftTree, accepted: accepted)
                return ([], result)
            }
        }
        let targetVectors = try (0..<count).map { try process(logits[$0], path: paths[$0]) }
        let result: TreeWalkResult
        if settings.isGreedy {
            result = try TreeWalk.greedyWalk(tree: draftTree, target: targetVectors)
        } else {
            var uniforms = random.roundStream(step: step)
            var decision = NodeDecision()
            result = try TreeWalk.walk(
                tree: draftTree, target: targetVectors, verifier: { _ in rule }, decision: &decision, using: &uniforms)
        }
        step += 1
        telemetry.countRanks(tree: draftTree, accepted: result.acceptedNodes)
        return (targetVectors, result)
    }
}
