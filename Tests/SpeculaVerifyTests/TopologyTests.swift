import Foundation
import SpeculaVerify
import Testing

@Suite("Tree topologies, masks, Sequoia trees, the sampled walk")
struct TopologyTests {
    @Test func standardShapes() throws {
        #expect(try TreeTopology.chain(4).draftCount == 4)
        #expect(try TreeTopology.chain(4).depth == 4)
        for (levels, drafts) in [(2, 2), (3, 6), (4, 14), (5, 30)] {
            #expect(try TreeTopology.binary(levels: levels).draftCount == drafts)
        }
        let eagle = try TreeTopology.eagle()
        #expect(eagle.draftCount == 25)
        let perDepth = (1...5).map { depth in eagle.paths.filter { $0.count == depth }.count }
        #expect(perDepth == [4, 8, 8, 3, 2])
        #expect(try TreeTopology.complete(branching: 3, depth: 2).draftCount == 12)
    }

    /// §6.2's mask for the complete binary tree of 7 nodes.
    @Test func binaryMaskAndPositions() throws {
        let topology = try TreeTopology.binary(levels: 3)
        let expected = [
            "1......", "11.....", "1.1....", "11.1...", "11..1..", "1.1..1.", "1.1...1",
        ]
        let mask = topology.attentionMask.map { row in String(row.map { $0 ? "1" : "." }) }
        #expect(mask == expected)
        #expect(topology.positionIds(rootPosition: 10) == [10, 11, 11, 12, 12, 12, 12])
        #expect(topology.parents == [-1, 0, 0, 1, 1, 2, 2])
    }

    @Test func badTreesAreRejected() {
        #expect(throws: VerifyError.self) { try TreeTopology(paths: [[0, 0]]) }
        #expect(throws: VerifyError.self) { try TreeTopology(paths: [[1]]) }
        #expect(throws: VerifyError.self) { try TreeTopology(paths: [[-1]]) }
        #expect(throws: VerifyError.self) { try TreeTopology.chain(0) }
        #expect(throws: VerifyError.self) { try TreeTopology.complete(branching: 10, depth: 10) }
        #expect(throws: VerifyError.self) { try TreeTopology.json(Data("{\"nodes\": 3}".utf8)) }
        #expect(throws: VerifyError.self) { try TreeTopology.json(Data("[[0], [0, 1]]".utf8)) }
    }

    @Test func jsonTrees() throws {
        let topology = try TreeTopology.json(Data("[[0], [1], [0, 0]]".utf8))
        #expect(topology.paths == [[], [0], [1], [0, 0]])
        let wrapped = try TreeTopology.json(Data("{\"paths\": [[0], [0, 0]]}".utf8))
        #expect(wrapped == (try TreeTopology.chain(2)))
    }

    /// The Sequoia DP against brute force over every tree of up to 6 nodes with at most 3 children per node.
    @Test func sequoiaIsOptimalOnSmallTrees() throws {
        let acceptance = [0.484, 0.138, 0.05]
        let planner = try SequoiaPlanner(acceptance: acceptance, maxNodes: 6, maxLevels: 4)
        let shapes = try allShapes(depth: 3, branching: 3, maxNodes: 6).map { try TreeTopology(paths: $0) }
        for nodes in 1...6 {
            let tree = try planner.tree(nodes: nodes, levels: 4)
            #expect(tree.nodeCount == nodes)
            let value = Self.value(tree, acceptance)
            #expect(abs(value - planner.value(nodes: nodes, levels: 4)) < 1e-12)
            let best = shapes.filter { $0.nodeCount == nodes }.map { Self.value($0, acceptance) }.max() ?? 0
            #expect(abs(value - best) < 1e-12, "\(nodes) nodes: DP \(value), brute force \(best)")
        }
        // A non-monotone vector longer than any node's possible children (ranks past budget − 1 are not planned):
        // every tree of up to 5 nodes, any depth, against the planner with fewer levels than nodes.
        let uneven = [0.1, 0.6, 0.2, 0.9, 0.95, 0.99, 0.7]
        let unevenPlanner = try SequoiaPlanner(acceptance: uneven, maxNodes: 5, maxLevels: 9)
        let unevenShapes = try allShapes(depth: 4, branching: 4, maxNodes: 5).map { try TreeTopology(paths: $0) }
        for nodes in 1...5 {
            for levels in 1...6 {
                let fitting = unevenShapes.filter { $0.nodeCount == nodes && $0.depth < levels }
                let best = fitting.map { Self.value($0, uneven) }.max()
                if let best {
                    let tree = try unevenPlanner.tree(nodes: nodes, levels: levels)
                    #expect(tree.nodeCount == nodes && tree.depth < levels)
                    #expect(abs(Self.value(tree, uneven) - best) < 1e-12, "\(nodes) nodes, \(levels) levels")
                    #expect(abs(unevenPlanner.value(nodes: nodes, levels: levels) - best) < 1e-12)
                } else {
                    #expect(throws: VerifyError.self) { try unevenPlanner.tree(nodes: nodes, levels: levels) }
                }
            }
        }
        #expect(throws: VerifyError.self) { try unevenPlanner.tree(nodes: 5, levels: 10) }
        // With a strong first child the best 4-node tree is a chain; with equal ranks, a star.
        #expect(
            try SequoiaPlanner(acceptance: [0.9, 0.05], maxNodes: 4, maxLevels: 4).tree(nodes: 4, levels: 4)
                == (try TreeTopology.chain(3)))
        #expect(
            try SequoiaPlanner(acceptance: [0.3, 0.3, 0.3], maxNodes: 4, maxLevels: 4).tree(nodes: 4, levels: 4)
                == (try TreeTopology(paths: [[0], [1], [2]])))
    }

    static func value(_ topology: TreeTopology, _ acceptance: [Double]) -> Double {
        var reach = [1.0]
        for node in 1..<topology.nodeCount {
            let rank = topology.ranks[node]
            reach.append(reach[topology.parents[node]] * (rank < acceptance.count ? acceptance[rank] : 0))
        }
        return reach.reduce(0, +)
    }

    /// The sampled walk over a drafted tree: greedy walk at T = 0 picks the argmax path, and short-support
    /// pruning drops missing ranks with their subtrees.
    @Test func draftingAndWalking() throws {
        let topology = try TreeTopology.complete(branching: 3, depth: 2)
        var generator = SplitMix64(seed: 9)
        // The draft is one-hot on token 1 after every prefix: under L2 each node gets only one child.
        let tree = try DraftTree.draft(
            topology: topology, rootToken: 0, law: { _ in .withoutReplacement },
            draftDistribution: { _ in [0, 1, 0] }, using: &generator)
        #expect(tree.nodeCount == 3)
        #expect(tree.tokens == [0, 1, 1])
        #expect(try tree.topology() == (try TreeTopology.chain(2)))
        // Target one-hot on 1: the greedy walk accepts the whole chain and adds the bonus argmax.
        let target = [[Double]](repeating: [0, 1, 0], count: 3)
        let greedy = try TreeWalk.greedyWalk(tree: tree, target: target)
        #expect(greedy.emittedTokens == [1, 1, 1])
        var decision = NodeDecision()
        let sampled = try TreeWalk.walk(
            tree: tree, target: target, verifier: { _ in RRSWithoutReplacementVerifier() }, decision: &decision,
            using: &generator)
        #expect(sampled.emittedTokens == [1, 1, 1])
        #expect(sampled.endedWithBonus)
        let block = try TreeWalk.blockWalk(tree: tree, target: target, using: &generator)
        #expect(block.emittedTokens == [1, 1, 1])
    }
}
