import CSpeculaSystem
import SpeculaKernels

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// One cache's part of a batched forward pass (``Transformer/forward(batch:)``): the arguments of
/// ``Transformer/forward(tokens:positions:visibility:cache:logitRows:treeBase:cacheVisibility:)`` for one sequence.
public struct ForwardSegment: @unchecked Sendable {
    public var tokens: [Int]
    public var positions: [Int]?
    public var visibility: [[Int]]?
    public var cache: KVCache
    public var logitRows: [Int]?
    public var treeBase: Int?
    public var cacheVisibility: [[Int]]?

    public init(
        tokens: [Int], positions: [Int]? = nil, visibility: [[Int]]? = nil, cache: KVCache, logitRows: [Int]? = nil,
        treeBase: Int? = nil, cacheVisibility: [[Int]]? = nil
    ) {
        self.tokens = tokens
        self.positions = positions
        self.visibility = visibility
        self.cache = cache
        self.logitRows = logitRows
        self.treeBase = treeBase
        self.cacheVisibility = cacheVisibility
    }

    /// Whether the segment may be fed in pieces (a prompt pass): consecutive positions, causal visibility, every
    /// cache row visible. Each piece's rows are then the rows the whole would compute.
    public var isSplittable: Bool { positions == nil && visibility == nil && treeBase == nil && cacheVisibility == nil }
}

extension Transformer {
    /// Runs a batch of `tokens` through the model, appending their keys and values to `cache`.
    ///
    /// - Parameters:
    ///   - positions: position id of each token (default: consecutive after the cache's length).
    ///   - visibility: for each token, the batch indices it attends to, ascending and ending with itself (default:
    ///     causal, all earlier tokens of the batch). Every token also sees all committed rows of the cache.
    ///   - logitRows: the batch indices whose logits to return (default: the last).
    ///   - treeBase, cacheVisibility: for a tree drafted over several passes: cache rows from `treeBase` on are
    ///     visible to token `i` only if listed (ascending) in `cacheVisibility[i]`; rows before `treeBase` are all
    ///     visible. Default: every cache row is visible.
    /// - Returns: `[logitRows.count][vocabularySize]` logits.
    ///
    /// A cache that is a member of a ``ForwardBatcher`` hands the pass to it: it runs together with the passes other
    /// members asked for at the same time, and returns the same rows.
    public func forward(
        tokens: [Int], positions: [Int]? = nil, visibility: [[Int]]? = nil, cache: KVCache, logitRows: [Int]? = nil,
        treeBase: Int? = nil, cacheVisibility: [[Int]]? = nil
    ) throws -> [[Float]] {
        let segment = ForwardSegment(
            tokens: tokens, positions: positions, visibility: visibility, cache: cache, logitRows: logitRows,
            treeBase: treeBase, cacheVisibility: cacheVisibility)
        if tokens.isEmpty { return [] }
        if let member = cache.batchMember { return try member.submit(segment, to: self) }
        return try forward(batch: [segment])[0]
    }

    /// Checks a segment before its pass: its tokens are in the vocabulary and fit its cache. A batch checks each
    /// segment first, so a bad one fails alone.
    public func validate(_ segment: ForwardSegment) throws {
        for token in segment.tokens where token < 0 || token >= vocabularySize {
            throw ModelError.tokenOutOfRange(token: token, vocabularySize: vocabularySize)
        }
        let cache = segment.cache
        if cache.length + segment.tokens.count > cache.capacity {
            throw ModelError.contextOverflow(needed: cache.length + segment.tokens.count, capacity: cache.capacity)
        }
    }

