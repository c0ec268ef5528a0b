#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Element-wise and per-row operations of a transformer layer. Each works on one row (one token) at a time, in a
/// fixed order, so its result never depends on the batch.
public enum Ops {
    /// `y = x / sqrt(mean(x²) + eps) · weight` over `count` values.
    @inlinable
    public static func rmsNorm(
        _ x: UnsafePointer<Float>, _ weight: UnsafePointer<Float>, count: Int, epsilon: Float,
        into y: UnsafeMutablePointer<Float>
    ) {
        var sum: Float = 0
        for k in 0..<count { sum += x[k] * x[k] }
        let scale = 1 / (sum / Float(count) + epsilon).squareRoot()
        for k in 0..<count { y[k] = x[k] * scale * weight[k] }
    }

    /// How a rotary embedding pairs the dimensions of a head.
    public enum RopeStyle: Sendable {
        /// Adjacent pairs (2i, 2i + 1): GGUF `llama` models.
        case interleaved
        /// Halves (i, i + d/2): `qwen2`, `gemma3` (GPT-NeoX style).
        case halves
    }

    /// The rotation of one position: `table[2i] = cos θ_i`, `table[2i+1] = sin θ_i`, θ_i = position · base^(−2i/d).
    /// Computed once per token and shared by its heads; ``rope(_:dimensions:table:style:)`` then rotates each head.
    public static func ropeTable(
        dimensions: Int, position: Int, base: Double, into table: UnsafeMutablePointer<Float>
    ) {
        for i in 0..<(dimensions / 2) {
            let theta = Double(position) * pow(base, -2 * Double(i) / Double(dimensions))
            table[2 * i] = Float(cos(theta))
            table[2 * i + 1] = Float(sin(theta))
        }
    }

    /// Rotates one head by a table from ``ropeTable(dimensions:position:base:into:)``.
    @inlinable
    public static func rope(
        _ x: UnsafeMutablePointer<Float>, dimensions: Int, table: UnsafePointer<Float>, style: RopeStyle
    ) {
        let half = dimensions / 2
        for i in 0..<half {
            let c = table[2 * i]
            let s = table[2 * i + 1]
            let (a, b) = style == .interleaved ? (2 * i, 2 * i + 1) : (i, i + half)
            let x0 = x[a]
            let x1 = x[b]
            x[a] = x0 * c - x1 * s
            x[b] = x0 * s + x1 * c
        }
    }

    /// The gate activations of a gated feed-forward block.
    public enum GateActivation: Sendable {
        /// x · σ(x) (qwen2, llama).
        case silu
        /// GELU with the tanh approximation (gemma3).
        case geluTanh
    }

    /// SiLU in 16 lanes: x / (1 + e^(−x)) with ``exp16(_:)``. Large positive x gives x (e^(−x) underflows to 0),
    /// large negative x a tiny negative value (e^(−x) is clamped to e^88).
    @inlinable
    public static func silu16(_ x: SIMD16<Float>) -> SIMD16<Float> { x / (1 + exp16(-x)) }

    /// GELU (tanh approximation) in 16 lanes: tanh(u) = 1 − 2 / (1 + e^(2u)) with ``exp16(_:)``; at |u| beyond
    /// about 44 the tanh is exactly ±1.
    @inlinable
    public static func geluTanh16(_ x: SIMD16<Float>) -> SIMD16<Float> {
        let u = 0.797_884_56 * (x + 0.044_715 * x * x * x)
        let tanh = 1 - 2 / (1 + exp16(2 * u))
        return 0.5 * x * (1 + tanh)
    }

