import Foundation
import SpeculaKernels
import Testing

@Suite("Float operations of the forward pass")
struct OpsTests {
    /// The vector exponential against the C library's double-precision exp on a dense grid of [−90, 88]: relative
    /// error at most 4·10⁻⁷ (about 3 float ulps) where the result is a normal float, exactly 0 below −87.
    @Test func vectorExponentialIsAccurate() {
        var worst = 0.0
        var x: Float = -90
        while x <= 88 {
            var lanes = SIMD16<Float>()
            for j in 0..<16 { lanes[j] = x + Float(j) * 0.000_7 }
            let got = Ops.exp16(lanes)
            for j in 0..<16 {
                let input = lanes[j]
                if input > 88 { continue }  // clamped to e^88 (the kernel's documented range)
                if input < -87 {
                    #expect(got[j] == 0, "exp(\(input)) = \(got[j])")
                    continue
                }
                let exact = Foundation.exp(Double(input))
                worst = max(worst, abs(Double(got[j]) - exact) / exact)
            }
            x += 0.011
        }
        #expect(worst <= 4e-7, "worst relative error \(worst)")
        #expect(Ops.exp16(SIMD16(repeating: -.infinity)) == SIMD16())
        #expect(Ops.exp16(SIMD16(repeating: 0)) == SIMD16(repeating: 1))
    }

    /// Softmax numerators: the same values whether the count is a multiple of 16 or has a tail, and their sum.
    @Test func exponentiateMatchesLaneByLane() {
        for count in [1, 5, 16, 17, 40] {
            var values = (0..<count).map { Float(sin(Double($0))) * 3 }
            let maximum = values.max() ?? 0
            let expected = values.map { Ops.exp16(SIMD16(repeating: $0 - maximum))[0] }
            let total = values.withUnsafeMutableBufferPointer {
                Ops.exponentiate($0.baseAddress!, count: count, maximum: maximum)
            }
            #expect(values == expected, "count \(count)")
            let sum = expected.reduce(0.0) { $0 + Double($1) }
            #expect(abs(Double(total) - sum) <= 1e-6 * sum, "count \(count): \(total) vs \(sum)")
        }
    }

    /// The vector gate activations against their definitions in double precision on a grid of [−100, 100]: SiLU
    /// to a relative 1e-6 (or 1e-30 absolute, where it underflows), GELU-tanh to 1e-6 · max(1, |x|) absolute (its
    /// tanh is 1 − 2/(1 + e^(2u)), which loses relative accuracy only where the result is near 0).
    @Test func gateActivationsMatchTheirDefinitions() {
        var worstSiLU = 0.0
        var worstGELU = 0.0
        var x: Float = -100
        while x <= 100 {
            var lanes = SIMD16<Float>()
            for j in 0..<16 { lanes[j] = x + Float(j) * 0.001_3 }
            let silu = Ops.silu16(lanes)
            let gelu = Ops.geluTanh16(lanes)
            for j in 0..<16 {
                let v = Double(lanes[j])
                let exactSiLU = v / (1 + Foundation.exp(-v))
                let u = 0.797_884_56 * (v + 0.044_715 * v * v * v)
                let exactGELU = 0.5 * v * (1 + Foundation.tanh(u))
                if abs(exactSiLU) > 1e-30 {
                    worstSiLU = max(worstSiLU, abs(Double(silu[j]) - exactSiLU) / abs(exactSiLU))
                } else {
                    #expect(abs(Double(silu[j])) <= 1e-30)
                }
                worstGELU = max(worstGELU, abs(Double(gelu[j]) - exactGELU) / max(1, abs(v)))
                #expect(silu[j].isFinite && gelu[j].isFinite)
            }
            x += 0.37
        }
        #expect(worstSiLU <= 1e-6, "SiLU worst relative error \(worstSiLU)")
        #expect(worstGELU <= 1e-6, "GELU worst scaled error \(worstGELU)")
    }