    /// One pass over several sequences, each with its own cache (distinct caches of this model): the products
    /// read the weights once for all rows, attention runs per segment over its own cache. Every row's arithmetic is
    /// the one it gets in a pass of its own (the products and attention are batch-invariant), so each segment's
    /// logits and cache rows are bit-identical to ``forward(tokens:positions:visibility:cache:logitRows:treeBase:cacheVisibility:)``
    /// on that segment alone. Returns each segment's logit rows.
    public func forward(batch segments: [ForwardSegment]) throws -> [[[Float]]] {
        for segment in segments { try validate(segment) }
        precondition(
            Set(segments.map { ObjectIdentifier($0.cache) }).count == segments.count, "one segment per cache")
        let counts = segments.map(\.tokens.count)
        var offsets = [0]
        for count in counts { offsets.append(offsets[offsets.count - 1] + count) }
        let n = offsets[segments.count]
        if n == 0 { return segments.map { _ in [] } }
        let workspace = takeWorkspace()
        defer { giveBack(workspace) }
        // Per segment: its cache's length before the pass, positions, visibility and tree rows.
        var prefixes: [Int] = []
        var allPositions: [Int] = []
        var visibilities: [[[Int]]] = []
        var treeBases: [Int] = []
        var cacheVisibilities: [[[Int]]] = []
        var starts: [Int] = []
        for (index, segment) in segments.enumerated() {
            let count = counts[index]
            let cache = segment.cache
            let prefix = cache.length
            let positions = segment.positions ?? (0..<count).map { prefix + $0 }
            let visibility = segment.visibility ?? (0..<count).map { Array(0...$0) }
            precondition(
                positions.count == count && visibility.count == count, "one position and one visibility list per token")
            let treeBase = segment.treeBase ?? prefix
            let cacheVisibility = segment.cacheVisibility ?? [[Int]](repeating: [], count: count)
            precondition(treeBase <= prefix && cacheVisibility.count == count, "tree rows must lie in the cache")
            prefixes.append(prefix)
            allPositions += positions
            visibilities.append(visibility)
            treeBases.append(treeBase)
            cacheVisibilities.append(cacheVisibility)
        }
        for (index, segment) in segments.enumerated() {
            let start = try segment.cache.append(count: counts[index])
            for i in 0..<counts[index] { segment.cache.positions[start + i] = allPositions[offsets[index] + i] }
            starts.append(start)
        }
        // The profile of the first segment's cache times the whole pass (every segment's phases).
        let profile = segments.first?.cache.profile
        let c = config
        let d = c.embeddingLength
        // [n, d] residual stream
        var x = [Float](repeating: 0, count: n * d)
        let tokens = segments.flatMap(\.tokens)
        x.withUnsafeMutableBufferPointer { xs in
            for (i, token) in tokens.enumerated() {
                guard let row = xs.baseAddress?.advanced(by: i * d) else { return }
                Dequantize.row(embedding.type, embedding.row(token), elementCount: d, into: row)
                if c.embeddingScale != 1 { for k in 0..<d { row[k] *= c.embeddingScale } }
            }
        }
        var normed = [Float](repeating: 0, count: n * d)
        var q = [Float](repeating: 0, count: n * c.queryWidth)
        var k = [Float](repeating: 0, count: n * c.kvWidth)
        var v = [Float](repeating: 0, count: n * c.kvWidth)
        var attention = [Float](repeating: 0, count: n * c.queryWidth)
        var projected = [Float](repeating: 0, count: n * d)
        var gate = [Float](repeating: 0, count: n * c.feedForwardLength)
        var up = [Float](repeating: 0, count: n * c.feedForwardLength)
        var ropeByBase: [Double: [Float]] = [:]
        for (index, layer) in layers.enumerated() where !skippedLayers.contains(index) {
            profile?.mark("")
            normRows(x, layer.attentionNorm, n, d, into: &normed)
            profile?.mark("norms")
            quantize(normed, n, d, into: &workspace.residualWidth, for: layer.query, layer.key, layer.value)
            profile?.mark("quantize activations")
            linear(layer.query, workspace.residualWidth, layer.queryBias, into: &q)
            linear(layer.key, workspace.residualWidth, layer.keyBias, into: &k)
            linear(layer.value, workspace.residualWidth, layer.valueBias, into: &v)
            profile?.mark("q, k, v products")
            let sliding = c.slidingLayers.contains(index)
            let base = sliding ? (c.slidingRopeBase ?? c.ropeBase) : c.ropeBase
            if ropeByBase[base] == nil { ropeByBase[base] = ropeTables(positions: allPositions, base: base) }
            let rope = ropeByBase[base] ?? []
            prepareHeads(&q, heads: c.headCount, norm: layer.queryNorm, positions: allPositions, rope: rope)
            prepareHeads(&k, heads: c.kvHeadCount, norm: layer.keyNorm, positions: allPositions, rope: rope)
            // Store each segment's keys and values in its cache, head by head (``KVCache/offset(head:row:)``).
            for (s, segment) in segments.enumerated() {
                let cache = segment.cache
                func store(_ source: [Float], into rows: KVRows) {
                    rows.withUnsafeMutableBufferPointer { destination in
                        source.withUnsafeBufferPointer { sourceBuffer in
                            guard let target = destination.baseAddress, let base = sourceBuffer.baseAddress else {
                                return
                            }
                            for i in 0..<counts[s] {
                                let row = base + (offsets[s] + i) * c.kvWidth
                                for head in 0..<cache.heads {
                                    (target + cache.offset(head: head, row: starts[s] + i)).update(
                                        from: row + head * cache.headWidth, count: cache.headWidth)
                                }
                            }
                        }
                    }
                }
                store(k, into: cache.keys[index])
                store(v, into: cache.values[index])
            }
            profile?.mark("rope, cache store")
            let window = sliding ? c.slidingWindow : nil
            for (s, segment) in segments.enumerated() {
                let rows = counts[s]
                let sameQueries = segments.count == 1
                let queries = sameQueries ? q : Array(q[(offsets[s] * c.queryWidth)..<(offsets[s + 1] * c.queryWidth)])
                var result = sameQueries ? attention : [Float](repeating: 0, count: rows * c.queryWidth)
                if window == nil && rows > 1 && c.kvHeadCount >= pool.threadCount {
                    attendShared(
                        layer: index, q: queries, n: rows, prefix: prefixes[s], visibility: visibilities[s],
                        cache: segment.cache, treeBase: treeBases[s], cacheVisibility: cacheVisibilities[s],
                        into: &result)
                } else {
                    attend(
                        layer: index, q: queries, n: rows, prefix: prefixes[s],
                        positions: Array(allPositions[offsets[s]..<offsets[s + 1]]), visibility: visibilities[s],
                        cache: segment.cache, window: window, treeBase: treeBases[s],
                        cacheVisibility: cacheVisibilities[s], into: &result)
                }
                if sameQueries {
                    attention = result
                } else {
                    attention.replaceSubrange(
                        (offsets[s] * c.queryWidth)..<(offsets[s + 1] * c.queryWidth), with: result)
                }
            }
            profile?.mark("attention")
            quantize(attention, n, c.queryWidth, into: &workspace.attentionWidth, for: layer.attentionOutput)
            profile?.mark("quantize activations")
            linear(layer.attentionOutput, workspace.attentionWidth, nil, into: &projected)
            if let post = layer.postAttentionNorm { normRows(projected, post, n, d, into: &projected) }
            profile?.mark("output projection")
            Self.addRows(&x, projected)

            normRows(x, layer.feedForwardNorm, n, d, into: &normed)
            profile?.mark("norms")
            quantize(normed, n, d, into: &workspace.residualWidth, for: layer.gate, layer.up)
            profile?.mark("quantize activations")
            linear(layer.gate, workspace.residualWidth, nil, into: &gate)
            linear(layer.up, workspace.residualWidth, nil, into: &up)
            profile?.mark("gate, up products")
            gatedActivation(&gate, up)
            profile?.mark("gated activation")
            quantize(gate, n, c.feedForwardLength, into: &workspace.feedForwardWidth, for: layer.down)
            profile?.mark("quantize activations")
            linear(layer.down, workspace.feedForwardWidth, nil, into: &projected)
            profile?.mark("down product")
            if let post = layer.postFeedForwardNorm { normRows(projected, post, n, d, into: &projected) }
            Self.addRows(&x, projected)
            profile?.mark("residual adds")
        }
        profile?.mark("")
        defer { profile?.mark("output") }
        // Each segment's logit rows, grouped by output head (a cache may have a reduced head of its own): one
        // product per head over all the rows that use it.
        var results = segments.map { segment in
            [[Float]](repeating: [], count: (segment.logitRows ?? [segment.tokens.count - 1]).count)
        }
        var groups: [(head: OutputHead?, rows: [Int], places: [(Int, Int)])] = []
        for (s, segment) in segments.enumerated() {
            let head = segment.cache.outputHead ?? restrictedOutput
            precondition(head == nil || head?.model == ObjectIdentifier(self), "an output head of another model")
            let rows = segment.logitRows ?? [counts[s] - 1]
            if rows.isEmpty { continue }
            let group =
                groups.firstIndex { $0.head === head }
                ?? {
                    groups.append((head, [], []))
                    return groups.count - 1
                }()
            for (slot, row) in rows.enumerated() {
                precondition(row >= 0 && row < counts[s], "logit row \(row) outside the batch")
                groups[group].rows.append(offsets[s] + row)
                groups[group].places.append((s, slot))
            }
        }
        for group in groups {
            let logits = outputLogits(x, rows: group.rows, head: group.head, workspace: workspace)
            for (index, place) in group.places.enumerated() { results[place.0][place.1] = logits[index] }
        }
        return results
    }

