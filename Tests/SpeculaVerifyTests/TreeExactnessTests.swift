import SpeculaVerify
import Testing

/// A random context-dependent model pair on a tiny vocabulary: a target and a draft vector for every prefix,
/// derived from a hash of the prefix, so the same prefix always gives the same vectors.
struct TinyModel: Sendable {
    var vocabularySize: Int
    var seed: UInt64

    func vectors(_ prefix: [Int]) -> (target: [Double], draft: [Double]) {
        var key = seed
        for token in prefix { key = SplitMix64.mix(key ^ UInt64(token + 1) &* 0x100_0000_01B3) }
        var generator = SplitMix64(seed: key)
        let target = Fixture.distribution(size: vocabularySize, using: &generator)
        let draft = Fixture.distribution(size: vocabularySize, using: &generator)
        return (target, draft)
    }

    /// The target's joint law of the next `length` tokens after `context`.
    func targetJoint(context: [Int], length: Int) -> [[Int]: Double] {
        var law: [[Int]: Double] = [[]: 1]
        for _ in 0..<length {
            var next: [[Int]: Double] = [:]
            for (sequence, probability) in law {
                let p = vectors(context + sequence).target
                for token in 0..<vocabularySize where p[token] > 0 { next[sequence + [token]] = probability * p[token] }
            }
            law = next
        }
        return law
    }

    /// Pads each emitted sequence to `length` tokens by sampling further tokens from the target (§7).
    func padded(_ law: [[Int]: Double], context: [Int], length: Int) -> [[Int]: Double] {
        var result: [[Int]: Double] = [:]
        for (sequence, probability) in law {
            if sequence.count >= length {
                result[Array(sequence.prefix(length)), default: 0] += probability
                continue
            }
            for (tail, tailProbability) in targetJoint(context: context + sequence, length: length - sequence.count) {
                result[sequence + tail, default: 0] += probability * tailProbability
            }
        }
        return result
    }
}

func lawDistance(_ a: [[Int]: Double], _ b: [[Int]: Double]) -> Double {
    Set(a.keys).union(b.keys).map { abs((a[$0] ?? 0) - (b[$0] ?? 0)) }.max() ?? 0
}

/// Every ordered tree with at most `branching` children per node and depth at most `depth`, as child-rank paths.
func allShapes(depth: Int, branching: Int, maxNodes: Int = .max) -> [[[Int]]] {
    if depth == 0 { return [[[]]] }
    let subtrees = allShapes(depth: depth - 1, branching: branching, maxNodes: maxNodes - 1)
    var result: [[[Int]]] = []
    func build(_ childCount: Int) {
        func combine(_ rank: Int, _ paths: [[Int]]) {
            if paths.count > maxNodes { return }
            if rank == childCount {
                result.append(paths)
                return
            }
            for subtree in subtrees { combine(rank + 1, paths + subtree.map { [rank] + $0 }) }
        }
        combine(0, [[]])
    }
    for childCount in 0...branching { build(childCount) }
    return result
}

@Suite("Trees: exact losslessness of the walk, block verification, topology")
struct TreeExactnessTests {
    /// The law of the tokens a walk emits from topology node `node` after `context`, enumerating each node's draft
    /// tuples and the verifier's outcome law, exactly as ``TreeWalk/walk`` would act.
    static func walkLaw(
        topology: TreeTopology, node: Int, context: [Int], model: TinyModel, rule: (Int) -> any NodeVerifier
    ) throws -> [[Int]: Double] {
        let (p, q) = model.vectors(context)
        let wanted = topology.children[node]
        if wanted.isEmpty {
            var law: [[Int]: Double] = [:]
            for token in p.indices where p[token] > 0 { law[[token]] = p[token] }
            return law
        }
        let verifier: any NodeVerifier = wanted.count == 1 ? TokenVerifier() : rule(node)
        let tuples =
            wanted.count == 1
            ? try DraftLaw.independent.tuples(draft: q, count: 1)
            : try verifier.draftLaw.tuples(draft: q, count: wanted.count)
        var decision = NodeDecision()
        var law: [[Int]: Double] = [:]
        for tuple in tuples {
            let drafted: any NodeVerifier = tuple.tokens.count == 1 ? TokenVerifier() : verifier
            try drafted.decide(target: p, draft: q, drafts: tuple.tokens, into: &decision)
            let outcome = decision.outcomeLaw(target: p)
            for (rank, probability) in outcome.acceptance.enumerated() where probability > 0 {
                let token = tuple.tokens[rank]
                let below = try walkLaw(
                    topology: topology, node: wanted[rank], context: context + [token], model: model, rule: rule)
                for (sequence, chance) in below {
                    law[[token] + sequence, default: 0] += tuple.probability * probability * chance
                }
            }
            for (token, probability) in outcome.correction.enumerated() where probability > 0 {
                law[[token], default: 0] += tuple.probability * probability
            }
        }
        return law
    }

