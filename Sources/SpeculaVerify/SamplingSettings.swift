#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The sampling settings that turn logits into the processed distribution every verifier sees.
///
/// The processors run in one fixed order (ALGORITHMS.md §1.1), for target and draft alike:
/// 1. penalties on the logits of tokens already in the history: repetition (divide a positive logit by the
///    penalty, multiply a negative one, as CTRL and llama.cpp do), then presence (subtract once) and frequency
///    (subtract per occurrence);
/// 2. temperature: divide by `T`; `T = 0` is greedy, a one-hot on the argmax with the smallest id on ties, and
///    the filters below are skipped;
/// 3. softmax in `Double`;
/// 4. top-k: keep the `k` most probable tokens (ties: smaller id first);
/// 5. top-p: keep the smallest prefix of the same order whose mass reaches `p`;
/// 6. min-p: keep tokens with probability at least `minP` times the largest;
/// each filter zeroes entries and renormalises. Losslessness is relative to the vector this returns.
public struct SamplingSettings: Sendable, Equatable, Codable {
    public var temperature: Double = 1
    /// 0 disables top-k.
    public var topK: Int = 0
    /// 1 disables top-p.
    public var topP: Double = 1
    /// 0 disables min-p.
    public var minP: Double = 0
    /// 1 disables the repetition penalty.
    public var repetitionPenalty: Double = 1
    public var presencePenalty: Double = 0
    public var frequencyPenalty: Double = 0

    public init(
        temperature: Double = 1, topK: Int = 0, topP: Double = 1, minP: Double = 0,
        repetitionPenalty: Double = 1, presencePenalty: Double = 0, frequencyPenalty: Double = 0
    ) {
        self.temperature = temperature
        self.topK = topK
        self.topP = topP
        self.minP = minP
        self.repetitionPenalty = repetitionPenalty
        self.presencePenalty = presencePenalty
        self.frequencyPenalty = frequencyPenalty
    }

    /// Greedy decoding: temperature 0.
    public static let greedy = SamplingSettings(temperature: 0)

    public var isGreedy: Bool { temperature == 0 }

    /// Checks every setting's range; throws ``VerifyError/invalidSetting(name:value:reason:)`` naming the first bad
    /// one.
    public func validate() throws {
        func bad(_ name: String, _ value: Any, _ reason: String) -> VerifyError {
            .invalidSetting(name: name, value: "\(value)", reason: reason)
        }
        if !(temperature.isFinite && temperature >= 0) { throw bad("temperature", temperature, "must be ≥ 0") }
        if topK < 0 { throw bad("top-k", topK, "must be ≥ 0 (0 disables it)") }
        if !(topP > 0 && topP <= 1) { throw bad("top-p", topP, "must be in (0, 1]") }
        if !(minP >= 0 && minP <= 1) { throw bad("min-p", minP, "must be in [0, 1]") }
        if !(repetitionPenalty.isFinite && repetitionPenalty > 0) {
            throw bad("repetition penalty", repetitionPenalty, "must be > 0 (1 disables it)")
        }
        if !presencePenalty.isFinite { throw bad("presence penalty", presencePenalty, "must be finite") }
        if !frequencyPenalty.isFinite { throw bad("frequency penalty", frequencyPenalty, "must be finite") }
    }

    /// The processed distribution for `logits`, given the tokens seen so far (`history`, for the penalties).
    ///
    /// - Complexity: O(|V| + |history|), plus O(|V| log |V|) when top-p runs without a top-k in front of it.
    public func process(logits: [Double], history: [Int] = [], what: String = "logits") throws -> [Double] {
        try validate()
        if logits.isEmpty { throw VerifyError.emptyVocabulary(what: what) }
        var adjusted = logits
        try applyPenalties(&adjusted, history: history)
        if isGreedy {
            for (index, value) in adjusted.enumerated() where value.isNaN {
                throw VerifyError.notFinite(what: what, index: index, value: value)
            }
            var onehot = [Double](repeating: 0, count: adjusted.count)
            onehot[Probability.argmax(adjusted)] = 1
            return onehot
        }
        if temperature != 1 {
            for index in adjusted.indices { adjusted[index] /= temperature }
        }
        var probabilities = try Probability.softmax(adjusted, what)
        applyFilters(&probabilities)
        return probabilities
    }

    /// Processes a probability vector as if its logits were `ln p` (zero entries stay zero). Penalties, which need
    /// raw logits, apply to `ln p` too.
    public func process(probabilities: [Double], history: [Int] = [], what: String = "probabilities") throws
        -> [Double]
    {
        let normalized = try Probability.normalized(probabilities, what)
        return try process(logits: normalized.map { $0 > 0 ? log($0) : -.infinity }, history: history, what: what)
    }

    private func applyPenalties(_ logits: inout [Double], history: [Int]) throws {
        if history.isEmpty || (repetitionPenalty == 1 && presencePenalty == 0 && frequencyPenalty == 0) { return }
        var counts: [Int: Int] = [:]
        for token in history {
            guard token >= 0 && token < logits.count else {
                throw VerifyError.tokenOutOfRange(what: "history", token: token, vocabularySize: logits.count)
            }
            counts[token, default: 0] += 1
        }
        for (token, count) in counts {
            var value = logits[token]
            if repetitionPenalty != 1 { value = value > 0 ? value / repetitionPenalty : value * repetitionPenalty }
            value -= presencePenalty + frequencyPenalty * Double(count)
            logits[token] = value
        }
    }

