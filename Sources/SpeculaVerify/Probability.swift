#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Helpers on probability vectors: validation, stable softmax, residuals, sampling from unnormalised vectors.
///
/// Probability vectors are `[Double]` indexed by token id. All reductions are in `Double` (ALGORITHMS.md §10.3).
public enum Probability {
    /// Mass below which a residual is treated as empty: its branch is reachable only by round-off (§10.4).
    public static let negligibleMass = 1e-12

    /// How far from 1 a vector's total may be before it is rejected as not normalised.
    public static let normalizationTolerance = 1e-6

    /// Checks that `vector` is a non-empty probability vector: finite, non-negative, summing to 1 within
    /// ``normalizationTolerance``. `what` names the vector in the error.
    ///
    /// - Complexity: O(|V|).
    public static func validate(_ vector: [Double], _ what: String) throws {
        if vector.isEmpty { throw VerifyError.emptyVocabulary(what: what) }
        // One branch-free pass: a NaN or an infinity makes the sum non-finite, a negative entry makes the minimum
        // negative. The slow loop below runs only to name the first bad entry.
        var total = 0.0
        var minimum = 0.0
        vector.withUnsafeBufferPointer { v in
            var s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0
            var m0 = 0.0, m1 = 0.0, m2 = 0.0, m3 = 0.0
            var index = 0
            while index + 4 <= v.count {
                s0 += v[index]
                s1 += v[index + 1]
                s2 += v[index + 2]
                s3 += v[index + 3]
                m0 = min(m0, v[index])
                m1 = min(m1, v[index + 1])
                m2 = min(m2, v[index + 2])
                m3 = min(m3, v[index + 3])
                index += 4
            }
            while index < v.count {
                s0 += v[index]
                m0 = min(m0, v[index])
                index += 1
            }
            total = (s0 + s1) + (s2 + s3)
            minimum = min(min(m0, m1), min(m2, m3))
        }
        let allGood = total.isFinite && minimum >= 0
        if !allGood {
            for (index, value) in vector.enumerated() {
                if !value.isFinite { throw VerifyError.notFinite(what: what, index: index, value: value) }
                if value < 0 { throw VerifyError.negative(what: what, index: index, value: value) }
            }
        }
        if total <= 0 { throw VerifyError.zeroMass(what: what) }
        if abs(total - 1) > normalizationTolerance { throw VerifyError.notNormalized(what: what, total: total) }
    }

    /// Checks that `target` and `draft` are probability vectors over one vocabulary.
    public static func validatePair(target: [Double], draft: [Double]) throws {
        try validate(target, "target distribution")
        try validate(draft, "draft distribution")
        if target.count != draft.count {
            throw VerifyError.lengthMismatch(what: "draft distribution", expected: target.count, actual: draft.count)
        }
    }

    /// Normalises a vector of non-negative weights (for example probabilities read from a file that sum to
    /// 0.999999). Throws on NaN, infinities, negative entries, or zero mass.
    public static func normalized(_ weights: [Double], _ what: String) throws -> [Double] {
        if weights.isEmpty { throw VerifyError.emptyVocabulary(what: what) }
        var total = 0.0
        for (index, value) in weights.enumerated() {
            if !value.isFinite { throw VerifyError.notFinite(what: what, index: index, value: value) }
            if value < 0 { throw VerifyError.negative(what: what, index: index, value: value) }
            total += value
        }
        if total <= 0 { throw VerifyError.zeroMass(what: what) }
        return weights.map { $0 / total }
    }

    /// Numerically stable softmax in `Double`: `exp(l − max) / Σ exp(l − max)`. Entries of −∞ get probability 0.
    ///
    /// The largest term is exactly 1, so the sum is at least 1 and no entry underflows to a wrong ratio; the
    /// relative error of each probability is a few ulps of `Double` (about 1e-15), far inside the 1e-12 exactness
    /// tests.
    /// - Complexity: O(|V|).
    public static func softmax(_ logits: [Double], _ what: String = "logits") throws -> [Double] {
        if logits.isEmpty { throw VerifyError.emptyVocabulary(what: what) }
        var maximum = -Double.infinity
        for (index, value) in logits.enumerated() {
            if value.isNaN || value == .infinity { throw VerifyError.notFinite(what: what, index: index, value: value) }
            maximum = max(maximum, value)
        }
        if maximum == -.infinity { throw VerifyError.zeroMass(what: what) }
        var result = logits.map { $0 == -.infinity ? 0 : exp($0 - maximum) }
        let total = sum(result)
        for index in result.indices { result[index] /= total }
        return result
    }

    /// Sum of a vector in four interleaved accumulators (faster, and a little more accurate, than one running sum).
    @inlinable
    public static func sum(_ vector: [Double]) -> Double {
        vector.withUnsafeBufferPointer { sum($0) }
    }