    static let rules: [any NodeVerifier] = [
        RRSVerifier(), RRSWithoutReplacementVerifier(), KSEQVerifier(), GreedyVerifier(),
        OptimalTransportVerifier(law: .independent),
    ]

    /// A per-node rule mixing verifiers: SpecHub where a node has two children, the others in rotation.
    static func mixedRule(_ topology: TreeTopology, offset: Int) -> (Int) -> any NodeVerifier {
        { node in
            let count = topology.children[node].count
            if count == 2 && (node + offset) % 3 == 0 { return SpecHubVerifier() }
            let rule = rules[(node + offset) % rules.count]
            if rule.draftLaw == .greedy && count < 2 { return RRSVerifier() }
            return rule
        }
    }

    @Test func everyBinaryShapeUpToDepthThree() throws {
        let shapes = allShapes(depth: 3, branching: 2)
        #expect(shapes.count == 183)
        var checked = 0
        for (index, paths) in shapes.enumerated() {
            let topology = try TreeTopology(paths: paths)
            let model = TinyModel(vocabularySize: 3, seed: UInt64(index))
            let rules: [(Int) -> any NodeVerifier] = [
                { _ in RRSVerifier() }, { _ in RRSWithoutReplacementVerifier() }, { _ in SpecHubVerifier() },
                { _ in KSEQVerifier() }, { _ in GreedyVerifier() }, Self.mixedRule(topology, offset: index),
            ]
            for rule in rules {
                let law = try Self.walkLaw(topology: topology, node: 0, context: [], model: model, rule: rule)
                let length = topology.depth + 1
                let distance = lawDistance(
                    model.padded(law, context: [], length: length), model.targetJoint(context: [], length: length))
                #expect(distance < 1e-12, "shape \(paths): off by \(distance)")
                checked += 1
            }
        }
        #expect(checked == 183 * 6)
    }

    /// The production code itself, not a model of it: ``DraftTree/draft(topology:rootToken:law:draftDistribution:using:)``
    /// drafts the whole tree and ``TreeWalk/walk(tree:target:verifier:decision:using:)`` walks it, every random
    /// choice of both enumerated (``Enumeration/law(maximumPaths:_:)``). The emitted tokens' padded law must be the
    /// target's joint. (The tests above check ``walkLaw``, a re-derivation of the walk; this one checks the walk.)
    @Test func theProductionDraftAndWalkEnumerated() throws {
        let shapes =
            allShapes(depth: 3, branching: 2, maxNodes: 6) + [
                try TreeTopology.complete(branching: 3, depth: 1).paths, [[0], [1], [2], [0, 0]],
            ]
        let rules: [any NodeVerifier] = [
            RRSVerifier(), RRSWithoutReplacementVerifier(), SpecHubVerifier(), KSEQVerifier(), GreedyVerifier(),
        ]
        var checked = 0
        for (index, paths) in shapes.enumerated() {
            let topology = try TreeTopology(paths: paths)
            let model = TinyModel(vocabularySize: 3, seed: 7_000 &+ UInt64(index))
            let length = topology.depth + 1
            for rule in rules {
                if rule is SpecHubVerifier && topology.children.contains(where: { $0.count > 2 }) { continue }
                let law = try Enumeration.law(maximumPaths: 2_000_000) { source -> [Int] in
                    var random = source
                    let tree = try DraftTree.draft(
                        topology: topology, rootToken: 0, law: { _ in rule.draftLaw },
                        draftDistribution: { path in model.vectors(Array(path.dropFirst())).draft }, using: &random)
                    let target = (0..<tree.nodeCount).map { model.vectors(Array(tree.path(to: $0).dropFirst())).target }
                    var decision = NodeDecision()
                    return try TreeWalk.walk(
                        tree: tree, target: target, verifier: { _ in rule }, decision: &decision, using: &random
                    ).emittedTokens
                }
                let distance = lawDistance(
                    model.padded(law, context: [], length: length), model.targetJoint(context: [], length: length))
                #expect(distance < 1e-12, "shape \(paths), \(rule.name): off by \(distance)")
                checked += 1
            }
        }
        #expect(checked > 100, "\(checked) shape × verifier cases")
    }