    /// `gate[k] = activation(gate[k]) · up[k]` over `count` values, 16 lanes at a time; the last partial chunk is
    /// padded, so every value goes through the same vector arithmetic and its result depends on its own inputs
    /// only (never on `count` or on how a caller splits the range).
    public static func gatedActivation(
        _ gate: UnsafeMutablePointer<Float>, _ up: UnsafePointer<Float>, count: Int, _ activation: GateActivation
    ) {
        @inline(__always) func apply(_ g: SIMD16<Float>, _ u: SIMD16<Float>) -> SIMD16<Float> {
            switch activation {
            case .silu: return silu16(g) * u
            case .geluTanh: return geluTanh16(g) * u
            }
        }
        let rg = UnsafeMutableRawPointer(gate)
        let ru = UnsafeRawPointer(up)
        var k = 0
        while k + 16 <= count {
            let result = apply(
                rg.loadUnaligned(fromByteOffset: 4 * k, as: SIMD16<Float>.self),
                ru.loadUnaligned(fromByteOffset: 4 * k, as: SIMD16<Float>.self))
            rg.storeBytes(of: result, toByteOffset: 4 * k, as: SIMD16<Float>.self)
            k += 16
        }
        if k < count {
            var g = SIMD16<Float>()
            var u = SIMD16<Float>()
            for j in 0..<(count - k) {
                g[j] = gate[k + j]
                u[j] = up[k + j]
            }
            let result = apply(g, u)
            for j in 0..<(count - k) { gate[k + j] = result[j] }
        }
    }

