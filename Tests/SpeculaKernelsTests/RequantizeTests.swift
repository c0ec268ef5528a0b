import Foundation
import SpeculaKernels
import Testing

@Suite("Re-quantization to Q4_0")
struct RequantizeTests {
    /// Seeded values in −2…2.
    static func values(_ count: Int, seed: UInt64) -> [Float] { randomActivations(rows: 1, columns: count, seed: seed) }

    static func quantize(_ values: [Float]) -> [UInt8] {
        var bytes = [UInt8](repeating: 0xAA, count: values.count / 32 * 18)
        values.withUnsafeBufferPointer { x in
            bytes.withUnsafeMutableBytes { out in
                guard let x = x.baseAddress, let out = out.baseAddress else { return }
                Requantize.q4_0(x, count: values.count, into: out)
            }
        }
        return bytes
    }

    static func dequantize(_ bytes: [UInt8], count: Int) -> [Float] {
        bytes.withUnsafeBytes { raw in
            guard let base = raw.baseAddress else { return [] }
            return Dequantize.row(.q4_0, base, elementCount: count)
        }
    }

    /// Half precision of `value` by the format's rules (IEEE binary16, round to nearest even).
    static func half(_ value: Float) -> Float { Float(Float16(value)) }

    /// Values the format holds exactly — a half scale d and codes 0…15 standing for (q − 8)·d — come back exactly,
    /// whether the largest magnitude is the code −8 or the code +7 (no −8 in the block).
    @Test func representableValuesComeBackExactly() {
        var state: UInt64 = 11
        func next() -> Int {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Int(state >> 33)
        }
        var input: [Float] = []
        for block in 0..<64 {
            let d = Self.half(Float(1 + next() % 1000) / 4096) * (block % 3 == 0 ? -1 : 1)
            // Even blocks hold a code 0 (−8·d); odd ones codes 1…15 with a 15 (+7·d) as the largest magnitude.
            var codes = (0..<32).map { _ in block % 2 == 0 ? next() % 16 : 1 + next() % 15 }
            codes[next() % 32] = block % 2 == 0 ? 0 : 15
            input += codes.map { Float($0 - 8) * d }
        }
        let output = Self.dequantize(Self.quantize(input), count: input.count)
        #expect(output == input)
    }

    /// On arbitrary values each block's squared error is at most that of the format's usual scale (the largest
    /// magnitude mapped to −8, computed here on its own), and every value within the scale's range is within half a
    /// step of its code. A block of zeros is zeros.
    @Test func theChosenScaleIsNeverWorseThanTheUsualOne() {
        var input = Self.values(32 * 200, seed: 5)
        // A few blocks with one outlier, where the usual scale wastes most codes.
        for block in stride(from: 0, to: 200, by: 7) { input[block * 32 + block % 32] *= 12 }
        for k in 0..<32 { input[32 * 3 + k] = 0 }
        let bytes = Self.quantize(input)
        let output = Self.dequantize(bytes, count: input.count)
        var better = 0
        for block in 0..<200 {
            let x = Array(input[(block * 32)..<(block * 32 + 32)])
            let y = Array(output[(block * 32)..<(block * 32 + 32)])
            let extreme = x.max { abs($0) < abs($1) } ?? 0
            let usual = Self.half(extreme / -8)
            var usualError: Float = 0
            for v in x {
                let q = usual == 0 ? 8 : min(max((v / usual).rounded() + 8, 0), 15)
                usualError += (v - (q - 8) * usual) * (v - (q - 8) * usual)
            }
            let error = zip(x, y).reduce(Float(0)) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) }
            #expect(error <= usualError * (1 + 1e-6), "block \(block): \(error) > \(usualError)")
            if error < usualError * 0.98 { better += 1 }
            let d = abs(Float(Float16(bitPattern: UInt16(bytes[block * 18]) | UInt16(bytes[block * 18 + 1]) << 8)))
            for (v, w) in zip(x, y) where abs(v) <= 7 * d {
                #expect(abs(v - w) <= d / 2 * (1 + 1e-5), "block \(block): \(v) → \(w), step \(d)")
            }
        }
        #expect(output[(32 * 3)..<(32 * 4)].allSatisfy { $0 == 0 })
        // The search is not a no-op: it beats the usual scale clearly on a good share of blocks.
        #expect(better > 40, "\(better) of 200 blocks improved")
    }

    /// A block holding a NaN or an infinity (a corrupt file's weights) is quantized without a crash, to finite
    /// values; the blocks beside it are quantized as if alone.
    @Test func valuesThatAreNotNumbersStayContained() {
        var input = Self.values(96, seed: 8)
        let clean = Self.quantize(Array(input[64..<96]))
        input[3] = .nan
        input[40] = .infinity
        let bytes = Self.quantize(input)
        let output = Self.dequantize(bytes, count: 96)
        #expect(output.allSatisfy { $0.isFinite })
        #expect(Array(bytes[36..<54]) == clean)
    }

    /// A matrix re-quantized row by row holds, in each row, exactly what quantizing that row's dequantized values
    /// gives; its packed product agrees with the reference of its own rows; a format that is not a target, or rows
    /// that are not whole blocks, give nil.
    @Test(arguments: [TensorType.q5_0, .q8_0, .q6_K, .q4_K, .f32])
    func aMatrixIsRequantizedRowByRow(type: TensorType) throws {
        let rows = 32
        let columns = 512
        let weights = randomBlocks(type, rows: rows, columns: columns, seed: 40 + UInt64(type.rawValue))
        try weights.withUnsafeBytes { raw in
            let source = QuantizedMatrix(type: type, rowCount: rows, columnCount: columns, data: raw.baseAddress!)
            let leaner = try #require(source.requantized(to: .q4_0))
            #expect(leaner.type == .q4_0 && leaner.rowCount == rows && leaner.columnCount == columns)
            for row in 0..<rows {
                let values = Dequantize.row(type, source.row(row), elementCount: columns)
                let expected = Self.quantize(values)
                let got = Array(UnsafeRawBufferPointer(start: leaner.row(row), count: leaner.rowBytes))
                #expect(got == expected, "\(type) row \(row)")
            }
            #expect(source.requantized(to: .q8_0) == nil)
            #expect(source.requantized(to: .q4_K) == nil)
            // A product with the re-quantized matrix, packed, is a product with its own rows.
            let packed = leaner.packed()
            if PackedMatrix.supports(.q4_0) { #expect(packed.packed != nil) }
            let input = randomActivations(rows: 3, columns: columns, seed: 3)
            let x = input.withUnsafeBufferPointer { QuantizedActivations($0, rowCount: 3, columnCount: columns) }
            var output = [Float](repeating: .nan, count: 3 * rows)
            output.withUnsafeMutableBufferPointer { Linear.multiply(packed, x, into: $0.baseAddress!) }
            for token in 0..<3 {
                for row in 0..<rows {
                    let reference = ReferenceDot.dot(leaner, row: row, x, token)
                    let w = Dequantize.row(.q4_0, leaner.row(row), elementCount: columns)
                    var magnitude: Float = 0
                    for k in 0..<columns { magnitude += abs(w[k] * input[token * columns + k]) }
                    #expect(abs(output[token * rows + row] - reference) <= PackedMatrix.tolerance * magnitude)
                }
            }
        }
        let narrow = randomBlocks(.f32, rows: 16, columns: 48, seed: 2)
        narrow.withUnsafeBytes { raw in
            let matrix = QuantizedMatrix(type: .f32, rowCount: 16, columnCount: 48, data: raw.baseAddress!)
            #expect(matrix.requantized(to: .q4_0) == nil)
        }
    }
}
