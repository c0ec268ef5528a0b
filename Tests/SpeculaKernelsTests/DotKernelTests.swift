import Foundation
import SpeculaKernels
import Testing

/// Random weight blocks of a type, with finite scales, from a seed.
func randomBlocks(_ type: TensorType, rows: Int, columns: Int, seed: UInt64) -> [UInt8] {
    var state = seed
    func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    let blockCount = rows * columns / type.blockSize
    var bytes = (0..<(blockCount * type.blockBytes)).map { _ in UInt8(truncatingIfNeeded: next()) }
    // Scale fields: small positive halves (0x2000–0x2BFF ≈ 0.008–0.06) so values stay finite.
    let halfOffsets: [Int]
    switch type {
    case .q4_0, .q5_0, .q8_0: halfOffsets = [0]
    case .q4_1, .q5_1, .q4_K, .q5_K: halfOffsets = [0, 2]
    case .q6_K: halfOffsets = [208]
    default: halfOffsets = []
    }
    for block in 0..<blockCount {
        for offset in halfOffsets {
            let half = UInt16(0x2000 + next() % 0x0C00)
            bytes[block * type.blockBytes + offset] = UInt8(half & 0xFF)
            bytes[block * type.blockBytes + offset + 1] = UInt8(half >> 8)
        }
    }
    if type == .f32 {
        bytes = (0..<(rows * columns)).flatMap { _ -> [UInt8] in
            let value = Float(Int(next() % 2001) - 1000) / 500
            return withUnsafeBytes(of: value.bitPattern) { Array($0) }
        }
    }
    return bytes
}

func randomActivations(rows: Int, columns: Int, seed: UInt64) -> [Float] {
    var state = seed
    return (0..<(rows * columns)).map { _ in
        state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
        return Float(Int64(bitPattern: state >> 11) % 20001) / 5000 - 2
    }
}

/// `scripts/test-portable` runs these tests against the portable kernels (SPECULA_PORTABLE at build time) and says so
/// in SPECULA_EXPECT_KERNELS: the build must then really have compiled that kernel set, or the run tested the wrong
/// code.
@Test(.enabled(if: ProcessInfo.processInfo.environment["SPECULA_EXPECT_KERNELS"] != nil))
func theBuildHasTheKernelsItWasAskedFor() {
    #expect(FastDot.kernelName == ProcessInfo.processInfo.environment["SPECULA_EXPECT_KERNELS"])
}

@Suite("Dot kernels: fast path against the scalar reference")
struct DotKernelTests {
    static let types: [TensorType] = [.q4_0, .q4_1, .q5_0, .q5_1, .q8_0, .q4_K, .q5_K, .q6_K, .f32]

    /// The fast kernels combine exact integer block sums with the reference's float operations: identical floats
    /// for the K-quants and float types; the 32-element formats sum in float lanes and agree to
    /// `FastDot.blockFormatTolerance` of Σ|w·x|.
    @Test(arguments: types)
    func fastEqualsReference(type: TensorType) {
        let rows = 7
        let columns = 512
        let weights = randomBlocks(type, rows: rows, columns: columns, seed: UInt64(type.rawValue) + 1)
        let input = randomActivations(rows: 3, columns: columns, seed: 9)
        let x = input.withUnsafeBufferPointer { QuantizedActivations($0, rowCount: 3, columnCount: columns) }
        weights.withUnsafeBytes { raw in
            let matrix = QuantizedMatrix(type: type, rowCount: rows, columnCount: columns, data: raw.baseAddress!)
            x.values32.withUnsafeBufferPointer { v32 in
                x.values256.withUnsafeBufferPointer { v256 in
                    for row in 0..<rows {
                        for index in 0..<3 {
                            let fast = FastDot.dot(
                                matrix, row: row, x, index, values32: v32.baseAddress!, values256: v256.baseAddress)
                            // A batch of three gives each row what it gets alone.
                            var batch = [Float](repeating: 0, count: 3)
                            batch.withUnsafeMutableBufferPointer { out in
                                FastDot.dotRows(
                                    matrix, row: row, x, first: 0, count: 3, values32: v32.baseAddress!,
                                    values256: v256.baseAddress, into: out.baseAddress!, stride: 1)
                            }
                            #expect(batch[index] == fast, "\(type): batched row differs from single")
                            let reference = ReferenceDot.dot(matrix, row: row, x, index)
                            if [.q4_0, .q4_1, .q5_0, .q8_0].contains(type) && !FastDot.blockFormatsAreExact {
                                let w = Dequantize.row(type, matrix.row(row), elementCount: columns)
                                var magnitude: Float = 0
                                for k in 0..<columns { magnitude += abs(w[k] * input[index * columns + k]) }
                                let bound = FastDot.blockFormatTolerance * magnitude
                                #expect(abs(fast - reference) <= bound, "\(type): \(fast) vs \(reference)")
                            } else {
                                #expect(fast == reference, "\(type) row \(row) x \(index): \(fast) vs \(reference)")
                            }
                        }
                    }
                }
            }
        }
    }