    /// Dot product of two float vectors in 16 lanes, reduced in a fixed order.
    @inlinable
    public static func dot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, count: Int) -> Float {
        var acc = SIMD16<Float>()
        var k = 0
        let ra = UnsafeRawPointer(a)
        let rb = UnsafeRawPointer(b)
        while k + 16 <= count {
            acc +=
                ra.loadUnaligned(fromByteOffset: 4 * k, as: SIMD16<Float>.self)
                * rb.loadUnaligned(fromByteOffset: 4 * k, as: SIMD16<Float>.self)
            k += 16
        }
        var total = treeSum(acc)
        while k < count {
            total += a[k] * b[k]
            k += 1
        }
        return total
    }

    /// Four dot products of `a` with `b0`…`b3`, each computed exactly as ``dot(_:_:count:)`` computes it (the same
    /// lane sums in the same order, the same reduction); four at once so that their addition chains overlap.
    @inlinable
    public static func dot4(
        _ a: UnsafePointer<Float>, _ b0: UnsafePointer<Float>, _ b1: UnsafePointer<Float>, _ b2: UnsafePointer<Float>,
        _ b3: UnsafePointer<Float>, count: Int
    ) -> SIMD4<Float> {
        var acc0 = SIMD16<Float>()
        var acc1 = SIMD16<Float>()
        var acc2 = SIMD16<Float>()
        var acc3 = SIMD16<Float>()
        let ra = UnsafeRawPointer(a)
        let (r0, r1, r2, r3) = (UnsafeRawPointer(b0), UnsafeRawPointer(b1), UnsafeRawPointer(b2), UnsafeRawPointer(b3))
        var k = 0
        while k + 16 <= count {
            let x = ra.loadUnaligned(fromByteOffset: 4 * k, as: SIMD16<Float>.self)
            acc0 += x * r0.loadUnaligned(fromByteOffset: 4 * k, as: SIMD16<Float>.self)
            acc1 += x * r1.loadUnaligned(fromByteOffset: 4 * k, as: SIMD16<Float>.self)
            acc2 += x * r2.loadUnaligned(fromByteOffset: 4 * k, as: SIMD16<Float>.self)
            acc3 += x * r3.loadUnaligned(fromByteOffset: 4 * k, as: SIMD16<Float>.self)
            k += 16
        }
        var total = SIMD4(treeSum(acc0), treeSum(acc1), treeSum(acc2), treeSum(acc3))
        while k < count {
            total[0] += a[k] * b0[k]
            total[1] += a[k] * b1[k]
            total[2] += a[k] * b2[k]
            total[3] += a[k] * b3[k]
            k += 1
        }
        return total
    }

    /// Attention scores of one query: `out[j] = dot(query, keys + row_j · stride) · scale` for `j` in `0..<count`,
    /// where row_j is `rows[j]` or, without `rows`, `first + j`. Each score is ``dot(_:_:count:)`` of the pair times
    /// `scale`, whatever the rows around it (four rows at a time through ``dot4(_:_:_:_:_:count:)``).
    @inlinable
    public static func attentionScores(
        _ query: UnsafePointer<Float>, keys: UnsafePointer<Float>, stride: Int, rows: UnsafePointer<Int>?, first: Int,
        count: Int, dimension: Int, scale: Float, into out: UnsafeMutablePointer<Float>
    ) {
        @inline(__always) func key(_ j: Int) -> UnsafePointer<Float> { keys + (rows?[j] ?? (first + j)) * stride }
        var j = 0
        while j + 4 <= count {
            let d = dot4(query, key(j), key(j + 1), key(j + 2), key(j + 3), count: dimension)
            out[j] = d[0] * scale
            out[j + 1] = d[1] * scale
            out[j + 2] = d[2] * scale
            out[j + 3] = d[3] * scale
            j += 4
        }
        while j < count {
            out[j] = dot(query, key(j), count: dimension) * scale
            j += 1
        }
    }

    /// The value sum of attention: `result[k] += weights[j] · value_j[k]` for `j` in `0..<count`, in that order, where
    /// value_j is at `values + row_j · stride` (row_j as in ``attentionScores(_:keys:stride:rows:first:count:dimension:scale:into:)``).
    /// Each element is updated row by row as `result[k] + weights[j] · value_j[k]` (the same operations whatever the
    /// blocking of rows or dimensions); four 16-lane chunks of `result` stay in registers across the rows.
    @inlinable
    public static func accumulateValues(
        _ weights: UnsafePointer<Float>, values: UnsafePointer<Float>, stride: Int, rows: UnsafePointer<Int>?,
        first: Int, count: Int, dimension: Int, into result: UnsafeMutablePointer<Float>
    ) {
        @inline(__always) func value(_ j: Int) -> UnsafeRawPointer {
            UnsafeRawPointer(values + (rows?[j] ?? (first + j)) * stride)
        }
        let out = UnsafeMutableRawPointer(result)
        var c = 0
        while c + 64 <= dimension {
            var acc0 = out.loadUnaligned(fromByteOffset: 4 * c, as: SIMD16<Float>.self)
            var acc1 = out.loadUnaligned(fromByteOffset: 4 * c + 64, as: SIMD16<Float>.self)
            var acc2 = out.loadUnaligned(fromByteOffset: 4 * c + 128, as: SIMD16<Float>.self)
            var acc3 = out.loadUnaligned(fromByteOffset: 4 * c + 192, as: SIMD16<Float>.self)
            for j in 0..<count {
                let v = value(j)
                let s = SIMD16<Float>(repeating: weights[j])
                acc0 = acc0 + s * v.loadUnaligned(fromByteOffset: 4 * c, as: SIMD16<Float>.self)
                acc1 = acc1 + s * v.loadUnaligned(fromByteOffset: 4 * c + 64, as: SIMD16<Float>.self)
                acc2 = acc2 + s * v.loadUnaligned(fromByteOffset: 4 * c + 128, as: SIMD16<Float>.self)
                acc3 = acc3 + s * v.loadUnaligned(fromByteOffset: 4 * c + 192, as: SIMD16<Float>.self)
            }
            out.storeBytes(of: acc0, toByteOffset: 4 * c, as: SIMD16<Float>.self)
            out.storeBytes(of: acc1, toByteOffset: 4 * c + 64, as: SIMD16<Float>.self)
            out.storeBytes(of: acc2, toByteOffset: 4 * c + 128, as: SIMD16<Float>.self)
            out.storeBytes(of: acc3, toByteOffset: 4 * c + 192, as: SIMD16<Float>.self)
            c += 64
        }
        while c + 16 <= dimension {
            var acc = out.loadUnaligned(fromByteOffset: 4 * c, as: SIMD16<Float>.self)
            for j in 0..<count {
                let s = SIMD16<Float>(repeating: weights[j])
                acc = acc + s * value(j).loadUnaligned(fromByteOffset: 4 * c, as: SIMD16<Float>.self)
            }
            out.storeBytes(of: acc, toByteOffset: 4 * c, as: SIMD16<Float>.self)
            c += 16
        }
        while c < dimension {
            for j in 0..<count { result[c] += weights[j] * value(j).load(fromByteOffset: 4 * c, as: Float.self) }
            c += 1
        }
    }

    /// ``attentionScores(_:keys:stride:rows:first:count:dimension:scale:into:)`` for several queries over the same
    /// rows (the query heads that share a key-value head, or every token of a batch over a shared prefix):
    /// `outputs[q][j] = dot(queries[q], key_j) · scale`. Four key rows are read, then scored against every query
    /// while they are in the core's cache, so the rows stream in at an even pace between the arithmetic instead of
    /// in bursts (one query's pass over a block from memory, then the others' from the cache). Each score is
    /// computed exactly as there.
    @inlinable
    public static func attentionScores(
        queries: UnsafePointer<UnsafePointer<Float>>, queryCount: Int, keys: UnsafePointer<Float>, stride: Int,
        rows: UnsafePointer<Int>?, first: Int, count: Int, dimension: Int, scale: Float,
        into outputs: UnsafePointer<UnsafeMutablePointer<Float>>
    ) {
        @inline(__always) func key(_ j: Int) -> UnsafePointer<Float> { keys + (rows?[j] ?? (first + j)) * stride }
        var j = 0
        while j + 4 <= count {
            let (k0, k1, k2, k3) = (key(j), key(j + 1), key(j + 2), key(j + 3))
            for q in 0..<queryCount {
                let d = dot4(queries[q], k0, k1, k2, k3, count: dimension)
                let out = outputs[q] + j
                out[0] = d[0] * scale
                out[1] = d[1] * scale
                out[2] = d[2] * scale
                out[3] = d[3] * scale
            }
            j += 4
        }
        while j < count {
            let k = key(j)
            for q in 0..<queryCount { outputs[q][j] = dot(queries[q], k, count: dimension) * scale }
            j += 1
        }
    }

    /// ``accumulateValues(_:values:stride:rows:first:count:dimension:into:)`` for several queries over the same
    /// rows: `results[q][k] += weights[q][j] · value_j[k]` for `j` in `0..<count`, in that order. Rows go in blocks
    /// of 32 (16 KB at 128 dimensions, which stay in the core's cache); within a block, three queries at a time
    /// keep 64 elements each of their results in registers while every value row is read once for the three. Each
    /// element is updated row by row as `result[k] + weights[j] · value_j[k]`, exactly as there, so the results
    /// are the same bits.
    @inlinable
    public static func accumulateValues(
        weights: UnsafePointer<UnsafePointer<Float>>, queryCount: Int, values: UnsafePointer<Float>, stride: Int,
        rows: UnsafePointer<Int>?, first: Int, count: Int, dimension: Int,
        into results: UnsafePointer<UnsafeMutablePointer<Float>>
    ) {
        let block = 32
        for lower in Swift.stride(from: 0, to: count, by: block) {
            let upper = min(lower + block, count)
            var q = 0
            if dimension % 64 == 0 {
                while q + 3 <= queryCount {
                    accumulateValues3(
                        weights: weights + q, values: values, stride: stride, rows: rows, first: first,
                        lower: lower, upper: upper, dimension: dimension, into: results + q)
                    q += 3
                }
            }
            while q < queryCount {
                accumulateValues(
                    weights[q] + lower, values: values, stride: stride, rows: rows.map { $0 + lower },
                    first: first + lower, count: upper - lower, dimension: dimension, into: results[q])
                q += 1
            }
        }
    }

    /// Rows `lower..<upper` of ``accumulateValues(weights:queryCount:values:stride:rows:first:count:dimension:into:)``
    /// for three queries, 64 result elements of each (twelve 16-lane registers) at a time.
    @inlinable
    static func accumulateValues3(
        weights w: UnsafePointer<UnsafePointer<Float>>, values: UnsafePointer<Float>, stride: Int,
        rows: UnsafePointer<Int>?, first: Int, lower: Int, upper: Int, dimension: Int,
        into results: UnsafePointer<UnsafeMutablePointer<Float>>
    ) {
        let (w0, w1, w2) = (w[0], w[1], w[2])
        for c in Swift.stride(from: 0, to: dimension, by: 64) {
            let o0 = UnsafeMutableRawPointer(results[0] + c)
            let o1 = UnsafeMutableRawPointer(results[1] + c)
            let o2 = UnsafeMutableRawPointer(results[2] + c)
            var (r0, r1, r2) = (Lanes64(o0), Lanes64(o1), Lanes64(o2))
            for j in lower..<upper {
                let x = Lanes64(UnsafeRawPointer(values + (rows?[j] ?? (first + j)) * stride + c))
                r0 = r0.adding(x, times: w0[j])
                r1 = r1.adding(x, times: w1[j])
                r2 = r2.adding(x, times: w2[j])
            }
            r0.store(o0)
            r1.store(o1)
            r2.store(o2)
        }
    }

    /// 64 consecutive floats in four 16-lane registers, for ``accumulateValues3(weights:values:stride:rows:first:lower:upper:dimension:into:)``.
    @usableFromInline
    struct Lanes64 {
        @usableFromInline var lanes: (SIMD16<Float>, SIMD16<Float>, SIMD16<Float>, SIMD16<Float>)

        @inlinable @inline(__always)
        init(_ p: UnsafeRawPointer) {
            lanes = (
                p.loadUnaligned(fromByteOffset: 0, as: SIMD16<Float>.self),
                p.loadUnaligned(fromByteOffset: 64, as: SIMD16<Float>.self),
                p.loadUnaligned(fromByteOffset: 128, as: SIMD16<Float>.self),
                p.loadUnaligned(fromByteOffset: 192, as: SIMD16<Float>.self)
            )
        }

        @inlinable @inline(__always)
        init(lanes: (SIMD16<Float>, SIMD16<Float>, SIMD16<Float>, SIMD16<Float>)) { self.lanes = lanes }

        /// Each element `self[k] + weight · x[k]`: the scaled add of the one-query value sum.
        @inlinable @inline(__always)
        func adding(_ x: Lanes64, times weight: Float) -> Lanes64 {
            let s = SIMD16<Float>(repeating: weight)
            return Lanes64(
                lanes: (
                    lanes.0 + s * x.lanes.0, lanes.1 + s * x.lanes.1, lanes.2 + s * x.lanes.2, lanes.3 + s * x.lanes.3
                ))
        }

        @inlinable @inline(__always)
        func store(_ p: UnsafeMutableRawPointer) {
            p.storeBytes(of: lanes.0, toByteOffset: 0, as: SIMD16<Float>.self)
            p.storeBytes(of: lanes.1, toByteOffset: 64, as: SIMD16<Float>.self)
            p.storeBytes(of: lanes.2, toByteOffset: 128, as: SIMD16<Float>.self)
            p.storeBytes(of: lanes.3, toByteOffset: 192, as: SIMD16<Float>.self)
        }
    }

    /// The sum of 16 lanes by halves (8 + 8, 4 + 4, 2 + 2, 1 + 1): four vector additions instead of the 15
    /// dependent scalar additions of an in-order sum; the same fixed order every time.
    @inlinable
    public static func treeSum(_ v: SIMD16<Float>) -> Float {
        let s8 = v.lowHalf + v.highHalf
        let s4 = s8.lowHalf + s8.highHalf
        let s2 = s4.lowHalf + s4.highHalf
        return s2[0] + s2[1]
    }

    /// e^x in 16 lanes: x = n·ln 2 + r with |r| ≤ ln 2 / 2 (ln 2 split in two parts), e^r by its degree-6 Taylor
    /// polynomial (relative error below 2·10⁻⁷ on that range, about one float ulp), times 2^n built in the exponent
    /// bits. Lanes below −87 (including −∞) give 0; the result never overflows for x ≤ 88.
    @inlinable
    public static func exp16(_ x: SIMD16<Float>) -> SIMD16<Float> {
        // Clamping and rounding by comparisons and the 1.5·2^23 trick: the generic SIMD `clamped` and `rounded`
        // run lane by lane; these are single vector instructions with the same results (ties to even).
        let low = x.replacing(with: -87, where: x .< -87)
        let clamped = low.replacing(with: 88, where: low .> 88)
        let n = (clamped * 1.442_695_04 + 12_582_912) - 12_582_912
        var r = clamped - n * 0.693_145_75
        r = r - n * 1.428_606_8e-6
        var p = SIMD16<Float>(repeating: 1.0 / 720)
        p = p * r + 1.0 / 120
        p = p * r + 1.0 / 24
        p = p * r + 1.0 / 6
        p = p * r + 0.5
        p = p * r + 1
        p = p * r + 1
        // 2^n from the bits of n + 1.5·2^23 (whose low mantissa bits hold n + 127 once 127 is added too): vector
        // integer operations only, no per-lane conversion.
        let biased = unsafeBitCast(n + 12_583_039, to: SIMD16<Int32>.self) &- 0x4B40_0000
        let result = p * unsafeBitCast(biased &<< 23, to: SIMD16<Float>.self)
        return result.replacing(with: 0, where: x .< -87)
    }

    /// Softmax numerators in place: `x[k] = e^(x[k] − maximum)` over `count` values, 16 at a time (the last chunk
    /// padded with −∞); returns their sum, accumulated lane-wise and reduced by ``treeSum(_:)``. The result for each
    /// value depends only on the values and their count, never on where the array came from.
    public static func exponentiate(_ x: UnsafeMutablePointer<Float>, count: Int, maximum: Float) -> Float {
        var total = SIMD16<Float>()
        let m = SIMD16<Float>(repeating: maximum)
        var k = 0
        let raw = UnsafeMutableRawPointer(x)
        while k + 16 <= count {
            let e = exp16(raw.loadUnaligned(fromByteOffset: 4 * k, as: SIMD16<Float>.self) - m)
            raw.storeBytes(of: e, toByteOffset: 4 * k, as: SIMD16<Float>.self)
            total += e
            k += 16
        }
        if k < count {
            var tail = SIMD16<Float>(repeating: -.infinity)
            for j in 0..<(count - k) { tail[j] = x[k + j] }
            let e = exp16(tail - m)
            for j in 0..<(count - k) { x[k + j] = e[j] }
            total += e
        }
        return treeSum(total)
    }

    /// The largest softmax probability of `logits` (temperature 1): 1 / Σ e^(x − max), the sum in 16 lanes.
    public static func maximumProbability(_ logits: [Float]) -> Float {
        logits.withUnsafeBufferPointer { buffer in
            guard let base = buffer.baseAddress, !buffer.isEmpty else { return 0 }
            var maximum = -Float.infinity
            for value in buffer { maximum = max(maximum, value) }
            if maximum == -.infinity { return 0 }
            let m = SIMD16<Float>(repeating: maximum)
            var total = SIMD16<Float>()
            var k = 0
            let raw = UnsafeRawPointer(base)
            while k + 16 <= buffer.count {
                total += exp16(raw.loadUnaligned(fromByteOffset: 4 * k, as: SIMD16<Float>.self) - m)
                k += 16
            }
            var sum = treeSum(total)
            while k < buffer.count {
                sum += exp16(SIMD16(repeating: base[k] - maximum))[0]
                k += 1
            }
            return 1 / sum
        }
    }
}
