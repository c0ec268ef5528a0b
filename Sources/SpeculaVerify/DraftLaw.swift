#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// How the `n` drafts at one node are drawn from the draft distribution `q` (ALGORITHMS.md §4.1).
///
/// Each verifier is lossless for its own law; the tuple order is the child rank and must be kept.
public enum DraftLaw: String, Sendable, CaseIterable, Codable {
    /// L1: `n` independent draws from `q`; duplicates possible (SpecInfer, SpecTr).
    case independent
    /// L2: draws without replacement, by the exponential race, in draw order (RSD, Sequoia).
    case withoutReplacement
    /// L3: SpecHub's hub pair, `n = 2`: the hub `a = argmax q` and one other token.
    case hubPair
    /// L4: Hu et al.'s greedy law: the `n − 1` most likely tokens, then one draw from the rest.
    case greedy

    /// The number of children this law yields at a node whose topology asks for `requested` children: fewer only
    /// under L2 when `q` has fewer than `requested` tokens with positive mass (short support: never pad).
    public func draftCount(requested: Int, draft: [Double]) -> Int {
        switch self {
        case .withoutReplacement:
            var support = 0
            for value in draft where value > 0 { support += 1 }
            return min(requested, support)
        default:
            return requested
        }
    }

    /// Checks that the law can draw `count` drafts over a vocabulary of `vocabularySize`.
    public func validate(count: Int, vocabularySize: Int) throws {
        let name = "draft law \(rawValue)"
        switch self {
        case .independent, .withoutReplacement:
            if count < 1 { throw VerifyError.unsupportedDraftCount(verifier: name, count: count, supported: "n ≥ 1") }
        case .hubPair:
            if count != 2 { throw VerifyError.unsupportedDraftCount(verifier: name, count: count, supported: "n = 2") }
            if vocabularySize < 2 {
                throw VerifyError.unsupportedDraftCount(
                    verifier: name, count: count, supported: "a vocabulary of at least 2 tokens")
            }
        case .greedy:
            if count < 2 || count > vocabularySize {
                throw VerifyError.unsupportedDraftCount(
                    verifier: name, count: count, supported: "2 ≤ n ≤ vocabulary size \(vocabularySize)")
            }
        }
    }

    /// Draws the drafts at one node, in child-rank order.
    ///
    /// - Parameters:
    ///   - draft: the processed draft distribution `q` at the node.
    ///   - count: `n`, the children the topology asks for; L2 may return fewer (short support).
    /// - Complexity: O(n·|V|) for L1 and L4, O(|V|) for L2 and L3 (one exponential race).
    public func sample(draft: [Double], count: Int, using generator: inout some RandomSource) throws -> [Int] {
        try validate(count: count, vocabularySize: draft.count)
        switch self {
        case .independent:
            var drafts: [Int] = []
            // One sum serves every draw (the same vector each time).
            let total = Probability.sum(draft)
            for _ in 0..<count {
                guard let token = generator.categorical(draft, total: total) else {
                    throw VerifyError.zeroMass(what: "draft distribution")
                }
                drafts.append(token)
            }
            return drafts
        case .withoutReplacement:
            return generator.withoutReplacement(
                draft, count: draftCount(requested: count, draft: draft), includeZeroMass: false)
        case .hubPair:
            let hub = Probability.argmax(draft)
            let firstTwo = generator.withoutReplacement(draft, count: 2, includeZeroMass: true)
            return firstTwo[0] == hub ? [hub, firstTwo[1]] : [firstTwo[0], hub]
        case .greedy:
            let fixed = SamplingSettings.topIndices(draft, count: count - 1)
            let rest = DraftLaw.remainder(draft: draft, excluding: fixed)
            guard let last = generator.categorical(rest) else {
                throw VerifyError.zeroMass(what: "draft distribution outside the top \(count - 1)")
            }
            return fixed + [last]
        }
    }