    /// The portable products' batched reference (``ReferenceDot/dotRows(_:row:_:first:count:into:stride:)``: each
    /// weight block unpacked once for all activation rows) gives every row exactly the reference's single dot, for
    /// any window of rows and any output stride.
    @Test(arguments: types)
    func batchedReferenceEqualsTheDefinition(type: TensorType) {
        let rows = 3
        let columns = 512
        let tokens = 5
        let weights = randomBlocks(type, rows: rows, columns: columns, seed: UInt64(type.rawValue) + 31)
        let input = randomActivations(rows: tokens, columns: columns, seed: 17)
        let x = input.withUnsafeBufferPointer { QuantizedActivations($0, rowCount: tokens, columnCount: columns) }
        weights.withUnsafeBytes { raw in
            let matrix = QuantizedMatrix(type: type, rowCount: rows, columnCount: columns, data: raw.baseAddress!)
            for row in 0..<rows {
                for (first, count) in [(0, 1), (0, tokens), (1, 3), (4, 1)] {
                    var out = [Float](repeating: .nan, count: 2 * count)
                    out.withUnsafeMutableBufferPointer { buffer in
                        ReferenceDot.dotRows(
                            matrix, row: row, x, first: first, count: count, into: buffer.baseAddress!, stride: 2)
                    }
                    for k in 0..<count {
                        let single = ReferenceDot.dot(matrix, row: row, x, first + k)
                        #expect(
                            out[2 * k] == single, "\(type) row \(row), rows \(first)+\(k): \(out[2 * k]) vs \(single)")
                        #expect(out[2 * k + 1].isNaN, "stride: a slot between outputs was written")
                    }
                }
            }
        }
    }

    /// The quantized-activation dot against the float dot of the dequantized row: the error is the int8 rounding
    /// of the activations, at most half a step per value: |Σ w·(x − x̂)| ≤ Σ |w|·scale/2.
    @Test(arguments: types)
    func referenceIsCloseToTheFloatDot(type: TensorType) {
        let columns = 512
        let weights = randomBlocks(type, rows: 1, columns: columns, seed: 77 + UInt64(type.rawValue))
        let input = randomActivations(rows: 1, columns: columns, seed: 5)
        let x = input.withUnsafeBufferPointer { QuantizedActivations($0, rowCount: 1, columnCount: columns) }
        weights.withUnsafeBytes { raw in
            let matrix = QuantizedMatrix(type: type, rowCount: 1, columnCount: columns, data: raw.baseAddress!)
            let w = Dequantize.row(type, raw.baseAddress!, elementCount: columns)
            var exact = 0.0
            var bound = 0.0
            let blocked = type.blockSize == 256
            for k in 0..<columns {
                exact += Double(w[k]) * Double(input[k])
                let step = Double(blocked ? x.scales256[k / 256] : x.scales32[k / 32])
                bound += abs(Double(w[k])) * step / 2
            }
            if type == .f32 { bound = 0 }
            let got = Double(ReferenceDot.dot(matrix, row: 0, x, 0))
            // Plus float rounding of the sums (relative 1e-5 of the magnitude).
            let slack = 1e-5 * w.indices.reduce(0.0) { $0 + abs(Double(w[$1]) * Double(input[$1])) }
            #expect(abs(got - exact) <= bound + slack, "\(type): \(got) vs \(exact), bound \(bound)")
        }
    }

    @Test func activationsQuantizeRowByRow() {
        let input = randomActivations(rows: 4, columns: 256, seed: 3)
        let all = input.withUnsafeBufferPointer { QuantizedActivations($0, rowCount: 4, columnCount: 256) }
        let last = Array(input[(3 * 256)...]).withUnsafeBufferPointer {
            QuantizedActivations($0, rowCount: 1, columnCount: 256)
        }
        #expect(Array(all.values32[(3 * 256)...]) == last.values32)
        #expect(Array(all.values256[(3 * 256)...]) == last.values256)
        #expect(Array(all.scales32[(3 * 8)...]) == last.scales32)
        #expect(all.scales256[3] == last.scales256[0])
    }

    /// Quantizing into a value that held other rows (``QuantizedActivations/update(_:rowCount:columnCount:formats:pool:)``,
    /// which keeps arrays whose size does not change) gives exactly what a fresh value gives, through changes of
    /// width, row count and forms, and back: nothing of the earlier rows is left.
    @Test func activationsUpdatedInPlaceEqualFreshOnes() {
        let pool = WorkerPool(threadCount: 2)
        let shapes: [(rows: Int, columns: Int, formats: QuantizedActivations.Formats, seed: UInt64)] = [
            (4, 8960, .all, 1), (4, 8960, .all, 2), (1, 8960, .blocks256, 3), (3, 1536, .blocks32, 4),
            (3, 1536, .all, 5), (2, 96, .all, 6), (4, 8960, .all, 7), (0, 256, .all, 8), (4, 8960, .all, 9),
        ]
        var reused = QuantizedActivations.empty
        for shape in shapes {
            let input = randomActivations(rows: shape.rows, columns: shape.columns, seed: shape.seed)
            let fresh = input.withUnsafeBufferPointer {
                QuantizedActivations(
                    $0, rowCount: shape.rows, columnCount: shape.columns, formats: shape.formats, pool: pool)
            }
            input.withUnsafeBufferPointer {
                reused.update($0, rowCount: shape.rows, columnCount: shape.columns, formats: shape.formats, pool: pool)
            }
            let label = "\(shape.rows) × \(shape.columns), seed \(shape.seed)"
            #expect(reused.rowCount == fresh.rowCount && reused.columnCount == fresh.columnCount, "\(label)")
            #expect(reused.formats == fresh.formats && reused.floats == fresh.floats, "\(label)")
            #expect(reused.values32 == fresh.values32 && reused.scales32 == fresh.scales32, "\(label)")
            #expect(reused.sums32 == fresh.sums32 && reused.values256 == fresh.values256, "\(label)")
            #expect(reused.scales256 == fresh.scales256 && reused.sums16 == fresh.sums16, "\(label)")
            #expect(reused.sums32of256 == fresh.sums32of256, "\(label)")
        }
    }

    /// The vector quantization gives exactly the scalar definition's bytes, scales and sums, block by block:
    /// random rows, a row of exact rounding ties (±k.5 once scaled: halves go away from zero), an all-zero block,
    /// values at the clamp; a block holding NaN or infinity is quantized without a crash and leaves the other
    /// blocks alone. Split over a pool's workers, the result is the same.
    @Test func activationsMatchTheScalarDefinition() {
        let columns = 512
        var input = randomActivations(rows: 3, columns: columns, seed: 11)
        // Row 1: first 256-block has max 127 (inverse 1) and exact ties; then a zero block.
        for k in 0..<256 { input[columns + k] = Float(k % 64) - 31.5 }
        input[columns] = 127
        input[columns + 1] = -127
        for k in 256..<288 { input[columns + k] = 0 }
        // Row 2: the last 32 values hold a NaN and an infinity.
        input[2 * columns + 500] = .nan
        input[2 * columns + 501] = .infinity
        let quantized = input.withUnsafeBufferPointer { QuantizedActivations($0, rowCount: 3, columnCount: columns) }
        for block in 0..<(3 * columns / 32) where block != (2 * columns + 500) / 32 {
            let expected = QuantizedActivations.reference(Array(input[(block * 32)..<(block * 32 + 32)]))
            #expect(Array(quantized.values32[(block * 32)..<(block * 32 + 32)]) == expected.values, "block \(block)")
            #expect(quantized.scales32[block] == expected.scale && quantized.sums32[block] == expected.sum)
        }
        for block in 0..<(3 * columns / 256) where block != (2 * columns + 500) / 256 {
            let expected = QuantizedActivations.reference(Array(input[(block * 256)..<(block * 256 + 256)]))
            #expect(Array(quantized.values256[(block * 256)..<(block * 256 + 256)]) == expected.values)
            #expect(quantized.scales256[block] == expected.scale)
            for group in 0..<16 {
                let sum = expected.values[(group * 16)..<(group * 16 + 16)].reduce(Int32(0)) { $0 + Int32($1) }
                #expect(Int32(quantized.sums16[block * 16 + group]) == sum)
            }
        }
        // Ties went away from zero (the scalar rule, checked directly): 31.5 → 32, −29.5 → −30, 2.5 → 3, ±0.5 → ±1.
        #expect(quantized.values256[columns + 63] == 32 && quantized.values256[columns + 2] == -30)
        #expect(quantized.values256[columns + 34] == 3 && quantized.values256[columns + 32] == 1)
        #expect(quantized.values256[columns + 31] == -1)

        let large = randomActivations(rows: 8, columns: 2304, seed: 5)
        let serial = large.withUnsafeBufferPointer { QuantizedActivations($0, rowCount: 8, columnCount: 2304) }
        let split = large.withUnsafeBufferPointer {
            QuantizedActivations($0, rowCount: 8, columnCount: 2304, pool: WorkerPool(threadCount: 3))
        }
        #expect(serial.values32 == split.values32 && serial.values256 == split.values256)
        #expect(serial.scales32 == split.scales32 && serial.scales256 == split.scales256)
        #expect(
            serial.sums32 == split.sums32 && serial.sums16 == split.sums16 && serial.sums32of256 == split.sums32of256)
    }
}

