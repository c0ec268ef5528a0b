/// Suffix drafting: a tree of continuations copied from the text itself, no model.
///
/// The text's longest suffix (up to `longest` tokens) that occurred earlier is matched at every earlier occurrence,
/// not only the latest as ``NGramDrafter`` does; the continuations after all of them form a trie, each node counting
/// the occurrences whose continuation starts with its path. The proposal keeps the `nodes` trie nodes with the
/// highest counts (ties: the shallower, then the one met first, the most recent occurrence's), which is always a
/// tree: a node's count is at most its parent's. So where the text continued in several ways after the same
/// context — a variable name used with different members, a repeated line with different endings — the tree holds
/// each way, ranked by how often it occurred; where it continued one way, it is the n-gram chain. This is the
/// proposal a suffix tree over the text gives (SuffixDecoding, Oliaro et al. 2024, match the longest suffix and
/// score continuations by frequency); here it comes from a scan, O(`history.count` · `longest`) per round.
public enum SuffixDrafter {
    /// A proposed tree after the root: node `i` (tree index `i + 1`; the root is 0) holds `tokens[i]` below tree
    /// index `parents[i]`, in breadth-first order (every parent before its children, siblings by rank).
    public struct Proposal: Sendable, Equatable {
        public var tokens: [Int] = []
        public var parents: [Int] = []
        /// Occurrences of the matched suffix whose continuation starts with each node's path.
        public var counts: [Int] = []
        /// The length of the matched suffix (0: none matched).
        public var matchLength = 0
        /// The matched suffix's earlier occurrences.
        public var occurrences = 0

        public init() {}

        public var isChain: Bool {
            parents.enumerated().allSatisfy { $0.element == $0.offset }
        }

        /// Each node's share of its parent's occurrences (the root's are ``occurrences``): how often the text went
        /// on this way once it had reached the parent.
        public var shares: [Double] {
            tokens.indices.map { index in
                let parent = parents[index]
                let above = parent == 0 ? occurrences : counts[parent - 1]
                return above > 0 ? Double(counts[index]) / Double(above) : 0
            }
        }

        /// The tree cut to its `nodes` most frequent nodes (ties: the shallower, then the earlier in breadth-first
        /// order) — closed under parents, since a parent occurred at least as often as its child and is shallower —
        /// re-indexed in the same breadth-first order.
        public func pruned(to nodes: Int) -> Proposal {
            if nodes >= tokens.count { return self }
            var depth = [Int](repeating: 0, count: tokens.count)
            for index in tokens.indices { depth[index] = parents[index] == 0 ? 1 : depth[parents[index] - 1] + 1 }
            let kept = Set(
                tokens.indices.sorted { a, b in
                    if counts[a] != counts[b] { return counts[a] > counts[b] }
                    if depth[a] != depth[b] { return depth[a] < depth[b] }
                    return a < b
                }.prefix(max(0, nodes)))
            var cut = Proposal()
            cut.matchLength = matchLength
            cut.occurrences = occurrences
            var treeIndex = [0: 0]
            for index in tokens.indices where kept.contains(index) {
                guard let parent = treeIndex[parents[index]] else { continue }
                cut.tokens.append(tokens[index])
                cut.parents.append(parent)
                cut.counts.append(counts[index])
                treeIndex[index + 1] = cut.tokens.count
            }
            return cut
        }
    }

    /// How often the text went on as `chain` after its last `length` tokens: element 0 counts their earlier
    /// occurrences (as ``propose(history:longest:nodes:depth:minimumShare:)`` finds them), element `d` those whose
    /// next `d` tokens are `chain`'s first `d`. The shares of a lookup proposal (the latest occurrence's
    /// continuation) under the same counts as the suffix trees'.
    public static func agreement(history: [Int], length: Int, chain: [Int]) -> [Int] {
        var counts = [Int](repeating: 0, count: chain.count + 1)
        guard length > 0, length < history.count else { return counts }
        var start = history.count - length - 1
        while start >= 0 {
            if NGramDrafter.endsWith(history, occurrenceAt: start, length: length) {
                counts[0] += 1
                var d = 0
                while d < chain.count, start + length + d < history.count, history[start + length + d] == chain[d] {
                    d += 1
                    counts[d] += 1
                }
            }
            start -= 1
        }
        return counts
    }

    /// The share of the occurrences a node's continuation must have to be proposed (SuffixDecoding's minimum score):
    /// where a short suffix occurred often and continued many ways, no candidate is likely enough to pay its row.
    public static let minimumShareDefault = 0.1

    /// The tree after the text's longest earlier-seen suffix (from `longest` tokens down to 1), with at most `nodes`
    /// nodes and `depth` levels below the root, each continued by at least `minimumShare` of the occurrences; empty
    /// when no suffix occurs earlier.
    public static func propose(
        history: [Int], longest: Int, nodes budget: Int, depth maxDepth: Int,
        minimumShare: Double = minimumShareDefault
    ) -> Proposal {
        var proposal = Proposal()
        guard budget > 0, maxDepth > 0, longest > 0, history.count >= 2 else { return proposal }
        for n in stride(from: min(longest, history.count - 1), through: 1, by: -1) {
            let suffixStart = history.count - n
            // Earlier occurrences start at most one before the suffix (they may overlap it); latest first.
            var starts: [Int] = []
            var start = suffixStart - 1
            while start >= 0 {
                if NGramDrafter.endsWith(history, occurrenceAt: start, length: n) { starts.append(start) }
                start -= 1
            }
            if starts.isEmpty { continue }
            // The trie of continuations: node 0 the root.
            var token = [-1]
            var parent = [-1]
            var depth = [0]
            var count = [starts.count]
            var children: [[Int: Int]] = [[:]]
            for s in starts {
                var node = 0
                var position = s + n
                while position < history.count && depth[node] < maxDepth {
                    let next = history[position]
                    if let child = children[node][next] {
                        node = child
                    } else {
                        let child = token.count
                        token.append(next)
                        parent.append(node)
                        depth.append(depth[node] + 1)
                        count.append(0)
                        children.append([:])
                        children[node][next] = child
                        node = child
                    }
                    count[node] += 1
                    position += 1
                }
            }
            // The most frequent nodes, shallower first, then in creation order (closed under parents: a parent has
            // at least its child's count, is shallower and was created first; the share filter keeps that).
            let least = minimumShare * Double(starts.count)
            let ranked = (1..<token.count).filter { Double(count[$0]) >= least }.sorted { a, b in
                if count[a] != count[b] { return count[a] > count[b] }
                if depth[a] != depth[b] { return depth[a] < depth[b] }
                return a < b
            }
            let kept = Set(ranked.prefix(budget))
            var rank = [Int: Int]()
            for (position, node) in ranked.enumerated() { rank[node] = position }
            // Breadth first from the root, children by rank.
            var treeIndex = [0: 0]
            var queue = [0]
            var head = 0
            while head < queue.count {
                let node = queue[head]
                head += 1
                let below = children[node].values.filter { kept.contains($0) }.sorted {
                    rank[$0, default: 0] < rank[$1, default: 0]
                }
                for child in below {
                    proposal.tokens.append(token[child])
                    proposal.parents.append(treeIndex[node, default: 0])
                    proposal.counts.append(count[child])
                    treeIndex[child] = proposal.tokens.count
                    queue.append(child)
                }
            }
            proposal.matchLength = n
            proposal.occurrences = starts.count
            return proposal
        }
        return proposal
    }
}