    @inlinable
    public static func sum(_ buffer: UnsafeBufferPointer<Double>) -> Double {
        var s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0
        var index = 0
        let count = buffer.count
        while index + 4 <= count {
            s0 += buffer[index]
            s1 += buffer[index + 1]
            s2 += buffer[index + 2]
            s3 += buffer[index + 3]
            index += 4
        }
        while index < count {
            s0 += buffer[index]
            index += 1
        }
        return (s0 + s1) + (s2 + s3)
    }

    /// Total variation distance `½ Σ |a − b|`.
    public static func totalVariation(_ a: [Double], _ b: [Double]) -> Double {
        precondition(a.count == b.count, "vectors of different lengths")
        var total = 0.0
        for index in a.indices { total += abs(a[index] - b[index]) }
        return total / 2
    }

    /// `β = Σ min(p, q)`, the acceptance of single-draft token verification (`1 − TV(p, q)`).
    public static func overlap(_ target: [Double], _ draft: [Double]) -> Double {
        precondition(target.count == draft.count, "vectors of different lengths")
        var total = 0.0
        for index in target.indices { total += min(target[index], draft[index]) }
        return total
    }

    /// Writes `(target − draft)₊` into `output` and returns its mass. Normalise it yourself if needed.
    /// - Complexity: O(|V|), no allocation when `output` already has the right size.
    @inlinable
    public static func positivePart(
        _ target: [Double], minus draft: [Double], into output: inout [Double]
    ) -> Double {
        precondition(target.count == draft.count, "vectors of different lengths")
        if output.count != target.count { output = [Double](repeating: 0, count: target.count) }
        var total = 0.0
        target.withUnsafeBufferPointer { p in
            draft.withUnsafeBufferPointer { q in
                output.withUnsafeMutableBufferPointer { out in
                    for index in 0..<p.count {
                        let difference = max(p[index] - q[index], 0)
                        out[index] = difference
                        total += difference
                    }
                }
            }
        }
        return total
    }

    /// Samples an index from unnormalised non-negative weights with one uniform `u ∈ [0, 1)`: the first index whose
    /// running sum exceeds `u · Σw`; if rounding runs past the end, the last index with positive weight (§10.5).
    /// Returns nil only if every weight is zero.
    ///
    /// The running sum skips whole blocks of 16 entries while it stays at or below the threshold (a block's sum in
    /// four independent lanes, so the scan is not one long chain of additions), then walks the block that crosses
    /// it entry by entry. This changes only the rounding of the running sum (relative 1e-16), not the law.
    @inlinable
    public static func sampleIndex(_ weights: [Double], uniform: Double, total knownTotal: Double? = nil) -> Int? {
        weights.withUnsafeBufferPointer { w in
            let total = knownTotal ?? sum(w)
            if !(total > 0) { return nil }
            let threshold = uniform * total
            var running = 0.0
            var index = 0
            let count = w.count
            while index + 16 <= count {
                let block = sum(UnsafeBufferPointer(rebasing: w[index..<(index + 16)]))
                if running + block > threshold { break }
                running += block
                index += 16
            }
            var lastPositive: Int? = nil
            while index < count {
                if w[index] > 0 {
                    running += w[index]
                    lastPositive = index
                    if running > threshold { return index }
                }
                index += 1
            }
            if lastPositive != nil { return lastPositive }
            // Rounding ran past the end after skipping: the last index with positive weight.
            var last = count - 1
            while last >= 0 && !(w[last] > 0) { last -= 1 }
            return last >= 0 ? last : nil
        }
    }

    /// The index of the largest entry; ties go to the smallest index.
    @inlinable
    public static func argmax(_ vector: [Double]) -> Int {
        precondition(!vector.isEmpty, "argmax of an empty vector")
        // The largest value in four independent lanes, then the first index holding it (NaN entries, which
        // validated vectors never hold, are passed over as in a plain scan).
        return vector.withUnsafeBufferPointer { v in
            var m0 = v[0], m1 = v[0], m2 = v[0], m3 = v[0]
            var index = 0
            while index + 4 <= v.count {
                m0 = v[index] > m0 ? v[index] : m0
                m1 = v[index + 1] > m1 ? v[index + 1] : m1
                m2 = v[index + 2] > m2 ? v[index + 2] : m2
                m3 = v[index + 3] > m3 ? v[index + 3] : m3
                index += 4
            }
            while index < v.count {
                m0 = v[index] > m0 ? v[index] : m0
                index += 1
            }
            let top0 = m1 > m0 ? m1 : m0
            let top1 = m3 > m2 ? m3 : m2
            let top = top1 > top0 ? top1 : top0
            for index in 0..<v.count where v[index] == top { return index }
            return 0
        }
    }
}
