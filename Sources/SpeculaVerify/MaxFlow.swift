/// Maximum flow by Dinic's algorithm in `Double`, for the compact max-flow form of the optimal-transport problem
/// (ALGORITHMS.md §4.8): source → draft set `S` (capacity `Q(S)`), `S` → each token of `S` (unbounded), token →
/// sink (capacity `p(y)`). The value is `α*` for the draft law; an optimal flow gives the OTM verifier.
///
/// Residual capacities at or below ``tolerance`` count as saturated.
/// - Complexity: O(E·V²) in general; on these unit-depth networks a few BFS phases.
public struct MaxFlow: Sendable {
    public static let tolerance = 1e-15

    struct Edge: Sendable {
        var to: Int
        var capacity: Double
        var flow: Double
    }

    private(set) var edges: [Edge] = []
    private(set) var adjacency: [[Int]]

    public init(nodeCount: Int) {
        adjacency = [[Int]](repeating: [], count: nodeCount)
    }

    /// Adds an edge and returns its id (for reading its flow later).
    @discardableResult
    public mutating func addEdge(from: Int, to: Int, capacity: Double) -> Int {
        let id = edges.count
        edges.append(Edge(to: to, capacity: capacity, flow: 0))
        adjacency[from].append(id)
        edges.append(Edge(to: from, capacity: 0, flow: 0))
        adjacency[to].append(id + 1)
        return id
    }

    /// The flow on edge `id` after ``solve(source:sink:)``.
    public func flow(onEdge id: Int) -> Double { edges[id].flow }

    /// Pushes a maximum flow from `source` to `sink` and returns its value.
    public mutating func solve(source: Int, sink: Int) -> Double {
        var total = 0.0
        let nodeCount = adjacency.count
        while true {
            var level = [Int](repeating: -1, count: nodeCount)
            level[source] = 0
            var queue = [source]
            var head = 0
            while head < queue.count {
                let node = queue[head]
                head += 1
                for id in adjacency[node] where level[edges[id].to] < 0 && residual(id) > MaxFlow.tolerance {
                    level[edges[id].to] = level[node] + 1
                    queue.append(edges[id].to)
                }
            }
            if level[sink] < 0 { return total }
            var next = [Int](repeating: 0, count: nodeCount)
            while true {
                let pushed = push(source, sink, .infinity, &level, &next)
                if pushed <= MaxFlow.tolerance { break }
                total += pushed
            }
        }
    }

    private func residual(_ id: Int) -> Double { edges[id].capacity - edges[id].flow }

    private mutating func push(_ node: Int, _ sink: Int, _ limit: Double, _ level: inout [Int], _ next: inout [Int])
        -> Double
    {
        if node == sink { return limit }
        while next[node] < adjacency[node].count {
            let id = adjacency[node][next[node]]
            let to = edges[id].to
            let available = residual(id)
            if level[to] == level[node] + 1 && available > MaxFlow.tolerance {
                let pushed = push(to, sink, min(limit, available), &level, &next)
                if pushed > 0 {
                    edges[id].flow += pushed
                    edges[id ^ 1].flow -= pushed
                    return pushed
                }
            }
            next[node] += 1
        }
        return 0
    }
}

/// An optimal coupling between a draft law's draft sets and the target, from the compact max-flow (§4.8).
public struct OptimalTransportPlan: Sendable {
    /// The distinct draft sets (sorted token lists) and their masses `Q(S)`.
    public let sets: [[Int]]
    public let setMasses: [Double]
    /// `flows[s][k]` = flow from set `s` to its `k`-th token (ascending id).
    public let flows: [[Double]]
    /// The max-flow value: `α*` of the law for this target.
    public let value: Double

    /// The largest number of distinct draft sets the plan is built for (about |V| = 100 with n = 3).
    public static let setLimit = 200_000