    /// A value's gated activation does not depend on the count or on where a range is split (the tail goes through
    /// the same vector arithmetic, padded).
    @Test func gatedActivationDependsOnlyOnItsInputs() {
        for activation in [Ops.GateActivation.silu, .geluTanh] {
            let gate = (0..<53).map { Float(sin(Double($0) * 0.7)) * 6 }
            let up = (0..<53).map { Float(cos(Double($0) * 0.3)) }
            var whole = gate
            var pieces = gate
            whole.withUnsafeMutableBufferPointer { g in
                up.withUnsafeBufferPointer {
                    Ops.gatedActivation(g.baseAddress!, $0.baseAddress!, count: 53, activation)
                }
            }
            pieces.withUnsafeMutableBufferPointer { g in
                up.withUnsafeBufferPointer { u in
                    for (lower, upper) in [(0, 5), (5, 37), (37, 53)] {
                        Ops.gatedActivation(
                            g.baseAddress! + lower, u.baseAddress! + lower, count: upper - lower, activation)
                    }
                }
            }
            #expect(whole == pieces, "\(activation)")
            let single = Ops.silu16(SIMD16(repeating: gate[40]))[0] * up[40]
            if activation == .silu { #expect(whole[40] == single) }
        }
    }

    @Test func treeSumAddsByHalves() {
        let v = SIMD16<Float>((0..<16).map { Float($0) + 0.25 })
        #expect(Ops.treeSum(v) == 124)
        // 1 + 2^24 − 2^24 in order would lose the 1; by halves it is kept: the order is the documented one.
        var w = SIMD16<Float>()
        w[0] = 16_777_216
        w[8] = -16_777_216
        w[1] = 1
        #expect(Ops.treeSum(w) == 1)
    }

    /// Random floats with a fixed seed (a linear congruential generator), so a failure repeats.
    static func randomFloats(_ count: Int, seed: UInt64) -> [Float] {
        var state = seed
        return (0..<count).map { _ in
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Float(Int64(bitPattern: state >> 11) % 2_000_001 - 1_000_000) / 1_000_000
        }
    }

    /// The grouped score kernel gives each query the bits the one-query kernel gives it, over direct and listed
    /// rows, any row count (whole quartets and the rest) and any number of queries.
    @Test func groupedScoresEqualOneQueryAtATime() {
        for (dimension, queryCount, count) in [(128, 6, 37), (128, 7, 64), (64, 1, 3), (80, 4, 9), (128, 12, 0)] {
            let stride = dimension + 16
            let keys = Self.randomFloats(stride * 80, seed: UInt64(dimension * 100 + count))
            let queries = Self.randomFloats(queryCount * dimension, seed: UInt64(queryCount))
            let listed = (0..<count).map { (($0 * 7) + 3) % 80 }
            for rows in [nil, listed] {
                var grouped = [Float](repeating: .nan, count: queryCount * count)
                var single = [Float](repeating: .nan, count: queryCount * count)
                keys.withUnsafeBufferPointer { k in
                    queries.withUnsafeBufferPointer { q in
                        grouped.withUnsafeMutableBufferPointer { g in
                            single.withUnsafeMutableBufferPointer { s in
                                let queryRows = (0..<queryCount).map { q.baseAddress! + $0 * dimension }
                                let outputs = (0..<queryCount).map { g.baseAddress! + $0 * count }
                                let rowList = rows ?? []
                                rowList.withUnsafeBufferPointer { r in
                                    let listedRows = rows == nil ? nil : r.baseAddress
                                    Ops.attentionScores(
                                        queries: queryRows, queryCount: queryCount, keys: k.baseAddress!,
                                        stride: stride, rows: listedRows, first: 5, count: count,
                                        dimension: dimension, scale: 0.125, into: outputs)
                                    for i in 0..<queryCount {
                                        Ops.attentionScores(
                                            queryRows[i], keys: k.baseAddress!, stride: stride, rows: listedRows,
                                            first: 5, count: count, dimension: dimension, scale: 0.125,
                                            into: s.baseAddress! + i * count)
                                    }
                                }
                            }
                        }
                    }
                }
                #expect(
                    grouped.map(\.bitPattern) == single.map(\.bitPattern),
                    "dimension \(dimension), \(queryCount) queries, \(count) rows, listed: \(rows != nil)")
            }
        }
    }

    /// The grouped value sums give each element `result + w · value` added row by row in order (the definition,
    /// computed here one float at a time), over direct and listed rows, whole blocks of 32 rows and the rest,
    /// and query counts with and without a remainder after groups of three.
    @Test func groupedValueSumsAddRowByRowInOrder() {
        for (dimension, queryCount, count) in [(128, 6, 70), (128, 7, 33), (64, 2, 5), (80, 4, 40), (192, 3, 1)] {
            let stride = dimension + 16
            let values = Self.randomFloats(stride * 100, seed: UInt64(dimension + count))
            let weights = Self.randomFloats(queryCount * count, seed: UInt64(queryCount * 31))
            let start = Self.randomFloats(queryCount * dimension, seed: 99)
            let listed = (0..<count).map { (($0 * 13) + 1) % 100 }
            for rows in [nil, listed] {
                var expected = start
                for q in 0..<queryCount {
                    for j in 0..<count {
                        let row = rows?[j] ?? (7 + j)
                        for k in 0..<dimension {
                            let product = weights[q * count + j] * values[row * stride + k]
                            expected[q * dimension + k] = expected[q * dimension + k] + product
                        }
                    }
                }
                var grouped = start
                values.withUnsafeBufferPointer { v in
                    weights.withUnsafeBufferPointer { w in
                        grouped.withUnsafeMutableBufferPointer { g in
                            let weightRows = (0..<queryCount).map { w.baseAddress! + $0 * count }
                            let results = (0..<queryCount).map { g.baseAddress! + $0 * dimension }
                            let rowList = rows ?? []
                            rowList.withUnsafeBufferPointer { r in
                                Ops.accumulateValues(
                                    weights: weightRows, queryCount: queryCount, values: v.baseAddress!,
                                    stride: stride, rows: rows == nil ? nil : r.baseAddress, first: 7, count: count,
                                    dimension: dimension, into: results)
                            }
                        }
                    }
                }
                #expect(
                    grouped.map(\.bitPattern) == expected.map(\.bitPattern),
                    "dimension \(dimension), \(queryCount) queries, \(count) rows, listed: \(rows != nil)")
            }
        }
    }
}