    /// The logits of residual rows `rows` of `x` through `head` (nil: the whole output matrix).
    func outputLogits(_ x: [Float], rows: [Int], head: OutputHead?, workspace: ForwardWorkspace) -> [[Float]] {
        let d = config.embeddingLength
        var final = [Float](repeating: 0, count: rows.count * d)
        for (slot, row) in rows.enumerated() {
            for i in 0..<d { final[slot * d + i] = x[row * d + i] }
        }
        normRows(final, outputNorm, rows.count, d, into: &final)
        guard let restricted = head else {
            var logits = [Float](repeating: 0, count: rows.count * vocabularySize)
            quantize(final, rows.count, d, into: &workspace.residualWidth, for: output)
            linear(output, workspace.residualWidth, nil, into: &logits)
            return (0..<rows.count).map { Array(logits[($0 * vocabularySize)..<(($0 + 1) * vocabularySize)]) }
        }
        // A restricted output: the kept tokens' logits, the rest −∞ — a prefix of the ids straight from a view of
        // the output matrix, the others from the gathered rows.
        var result = [[Float]](repeating: [Float](repeating: -.infinity, count: vocabularySize), count: rows.count)
        if let prefix = restricted.prefix {
            let width = prefix.rowCount
            var logits = [Float](repeating: 0, count: rows.count * width)
            quantize(final, rows.count, d, into: &workspace.residualWidth, for: prefix)
            linear(prefix, workspace.residualWidth, nil, into: &logits)
            for slot in 0..<rows.count {
                result[slot].replaceSubrange(0..<width, with: logits[(slot * width)..<((slot + 1) * width)])
            }
        }
        if let matrix = restricted.matrix {
            let width = matrix.rowCount
            let skip = restricted.prefixCount
            var logits = [Float](repeating: 0, count: rows.count * width)
            quantize(final, rows.count, d, into: &workspace.residualWidth, for: matrix)
            linear(matrix, workspace.residualWidth, nil, into: &logits)
            for slot in 0..<rows.count {
                for k in 0..<(restricted.tokens.count - skip) {
                    result[slot][restricted.tokens[skip + k]] = logits[slot * width + k]
                }
            }
        }
        return result
    }

