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
                                // Per query head of the group: its query, scores (then weights) and result.
                                let queries = UnsafeMutablePointer<UnsafePointer<Float>>.allocate(capacity: group)
                                let scoreRows = UnsafeMutablePointer<UnsafeMutablePointer<Float>>.allocate(
                                    capacity: group)
                                let weightRows = UnsafeMutablePointer<UnsafePointer<Float>>.allocate(capacity: group)
                                let results = UnsafeMutablePointer<UnsafeMutablePointer<Float>>.allocate(
                                    capacity: group)
                                defer {
                                    queries.deallocate()
                                    scoreRows.deallocate()
                                    weightRows.deallocate()
                                    results.deallocate()
                                }
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
                                    for g in 0..<group {
                                        queries[g] = UnsafePointer(query(g))
                                        results[g] = result(g)
                                    }
                                    rows.withUnsafeBufferPointer { rowBuffer in
                                        scores.withUnsafeMutableBufferPointer { scoreBuffer in
                                            guard let sb = scoreBuffer.baseAddress, let rb = rowBuffer.baseAddress
                                            else { return }
                                            for g in 0..<group { scoreRows[g] = sb + g * count }
                                            Ops.attentionScores(
                                                queries: queries, queryCount: group, keys: keyBase, stride: hd,
                                                rows: rb, first: 0, count: count, dimension: hd, scale: scale,
                                                into: scoreRows)
                                            for g in 0..<group {
                                                Self.softmaxWeights(sb + g * count, count: count)
                                                result(g).initialize(repeating: 0, count: hd)
                                                weightRows[g] = UnsafePointer(scoreRows[g])
                                            }
                                            Ops.accumulateValues(
                                                weights: weightRows, queryCount: group, values: valueBase,
                                                stride: hd, rows: rb, first: 0, count: count, dimension: hd,
                                                into: results)
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
                            // Per (token, query head of the group), token-major: query, scores and result.
                            let width = n * group
                            let queries = UnsafeMutablePointer<UnsafePointer<Float>>.allocate(capacity: width)
                            let scoreRows = UnsafeMutablePointer<UnsafeMutablePointer<Float>>.allocate(capacity: width)
                            let weightRows = UnsafeMutablePointer<UnsafePointer<Float>>.allocate(capacity: width)
                            let results = UnsafeMutablePointer<UnsafeMutablePointer<Float>>.allocate(capacity: width)
                            defer {
                                queries.deallocate()
                                scoreRows.deallocate()
                                weightRows.deallocate()
                                results.deallocate()
                            }
                            scores.withUnsafeMutableBufferPointer { scoreBuffer in
                                guard let sb = scoreBuffer.baseAddress else { return }
                                for kvHead in range {
                                    let keyBase = kb + cache.offset(head: kvHead, row: 0)
                                    let valueBase = vb + cache.offset(head: kvHead, row: 0)
                                    for i in 0..<n {
                                        for g in 0..<group {
                                            let head = (kvHead * group + g) * hd
                                            queries[i * group + g] = UnsafePointer(qb + i * queryWidth + head)
                                            scoreRows[i * group + g] = sb + offsets[i] + g * widths[i]
                                            results[i * group + g] = ob + i * queryWidth + head
                                            weightRows[i * group + g] = UnsafePointer(scoreRows[i * group + g])
                                        }
                                    }
                                    // Scores: the shared rows for every token, then each token's own rows.
                                    Ops.attentionScores(
                                        queries: queries, queryCount: width, keys: keyBase, stride: hd, rows: nil,
                                        first: 0, count: treeBase, dimension: hd, scale: scale, into: scoreRows)
                                    for i in 0..<n {
                                        for g in 0..<group { scoreRows[i * group + g] += treeBase }
                                        extra[i].withUnsafeBufferPointer { own in
                                            Ops.attentionScores(
                                                queries: queries + i * group, queryCount: group, keys: keyBase,
                                                stride: hd, rows: own.baseAddress, first: 0, count: own.count,
                                                dimension: hd, scale: scale, into: scoreRows + i * group)
                                        }
                                    }
                                    for i in 0..<n {
                                        for g in 0..<group {
                                            Self.softmaxWeights(sb + offsets[i] + g * widths[i], count: widths[i])
                                            results[i * group + g].initialize(repeating: 0, count: hd)
                                        }
                                    }
                                    // Values in the same row order.
                                    Ops.accumulateValues(
                                        weights: weightRows, queryCount: width, values: valueBase, stride: hd,
                                        rows: nil, first: 0, count: treeBase, dimension: hd, into: results)
                                    for i in 0..<n {
                                        for g in 0..<group { weightRows[i * group + g] += treeBase }
                                        extra[i].withUnsafeBufferPointer { own in
                                            Ops.accumulateValues(
                                                weights: weightRows + i * group, queryCount: group,
                                                values: valueBase, stride: hd, rows: own.baseAddress, first: 0,
                                                count: own.count, dimension: hd, into: results + i * group)
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