    @Test(arguments: ["ternary", "eagle-like", "mixed"])
    func widerShapes(name: String) throws {
        let paths: [[Int]]
        switch name {
        case "ternary": paths = try TreeTopology.complete(branching: 3, depth: 2).paths
        case "eagle-like": paths = [[0], [1], [2], [0, 0], [0, 1], [1, 0], [0, 0, 0], [0, 0, 1]]
        default: paths = [[0], [1], [2], [0, 0], [0, 1], [0, 2], [1, 0], [2, 0], [2, 1], [0, 0, 0]]
        }
        let topology = try TreeTopology(paths: paths)
        for vocabularySize in [3, 4] {
            let model = TinyModel(vocabularySize: vocabularySize, seed: 99)
            for offset in 0..<5 {
                let law = try Self.walkLaw(
                    topology: topology, node: 0, context: [], model: model,
                    rule: Self.mixedRule(topology, offset: offset))
                let length = topology.depth + 1
                let distance = lawDistance(
                    model.padded(law, context: [], length: length), model.targetJoint(context: [], length: length))
                #expect(distance < 1e-12, "\(name) V=\(vocabularySize): off by \(distance)")
            }
        }
    }

    /// Block verification on random context-dependent models, |V| ≤ 3, γ ≤ 3: the padded joint of the first γ + 1
    /// tokens equals the target's (§7).
    @Test(arguments: [2, 3])
    func blockVerificationIsLossless(vocabularySize: Int) throws {
        for gamma in 1...3 {
            for seed in 0..<8 {
                let model = TinyModel(vocabularySize: vocabularySize, seed: UInt64(100 * gamma + seed))
                var law: [[Int]: Double] = [:]
                func visit(_ block: [Int], _ probability: Double) throws {
                    if block.count == gamma {
                        let targets = (0...gamma).map { model.vectors(Array(block.prefix($0))).target }
                        let drafts = (0..<gamma).map { model.vectors(Array(block.prefix($0))).draft }
                        let decision = try BlockVerifier.decide(target: targets, draft: drafts, drafts: block)
                        for (accepted, chance) in decision.acceptedLengthLaw.enumerated() where chance > 0 {
                            let residual = decision.residual(accepted: accepted)
                            let mass = residual.reduce(0, +)
                            for token in residual.indices where residual[token] > 0 {
                                law[Array(block.prefix(accepted)) + [token], default: 0] +=
                                    probability * chance * residual[token] / mass
                            }
                        }
                        return
                    }
                    let q = model.vectors(block).draft
                    for token in q.indices where q[token] > 0 { try visit(block + [token], probability * q[token]) }
                }
                try visit([], 1)
                let distance = lawDistance(
                    model.padded(law, context: [], length: gamma + 1), model.targetJoint(context: [], length: gamma + 1)
                )
                #expect(distance < 1e-12, "γ=\(gamma) seed \(seed): off by \(distance)")
            }
        }
    }
}
