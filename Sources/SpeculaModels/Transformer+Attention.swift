import CSpeculaSystem
import SpeculaKernels

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Attention over the cache and the batch: the per-token path (each token's rows block by block) and the shared
/// path (the rows every token of a batch sees, read once for all of them); both compute each score and value sum the
/// same way, so a row's result does not depend on the path or the batch.
extension Transformer {
    /// Attention of every (token, head) over the visible rows: the committed prefix (within the sliding window, if
    /// any) then the visible batch rows, in ascending row order; scores scaled, softmax with the maximum
    /// subtracted, values summed in the same order. Each score is ``Ops/dot(_:_:count:)`` times the scale and each
    /// output element a row-ordered sum (``Ops/attentionScores(_:keys:stride:rows:first:count:dimension:scale:into:)``,
    /// ``Ops/accumulateValues(_:values:stride:rows:first:count:dimension:into:)``), whatever the blocking.
    func attend(
        layer: Int, q: [Float], n: Int, prefix: Int, positions: [Int], visibility: [[Int]], cache: KVCache,
        window: Int?, treeBase: Int, cacheVisibility: [[Int]], into output: inout [Float]
    ) {
        let c = config
        let hd = c.headDimension
        let group = c.headCount / c.kvHeadCount
        let scale = c.attentionScale
        let queryWidth = c.queryWidth
        let block = Self.attentionBlock
        q.withUnsafeBufferPointer { qs in
            cache.keys[layer].withUnsafeBufferPointer { keys in
                cache.values[layer].withUnsafeBufferPointer { values in
                    cache.positions.withUnsafeBufferPointer { rowPositions in
                        output.withUnsafeMutableBufferPointer { out in
                            guard let qb = qs.baseAddress, let kb = keys.baseAddress, let vb = values.baseAddress,
                                let ob = out.baseAddress
                            else { return }
                            let rowPosition = rowPositions.baseAddress
                            // One work item per (token, key-value head): each block of key and value rows is read
                            // once for the group of query heads sharing them.
                            pool.parallelFor(count: n * c.kvHeadCount) { range in
                                var rows: [Int] = []
                                var scores = [Float](repeating: 0, count: group * (prefix + n))
                                for item in range {
                                    let i = item / c.kvHeadCount
                                    let kvHead = item % c.kvHeadCount
                                    let position = positions[i]
                                    rows.removeAll(keepingCapacity: true)
                                    for row in 0..<treeBase {
                                        if let window, let rp = rowPosition, position - rp[row] >= window { continue }
                                        rows.append(row)
                                    }
                                    for row in cacheVisibility[i] {
                                        if let window, let rp = rowPosition, position - rp[row] >= window { continue }
                                        rows.append(row)
                                    }
                                    for j in visibility[i] {
                                        if let window, position - positions[j] >= window { continue }
                                        rows.append(prefix + j)
                                    }
                                    let count = rows.count
                                    let keyBase = kb + cache.offset(head: kvHead, row: 0)
                                    let valueBase = vb + cache.offset(head: kvHead, row: 0)
                                    func query(_ g: Int) -> UnsafePointer<Float> {
                                        qb + i * queryWidth + (kvHead * group + g) * hd
                                    }
                                    func result(_ g: Int) -> UnsafeMutablePointer<Float> {
                                        ob + i * queryWidth + (kvHead * group + g) * hd
                                    }
                                    rows.withUnsafeBufferPointer { rowBuffer in
                                        scores.withUnsafeMutableBufferPointer { scoreBuffer in
                                            guard let sb = scoreBuffer.baseAddress, let rb = rowBuffer.baseAddress
                                            else { return }
                                            for lower in Swift.stride(from: 0, to: count, by: block) {
                                                let upper = min(lower + block, count)
                                                for g in 0..<group {
                                                    Ops.attentionScores(
                                                        query(g), keys: keyBase, stride: hd, rows: rb + lower,
                                                        first: 0, count: upper - lower, dimension: hd, scale: scale,
                                                        into: sb + g * count + lower)
                                                }
                                            }
                                            for g in 0..<group {
                                                Self.softmaxWeights(sb + g * count, count: count)
                                                result(g).initialize(repeating: 0, count: hd)
                                            }
                                            for lower in Swift.stride(from: 0, to: count, by: block) {
                                                let upper = min(lower + block, count)
                                                for g in 0..<group {
                                                    Ops.accumulateValues(
                                                        sb + g * count + lower, values: valueBase, stride: hd,
                                                        rows: rb + lower, first: 0, count: upper - lower,
                                                        dimension: hd, into: result(g))
                                                }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// Scores → softmax weights in place: e^(s − max) / Σ, the sum by ``Ops/exponentiate(_:count:maximum:)`` and
    /// each weight its numerator times the sum's inverse.
    static func softmaxWeights(_ scores: UnsafeMutablePointer<Float>, count: Int) {
        var maximum = -Float.infinity
        for r in 0..<count { maximum = max(maximum, scores[r]) }
        let inverse = 1 / Ops.exponentiate(scores, count: count, maximum: maximum)
        for r in 0..<count { scores[r] *= inverse }
    }

    /// ``attend(layer:q:n:prefix:positions:visibility:cache:window:treeBase:cacheVisibility:into:)`` for a batch
    /// without a sliding window: every token sees the rows before `treeBase`, so each block of those key and value
    /// rows is read once for all the batch's queries (one work item per key-value head) instead of once per token.
    /// Each token's arithmetic is the same as there — the same rows in the same order, the same dot products,
    /// softmax and value sums — so the results are bit-identical.
    func attendShared(
        layer: Int, q: [Float], n: Int, prefix: Int, visibility: [[Int]], cache: KVCache, treeBase: Int,
        cacheVisibility: [[Int]], into output: inout [Float]
    ) {
        let c = config
        let hd = c.headDimension
        let group = c.headCount / c.kvHeadCount
        let scale = c.attentionScale
        let queryWidth = c.queryWidth
        let block = Self.attentionBlock
        // Rows after the shared ones, per token: its tree rows in the cache, then its visible batch rows.
        let extra = (0..<n).map { cacheVisibility[$0] + visibility[$0].map { prefix + $0 } }
        let widths = extra.map { treeBase + $0.count }
        var offsets = [Int](repeating: 0, count: n + 1)
        for i in 0..<n { offsets[i + 1] = offsets[i] + group * widths[i] }
        q.withUnsafeBufferPointer { qs in
            cache.keys[layer].withUnsafeBufferPointer { keys in
                cache.values[layer].withUnsafeBufferPointer { values in
                    output.withUnsafeMutableBufferPointer { out in
                        guard let qb = qs.baseAddress, let kb = keys.baseAddress, let vb = values.baseAddress,
                            let ob = out.baseAddress
                        else { return }
                        pool.parallelFor(count: c.kvHeadCount) { range in
                            var scores = [Float](repeating: 0, count: offsets[n])
                            scores.withUnsafeMutableBufferPointer { scoreBuffer in
                                guard let sb = scoreBuffer.baseAddress else { return }
                                for kvHead in range {
                                    let keyBase = kb + cache.offset(head: kvHead, row: 0)
                                    let valueBase = vb + cache.offset(head: kvHead, row: 0)
                                    func query(_ i: Int, _ g: Int) -> UnsafePointer<Float> {
                                        qb + i * queryWidth + (kvHead * group + g) * hd
                                    }
                                    func result(_ i: Int, _ g: Int) -> UnsafeMutablePointer<Float> {
                                        ob + i * queryWidth + (kvHead * group + g) * hd
                                    }
                                    func headScores(_ i: Int, _ g: Int) -> UnsafeMutablePointer<Float> {
                                        sb + offsets[i] + g * widths[i]
                                    }
                                    // Scores: shared rows block by block for every token, then each token's own rows.
                                    for lower in Swift.stride(from: 0, to: treeBase, by: block) {
                                        let upper = min(lower + block, treeBase)
                                        for i in 0..<n {
                                            for g in 0..<group {
                                                Ops.attentionScores(
                                                    query(i, g), keys: keyBase, stride: hd, rows: nil,
                                                    first: lower, count: upper - lower, dimension: hd, scale: scale,
                                                    into: headScores(i, g) + lower)
                                            }
                                        }
                                    }
                                    for i in 0..<n {
                                        extra[i].withUnsafeBufferPointer { own in
                                            for g in 0..<group {
                                                Ops.attentionScores(
                                                    query(i, g), keys: keyBase, stride: hd,
                                                    rows: own.baseAddress, first: 0, count: own.count,
                                                    dimension: hd, scale: scale, into: headScores(i, g) + treeBase)
                                            }
                                        }
                                    }
                                    for i in 0..<n {
                                        for g in 0..<group {
                                            Self.softmaxWeights(headScores(i, g), count: widths[i])
                                            result(i, g).initialize(repeating: 0, count: hd)
                                        }
                                    }
                                    // Values in the same row order.
                                    for lower in Swift.stride(from: 0, to: treeBase, by: block) {
                                        let upper = min(lower + block, treeBase)
                                        for i in 0..<n {
                                            for g in 0..<group {
                                                Ops.accumulateValues(
                                                    headScores(i, g) + lower, values: valueBase, stride: hd,
                                                    rows: nil, first: lower, count: upper - lower, dimension: hd,
                                                    into: result(i, g))
                                            }
                                        }
                                    }
                                    for i in 0..<n {
                                        extra[i].withUnsafeBufferPointer { own in
                                            for g in 0..<group {
                                                Ops.accumulateValues(
                                                    headScores(i, g) + treeBase, values: valueBase, stride: hd,
                                                    rows: own.baseAddress, first: 0, count: own.count,
                                                    dimension: hd, into: result(i, g))
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}