    /// `gate = activation(gate) · up`, element-wise, split over the workers in whole 16-value chunks (each value's
    /// result depends only on its inputs, see ``Ops/gatedActivation(_:_:count:_:)``).
    func gatedActivation(_ gate: inout [Float], _ up: [Float]) {
        let activation = config.activation
        let count = gate.count
        gate.withUnsafeMutableBufferPointer { g in
            up.withUnsafeBufferPointer { u in
                guard let g = g.baseAddress, let u = u.baseAddress else { return }
                // Below 4,096 values one thread is quicker than handing out the work.
                guard count >= 4096 else { return Ops.gatedActivation(g, u, count: count, activation) }
                pool.parallelFor(count: count, granularity: 16) { range in
                    Ops.gatedActivation(
                        g + range.lowerBound, u + range.lowerBound, count: range.count, activation)
                }
            }
        }
    }

    /// `x += y`, element by element (through raw buffers: the loop over the arrays themselves ran at about 3 ns an
    /// element, a residual add costing 2 ms of an 8-token pass). Each element's sum is the same either way.
    static func addRows(_ x: inout [Float], _ y: [Float]) {
        precondition(x.count == y.count)
        x.withUnsafeMutableBufferPointer { xs in
            y.withUnsafeBufferPointer { ys in
                guard let xb = xs.baseAddress, let yb = ys.baseAddress else { return }
                for i in 0..<xs.count { xb[i] += yb[i] }
            }
        }
    }

