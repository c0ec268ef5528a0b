/// A batch of activation rows quantized to int8 for integer dot products with quantized weights: per row, blocks
/// of 32 with a float scale and the sum of their quantized values (for the 32-element weight formats), and, when the
/// row length is a multiple of 256, blocks of 256 with a scale and sums per 16 values (for the K-quants). The float
/// rows are kept too, for float weights.
///
/// Each row is quantized on its own, so a row's numbers never depend on the other rows of the batch.
public struct QuantizedActivations: Sendable {
    public let rowCount: Int
    public let columnCount: Int
    /// [rowCount, columnCount]
    public internal(set) var floats: [Float]
    /// [rowCount, columnCount], quantized with the 32-block scales.
    public internal(set) var values32: [Int8]
    /// [rowCount, columnCount / 32]
    public internal(set) var scales32: [Float]
    /// [rowCount, columnCount / 32]: Σ of the quantized values of each block.
    public internal(set) var sums32: [Int32]
    /// [rowCount, columnCount], quantized with the 256-block scales (empty when columnCount % 256 ≠ 0).
    public internal(set) var values256: [Int8]
    /// [rowCount, columnCount / 256]
    public internal(set) var scales256: [Float]
    /// [rowCount, columnCount / 16]: Σ of the quantized values of each 16-value group (256-block scales).
    public internal(set) var sums16: [Int32]

    public var hasBlocks256: Bool { columnCount % 256 == 0 }

    /// Quantizes `rows` (`[rowCount, columnCount]`, row-major). `columnCount` must be a multiple of 32.
    public init(_ rows: UnsafeBufferPointer<Float>, rowCount: Int, columnCount: Int) {
        precondition(columnCount % 32 == 0, "activation rows must be whole 32-value blocks")
        precondition(rows.count >= rowCount * columnCount)
        self.rowCount = rowCount
        self.columnCount = columnCount
        floats = Array(rows.prefix(rowCount * columnCount))
        let blocks32 = columnCount / 32
        values32 = [Int8](repeating: 0, count: rowCount * columnCount)
        scales32 = [Float](repeating: 0, count: rowCount * blocks32)
        sums32 = [Int32](repeating: 0, count: rowCount * blocks32)
        let with256 = columnCount % 256 == 0
        values256 = with256 ? [Int8](repeating: 0, count: rowCount * columnCount) : []
        scales256 = with256 ? [Float](repeating: 0, count: rowCount * columnCount / 256) : []
        sums16 = with256 ? [Int32](repeating: 0, count: rowCount * columnCount / 16) : []
        for row in 0..<rowCount {
            let base = row * columnCount
            for block in 0..<blocks32 {
                let (scale, sum) = Self.quantize(rows, base + block * 32, 32, into: &values32)
                scales32[row * blocks32 + block] = scale
                sums32[row * blocks32 + block] = sum
            }
            if with256 {
                for block in 0..<(columnCount / 256) {
                    let start = base + block * 256
                    let (scale, _) = Self.quantize(rows, start, 256, into: &values256)
                    scales256[row * columnCount / 256 + block] = scale
                    for group in 0..<16 {
                        var sum: Int32 = 0
                        for k in 0..<16 { sum += Int32(values256[start + group * 16 + k]) }
                        sums16[(start + group * 16) / 16] = sum
                    }
                }
            }
        }
    }

    /// Symmetric int8 quantization of `count` values: scale = max|x| / 127, q = round(x / scale).
    static func quantize(_ source: UnsafeBufferPointer<Float>, _ start: Int, _ count: Int, into output: inout [Int8])
        -> (Float, Int32)
    {
        var maximum: Float = 0
        for k in 0..<count { maximum = max(maximum, abs(source[start + k])) }
        if maximum == 0 {
            for k in 0..<count { output[start + k] = 0 }
            return (0, 0)
        }
        let scale = maximum / 127
        let inverse = 127 / maximum
        var sum: Int32 = 0
        for k in 0..<count {
            let q = Int8(max(-127, min(127, (source[start + k] * inverse).rounded())))
            output[start + k] = q
            sum += Int32(q)
        }
        return (scale, sum)
    }
}