    /// Top-k, top-p and min-p on a normalised vector, in that order, each renormalising.
    private func applyFilters(_ probabilities: inout [Double]) {
        let vocabularySize = probabilities.count
        let useTopK = topK > 0 && topK < vocabularySize
        let useTopP = topP < 1
        if useTopK || useTopP {
            // Order by (probability descending, id ascending): ties keep the smaller id.
            var order: [Int]
            if useTopK {
                order = SamplingSettings.topIndices(probabilities, count: topK)
            } else {
                order = probabilities.indices.filter { probabilities[$0] > 0 }
                order.sort {
                    probabilities[$0] > probabilities[$1] || (probabilities[$0] == probabilities[$1] && $0 < $1)
                }
            }
            var keep = order.count
            if useTopP {
                var kept = 0.0
                var total = 0.0
                for index in order { total += probabilities[index] }
                for (rank, index) in order.enumerated() {
                    kept += probabilities[index]
                    if kept >= topP * total {
                        keep = rank + 1
                        break
                    }
                }
            }
            var filtered = [Double](repeating: 0, count: vocabularySize)
            for index in order.prefix(keep) { filtered[index] = probabilities[index] }
            probabilities = filtered
            renormalize(&probabilities)
        }
        if minP > 0 {
            let threshold = minP * (probabilities.max() ?? 0)
            for index in probabilities.indices where probabilities[index] < threshold { probabilities[index] = 0 }
            renormalize(&probabilities)
        }
    }

    private func renormalize(_ probabilities: inout [Double]) {
        let total = Probability.sum(probabilities)
        for index in probabilities.indices { probabilities[index] /= total }
    }

    /// The `count` largest entries in (value descending, id ascending) order.
    /// - Complexity: O(|V| · log count) with a small binary heap kept as a sorted array.
    public static func topIndices(_ values: [Double], count: Int) -> [Int] {
        var top: [Int] = []
        topIndices(values, count: count, into: &top)
        return top
    }

    /// ``topIndices(_:count:)`` into a caller's array, reusing its capacity (no allocation after warm-up).
    public static func topIndices(_ values: [Double], count: Int, into top: inout [Int]) {
        precondition(count >= 0)
        top.removeAll(keepingCapacity: true)
        top.reserveCapacity(count + 1)
        if count == 0 { return }
        values.withUnsafeBufferPointer { v in
            // Indices come in increasing order, so once `count` are held a new one enters only if its value is
            // strictly above the smallest held (a tie goes to the smaller id, already held).
            var cutoff = -Double.infinity
            var full = false
            for index in 0..<v.count {
                let value = v[index]
                if full {
                    guard value > cutoff else { continue }
                    top.removeLast()
                }
                var position = top.count
                // Before every held index of a smaller value; after those of an equal one (smaller ids).
                while position > 0 && value > v[top[position - 1]] { position -= 1 }
                top.insert(index, at: position)
                if top.count == count {
                    full = true
                    cutoff = v[top[count - 1]]
                }
            }
        }
    }
}

extension SamplingSettings {
    /// The token these settings choose from a processed distribution: the most likely one at temperature 0 (no
    /// random number is used), else one draw from `random`.
    public func choose<R: RandomSource>(from probabilities: [Double], using random: inout R) throws -> Int {
        if isGreedy { return Probability.argmax(probabilities) }
        guard let token = random.categorical(probabilities) else { throw VerifyError.zeroMass(what: "distribution") }
        return token
    }
}

extension SamplingSettings {
    /// Temperature 0 with no penalty: the token is the logits' argmax, which ``greedyToken(_:)`` finds without
    /// building a distribution.
    public var isPlainGreedy: Bool {
        isGreedy && repetitionPenalty == 1 && presencePenalty == 0 && frequencyPenalty == 0
    }

    /// What ``process(logits:history:what:)`` then ``choose(from:using:)`` give at temperature 0 with no penalty —
    /// the first index of the largest logit (the conversion to `Double` keeps the order) — in one pass over the
    /// logits; throws on an empty vector or a NaN as ``process(logits:history:what:)`` does.
    public static func greedyToken(_ logits: [Float], what: String = "logits") throws -> Int {
        try logits.withUnsafeBufferPointer { v in
            guard !v.isEmpty else { throw VerifyError.emptyVocabulary(what: what) }
            var best = 0
            var bestValue = v[0]
            var sawNaN = bestValue.isNaN
            for index in 1..<v.count {
                let value = v[index]
                if value > bestValue {
                    bestValue = value
                    best = index
                } else if value != value {
                    sawNaN = true
                }
            }
            if sawNaN, let index = v.firstIndex(where: \.isNaN) {
                throw VerifyError.notFinite(what: what, index: index, value: Double(v[index]))
            }
            return best
        }
    }
}