@Suite("Packed matrices: interleaved rows against the scalar reference")
struct PackedMatrixTests {
    static let types: [TensorType] = [.q4_K, .q6_K, .q8_0, .q5_0, .q4_0]

    /// Every output of a packed product agrees with ``ReferenceDot`` to `PackedMatrix.tolerance` of Σ|w·x|, and a
    /// token's row of a 40-token product (two token tiles) is bit-identical to that token multiplied alone.
    @Test(arguments: types)
    func packedProductMatchesReference(type: TensorType) throws {
        guard PackedMatrix.supports(type) else { return }
        let rows = 48
        let columns = 768
        let tokens = 40
        let weights = randomBlocks(type, rows: rows, columns: columns, seed: 100 + UInt64(type.rawValue))
        let input = randomActivations(rows: tokens, columns: columns, seed: 17)
        let x = input.withUnsafeBufferPointer { QuantizedActivations($0, rowCount: tokens, columnCount: columns) }
        try weights.withUnsafeBytes { raw in
            let plain = QuantizedMatrix(type: type, rowCount: rows, columnCount: columns, data: raw.baseAddress!)
            let matrix = plain.packed()
            let packed = try #require(matrix.packed)
            #expect(packed.groupCount == 3)
            var output = [Float](repeating: .nan, count: tokens * rows)
            output.withUnsafeMutableBufferPointer { Linear.multiply(matrix, x, into: $0.baseAddress!) }
            for token in 0..<tokens {
                for row in 0..<rows {
                    let reference = ReferenceDot.dot(plain, row: row, x, token)
                    let w = Dequantize.row(type, plain.row(row), elementCount: columns)
                    var magnitude: Float = 0
                    for k in 0..<columns { magnitude += abs(w[k] * input[token * columns + k]) }
                    let got = output[token * rows + row]
                    #expect(
                        abs(got - reference) <= PackedMatrix.tolerance * magnitude,
                        "\(type) row \(row) token \(token): \(got) vs \(reference)")
                }
            }
            for token in [0, 5, 33, 39] {
                let alone = Array(input[(token * columns)..<((token + 1) * columns)]).withUnsafeBufferPointer {
                    QuantizedActivations($0, rowCount: 1, columnCount: columns)
                }
                var single = [Float](repeating: .nan, count: rows)
                single.withUnsafeMutableBufferPointer { Linear.multiply(matrix, alone, into: $0.baseAddress!) }
                #expect(single == Array(output[(token * rows)..<((token + 1) * rows)]), "\(type) token \(token)")
            }
        }
    }

    /// Products running at once on several threads, each with its own pool, give the outputs the same products give
    /// one after another: each thread's scratch (a packed product's tile accumulators, the AVX2 kernels' unpacked
    /// row) is its own. Packed where the build packs the type, through the stored layout otherwise.
    @Test(arguments: [TensorType.q4_K, .q6_K, .q8_0, .q5_0])
    func concurrentProductsKeepTheirOwnScratch(type: TensorType) async throws {
        let rows = 256
        let columns = 1024
        let weights = randomBlocks(type, rows: rows, columns: columns, seed: 300 + UInt64(type.rawValue))
        let matrix = weights.withUnsafeBytes { raw in
            QuantizedMatrix(type: type, rowCount: rows, columnCount: columns, data: raw.baseAddress!).packed()
        }
        #expect((matrix.packed != nil) == PackedMatrix.supports(type))
        let batches = [1, 7, 40, 3]
        func product(_ tokens: Int, seed: UInt64, pool: WorkerPool) -> [Float] {
            let input = randomActivations(rows: tokens, columns: columns, seed: seed)
            let x = input.withUnsafeBufferPointer { QuantizedActivations($0, rowCount: tokens, columnCount: columns) }
            var output = [Float](repeating: .nan, count: tokens * rows)
            output.withUnsafeMutableBufferPointer { Linear.multiply(matrix, x, into: $0.baseAddress!, pool: pool) }
            return output
        }
        let serialPool = WorkerPool(threadCount: 2)
        var expected: [[Float]] = []
        for (index, tokens) in batches.enumerated() {
            expected.append(product(tokens, seed: 50 + UInt64(index), pool: serialPool))
        }
        let results = await withTaskGroup(of: (Int, [[Float]]).self) { group in
            for task in 0..<4 {
                group.addTask {
                    let pool = WorkerPool(threadCount: 2)
                    var outputs: [[Float]] = []
                    for round in 0..<3 {
                        for (index, tokens) in batches.enumerated() where (index + round + task) % 2 == 0 || round == 2
                        {
                            outputs.append(product(tokens, seed: 50 + UInt64(index), pool: pool))
                        }
                    }
                    return (task, outputs)
                }
            }
            var all: [(Int, [[Float]])] = []
            for await result in group { all.append(result) }
            return all
        }
        for (task, outputs) in results {
            var index = 0
            for round in 0..<3 {
                for (batch, _) in batches.enumerated() where (batch + round + task) % 2 == 0 || round == 2 {
                    let same = outputs[index] == expected[batch]
                    #expect(same, "\(type) task \(task) round \(round) batch \(batch)")
                    index += 1
                }
            }
        }
    }

    /// The load's word-at-a-time repacking stores exactly the bytes the value-by-value definition assembles, on
    /// random blocks (every nibble and bit pattern appears) of every type with a layout; padding included.
    @Test(arguments: types)
    func repackingEqualsItsDefinition(type: TensorType) throws {
        guard PackedMatrix.supports(type) else { return }
        let weights = randomBlocks(type, rows: 64, columns: 1024, seed: 900 + UInt64(type.rawValue))
        try weights.withUnsafeBytes { raw in
            let plain = QuantizedMatrix(type: type, rowCount: 64, columnCount: 1024, data: raw.baseAddress!)
            let packed = try #require(PackedMatrix(plain))
            let stored = packed.storedBytes
            let expected = PackedMatrix.bytesByDefinition(plain)
            #expect(stored.count == expected.count)
            let first = zip(stored, expected).enumerated().first { $0.element.0 != $0.element.1 }?.offset
            #expect(first == nil, "\(type): first differing byte at \(first ?? -1)")
        }
    }

    @Test func shapesWithoutALayoutStayUnpacked() {
        let weights = randomBlocks(.q4_K, rows: 20, columns: 256, seed: 1)
        weights.withUnsafeBytes { raw in
            let matrix = QuantizedMatrix(type: .q4_K, rowCount: 20, columnCount: 256, data: raw.baseAddress!)
            #expect(matrix.packed().packed == nil)
        }
        let f32 = randomBlocks(.f32, rows: 16, columns: 32, seed: 1)
        f32.withUnsafeBytes { raw in
            let matrix = QuantizedMatrix(type: .f32, rowCount: 16, columnCount: 32, data: raw.baseAddress!)
            #expect(matrix.packed().packed == nil)
        }
    }
}