    func normRows(_ x: [Float], _ weight: [Float], _ n: Int, _ width: Int, into y: inout [Float]) {
        let source = x
        source.withUnsafeBufferPointer { xs in
            weight.withUnsafeBufferPointer { w in
                y.withUnsafeMutableBufferPointer { ys in
                    guard let xb = xs.baseAddress, let wb = w.baseAddress, let yb = ys.baseAddress else { return }
                    for row in 0..<n {
                        Ops.rmsNorm(
                            xb + row * width, wb, count: width, epsilon: config.normEpsilon, into: yb + row * width)
                    }
                }
            }
        }
    }

    /// The activation rows quantized in the forms that `matrices` read, into `activations`' storage.
    func quantize(
        _ x: [Float], _ n: Int, _ width: Int, into activations: inout QuantizedActivations,
        for matrices: QuantizedMatrix...
    ) {
        let formats = matrices.reduce(into: QuantizedActivations.Formats()) { $0.formUnion($1.activationFormats) }
        x.withUnsafeBufferPointer {
            activations.update($0, rowCount: n, columnCount: width, formats: formats, pool: pool)
        }
    }

    func linear(_ matrix: QuantizedMatrix, _ x: QuantizedActivations, _ bias: [Float]?, into y: inout [Float]) {
        y.withUnsafeMutableBufferPointer { ys in
            guard let out = ys.baseAddress else { return }
            if let bias {
                bias.withUnsafeBufferPointer { Linear.multiply(matrix, x, bias: $0.baseAddress, into: out, pool: pool) }
            } else {
                Linear.multiply(matrix, x, into: out, pool: pool)
            }
        }
    }

    /// The RoPE rotation of each token's position (`[n, headDimension]`, see ``Ops/ropeTable``), computed once
    /// per forward pass and base and shared by every head and layer.
    func ropeTables(positions: [Int], base: Double) -> [Float] {
        let hd = config.headDimension
        var table = [Float](repeating: 0, count: positions.count * hd)
        table.withUnsafeMutableBufferPointer { t in
            guard let t = t.baseAddress else { return }
            for (i, position) in positions.enumerated() {
                Ops.ropeTable(dimensions: hd, position: position, base: base, into: t + i * hd)
            }
        }
        return table
    }

    /// Per head: the optional RMSNorm (gemma3), then RoPE at the token's position (`rope` from ``ropeTables``).
    func prepareHeads(_ values: inout [Float], heads: Int, norm: [Float]?, positions: [Int], rope: [Float]) {
        let hd = config.headDimension
        let width = heads * hd
        values.withUnsafeMutableBufferPointer { buffer in
            rope.withUnsafeBufferPointer { table in
                guard let b = buffer.baseAddress, let table = table.baseAddress else { return }
                for i in positions.indices {
                    for h in 0..<heads {
                        let head = b + i * width + h * hd
                        if let norm {
                            norm.withUnsafeBufferPointer { w in
                                if let wb = w.baseAddress {
                                    Ops.rmsNorm(head, wb, count: hd, epsilon: config.normEpsilon, into: head)
                                }
                            }
                        }
                        Ops.rope(head, dimensions: hd, table: table + i * hd, style: config.ropeStyle)
                    }
                }
            }
        }
    }

    /// Rows of keys or values per block in the attention loops: a block (16 KB at 128 dimensions) stays in the L1
    /// cache while every query of the group (or batch) uses it.
    static var attentionBlock: Int { 32 }

}