    /// The exponential race: one uniform `u_x ∈ (0, 1]` per token, key `−ln(u_x)/q(x)` (`+∞` when `q(x) = 0`),
    /// and the `count` smallest keys in increasing order, which is the draw order. Ties among `+∞` keys go to the
    /// smallest id. Without `includeZeroMass`, tokens with `q = 0` are never drafted.
    static func race(
        draft: [Double], count: Int, includeZeroMass: Bool = false, using generator: inout some RandomNumberGenerator
    ) -> [Int] {
        if count <= 0 { return [] }
        var winners: [(key: Double, token: Int)] = []
        winners.reserveCapacity(count + 1)
        // Once `count` winners are held, a key must beat `cutoff` (the largest of theirs) to enter.
        var cutoff = Double.infinity
        // −ln u ≥ 1 − u, so a token whose lower bound already loses needs no logarithm (same race, exactly): the
        // bound is tested without a division, against the cutoff raised by a margin far above the product's rounding.
        var bound = Double.infinity
        draft.withUnsafeBufferPointer { q in
            for token in 0..<q.count {
                let uniform = generator.nextOpenUniform()
                let weight = q[token]
                let key: Double
                if weight > 0 {
                    if 1 - uniform >= bound * weight { continue }
                    key = -log(uniform) / weight
                } else if includeZeroMass {
                    key = .infinity
                } else {
                    continue
                }
                if winners.count == count {
                    if !(key < cutoff) { continue }
                    winners.removeLast()
                }
                var position = winners.count
                // Strict comparison keeps the earlier (smaller) id first among equal keys.
                while position > 0 && key < winners[position - 1].key { position -= 1 }
                winners.insert((key, token), at: position)
                if winners.count == count {
                    cutoff = winners[count - 1].key
                    bound = cutoff * (1 + 1e-12)
                }
            }
        }
        return winners.map(\.token)
    }

    /// `q′`: `q` restricted to the tokens outside `excluded`, renormalised by the sum of the remaining entries
    /// (never `1 − q(excluded)`). If that mass is zero, a point mass on the most likely token outside (ties:
    /// smallest id), as §4.1 defines for a degenerate `q′`.
    public static func remainder(draft: [Double], excluding excluded: [Int]) -> [Double] {
        var rest = draft
        for token in excluded { rest[token] = 0 }
        let mass = Probability.sum(rest)
        if mass > 0 {
            for index in rest.indices { rest[index] /= mass }
            return rest
        }
        let excludedSet = Set(excluded)
        var best = -1
        for token in draft.indices where !excludedSet.contains(token) {
            if best < 0 || draft[token] > draft[best] { best = token }
        }
        precondition(best >= 0, "no token left outside the excluded set")
        var pointMass = [Double](repeating: 0, count: draft.count)
        pointMass[best] = 1
        return pointMass
    }

    /// Every draft tuple this law can produce at a node, with its probability, in child-rank order.
    ///
    /// For exact tests and the max-flow `α*` on small vocabularies. Probabilities are exact products in `Double`;
    /// L2's conditional denominators are sums of the remaining entries.
    /// - Complexity: O(|supp q|ⁿ) tuples.
    public func tuples(draft: [Double], count: Int) throws -> [(tokens: [Int], probability: Double)] {
        try validate(count: count, vocabularySize: draft.count)
        let support = draft.indices.filter { draft[$0] > 0 }
        var result: [(tokens: [Int], probability: Double)] = []
        switch self {
        case .independent:
            func extend(_ prefix: [Int], _ probability: Double) {
                if prefix.count == count {
                    result.append((prefix, probability))
                    return
                }
                for token in support { extend(prefix + [token], probability * draft[token]) }
            }
            extend([], 1)
        case .withoutReplacement:
            let drawn = draftCount(requested: count, draft: draft)
            func extend(_ prefix: [Int], _ probability: Double) {
                if prefix.count == drawn {
                    result.append((prefix, probability))
                    return
                }
                var remaining = 0.0
                for token in support where !prefix.contains(token) { remaining += draft[token] }
                for token in support where !prefix.contains(token) {
                    extend(prefix + [token], probability * (draft[token] / remaining))
                }
            }
            extend([], 1)
        case .hubPair:
            let hub = Probability.argmax(draft)
            let rest = DraftLaw.remainder(draft: draft, excluding: [hub])
            for token in draft.indices where token != hub {
                if draft[token] > 0 { result.append(([token, hub], draft[token])) }
                if rest[token] > 0 { result.append(([hub, token], draft[hub] * rest[token])) }
            }
        case .greedy:
            let fixed = SamplingSettings.topIndices(draft, count: count - 1)
            let rest = DraftLaw.remainder(draft: draft, excluding: fixed)
            for token in rest.indices where rest[token] > 0 { result.append((fixed + [token], rest[token])) }
        }
        return result
    }
}