    /// Builds the plan for drafts of law `law` with `count` drafts from `draft`, against `target`.
    /// - Complexity: enumerates every draft tuple (O(|supp q|ⁿ)), then one max-flow.
    public init(law: DraftLaw, draft: [Double], count: Int, target: [Double]) throws {
        try Probability.validatePair(target: target, draft: draft)
        var support = 0
        for value in draft where value > 0 { support += 1 }
        var estimate = 1.0
        for _ in 0..<count { estimate *= Double(max(support, 1)) }
        if estimate > Double(OptimalTransportPlan.setLimit) {
            throw VerifyError.tooLarge(
                what: "optimal-transport plan (draft tuples for \(count) drafts over \(support) tokens)",
                size: Int(min(estimate, Double(Int.max / 2))), limit: OptimalTransportPlan.setLimit)
        }
        var masses: [[Int]: Double] = [:]
        for tuple in try law.tuples(draft: draft, count: count) {
            masses[Array(Set(tuple.tokens)).sorted(), default: 0] += tuple.probability
        }
        let sets = masses.keys.sorted { $0.lexicographicallyPrecedes($1) }
        let vocabularySize = target.count
        // Nodes: 0 source, 1 sink, 2..<2+|V| tokens, then the sets.
        var network = MaxFlow(nodeCount: 2 + vocabularySize + sets.count)
        for token in 0..<vocabularySize where target[token] > 0 {
            network.addEdge(from: 2 + token, to: 1, capacity: target[token])
        }
        var edgeIds: [[Int]] = []
        for (index, set) in sets.enumerated() {
            let node = 2 + vocabularySize + index
            network.addEdge(from: 0, to: node, capacity: masses[set] ?? 0)
            edgeIds.append(set.map { network.addEdge(from: node, to: 2 + $0, capacity: .infinity) })
        }
        value = network.solve(source: 0, sink: 1)
        self.sets = sets
        setMasses = sets.map { masses[$0] ?? 0 }
        flows = edgeIds.map { ids in ids.map { max(network.flow(onEdge: $0), 0) } }
    }
}

/// The optimal-transport verifier, OTM (SpecTr, arXiv:2310.15141), for any draft law on a small vocabulary.
///
/// Built from an optimal flow `f` of the compact max-flow (§4.8): for drafts with set `S`, accept token `y ∈ S`
/// with probability `f(S, y)/Q(S)`, as division-free tests over `S`'s tokens in ascending id; otherwise emit
/// `y ~ norm((p − Σ_S f(S, ·))₊)`. The acceptance is the max-flow value, `α*` of the law. Per-child acceptance
/// depends on which optimal flow the solver returns.
///
/// - Complexity: the plan (one max-flow over all draft sets) is rebuilt on each call: small vocabularies only.
public struct OptimalTransportVerifier: NodeVerifier {
    public let draftLaw: DraftLaw
    public init(law: DraftLaw) { draftLaw = law }
    public var name: String { "otm" }
    public func supports(draftCount count: Int) -> Bool {
        switch draftLaw {
        case .hubPair: return count == 2
        case .greedy: return count >= 2
        default: return count >= 1
        }
    }

    public func decide(target: [Double], draft: [Double], drafts: [Int], into decision: inout NodeDecision) throws {
        try validate(target: target, draft: draft, drafts: drafts)
        let plan = try OptimalTransportPlan(law: draftLaw, draft: draft, count: drafts.count, target: target)
        try decide(plan: plan, target: target, drafts: drafts, into: &decision)
    }

    /// The decision for a precomputed plan (the same `p`, `q` and draft count).
    public func decide(plan: OptimalTransportPlan, target: [Double], drafts: [Int], into decision: inout NodeDecision)
        throws
    {
        let set = Array(Set(drafts)).sorted()
        guard let setIndex = plan.sets.firstIndex(of: set) else {
            throw VerifyError.draftsNotFromLaw(verifier: name, reason: "draft set \(set) has probability 0")
        }
        decision.reset(vocabularySize: target.count, drafts: drafts)
        var remaining = plan.setMasses[setIndex]
        for (position, token) in set.enumerated() {
            let flow = plan.flows[setIndex][position]
            guard let child = drafts.firstIndex(of: token) else { continue }
            decision.tests.append(NodeTest(child: child, numerator: flow, denominator: remaining))
            remaining -= flow
        }
        var delivered = [Double](repeating: 0, count: target.count)
        for (index, set) in plan.sets.enumerated() {
            for (position, token) in set.enumerated() { delivered[token] += plan.flows[index][position] }
        }
        for token in target.indices { decision.residual[token] = max(target[token] - delivered[token], 0) }
    }
}
