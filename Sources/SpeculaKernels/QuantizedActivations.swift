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
    /// [rowCount, columnCount / 16]: Σ of the quantized values of each 16-value group (256-block scales), as 16-bit
    /// integers (|Σ| ≤ 16 · 127) so that two adjacent groups form one 32-bit lane.
    public internal(set) var sums16: [Int16]
    /// [rowCount, columnCount / 32]: Σ of the quantized values of each 32-value sub-block (256-block scales), as
    /// 16-bit integers (|Σ| ≤ 32 · 127) so that two adjacent sub-blocks form one 32-bit lane.
    public internal(set) var sums32of256: [Int16]

    /// Which quantized forms were made (a product needs the one its weight format uses; see
    /// ``QuantizedMatrix/activationFormats``).
    public let formats: Formats

    /// The quantized forms of an activation row.
    public struct Formats: OptionSet, Sendable {
        public let rawValue: Int
        public init(rawValue: Int) { self.rawValue = rawValue }
        /// 32-value blocks (`values32`, `scales32`, `sums32`): the 32-element weight formats.
        public static let blocks32 = Formats(rawValue: 1)
        /// 256-value blocks (`values256`, `scales256`, `sums16`, `sums32of256`): the K-quants.
        public static let blocks256 = Formats(rawValue: 2)
        public static let all: Formats = [.blocks32, .blocks256]
    }

    public var hasBlocks256: Bool { formats.contains(.blocks256) }

    /// Quantizes `rows` (`[rowCount, columnCount]`, row-major). `columnCount` must be a multiple of 32; the 256-value
    /// form is made only when it is also a multiple of 256.
    public init(
        _ rows: UnsafeBufferPointer<Float>, rowCount: Int, columnCount: Int, formats wanted: Formats = .all
    ) {
        precondition(columnCount % 32 == 0, "activation rows must be whole 32-value blocks")
        precondition(rows.count >= rowCount * columnCount)
        self.rowCount = rowCount
        self.columnCount = columnCount
        var formats = wanted
        if columnCount % 256 != 0 { formats.remove(.blocks256) }
        self.formats = formats
        floats = Array(rows.prefix(rowCount * columnCount))
        let count = rowCount * columnCount
        let with32 = formats.contains(.blocks32)
        let with256 = formats.contains(.blocks256)
        values32 = [Int8](repeating: 0, count: with32 ? count : 0)
        scales32 = [Float](repeating: 0, count: with32 ? count / 32 : 0)
        sums32 = [Int32](repeating: 0, count: with32 ? count / 32 : 0)
        values256 = [Int8](repeating: 0, count: with256 ? count : 0)
        scales256 = [Float](repeating: 0, count: with256 ? count / 256 : 0)
        sums16 = [Int16](repeating: 0, count: with256 ? count / 16 : 0)
        sums32of256 = [Int16](repeating: 0, count: with256 ? count / 32 : 0)
        guard let source = rows.baseAddress, count > 0 else { return }
        if with32 {
            values32.withUnsafeMutableBufferPointer { v in
                scales32.withUnsafeMutableBufferPointer { sc in
                    sums32.withUnsafeMutableBufferPointer { su in
                        guard let v = v.baseAddress, let sc = sc.baseAddress, let su = su.baseAddress else { return }
                        for block in 0..<(count / 32) {
                            let (scale, sum) = Self.quantize(source + block * 32, 32, into: v + block * 32)
                            sc[block] = scale
                            su[block] = sum
                        }
                    }
                }
            }
        }
        if with256 {
            values256.withUnsafeMutableBufferPointer { v in
                scales256.withUnsafeMutableBufferPointer { sc in
                    sums16.withUnsafeMutableBufferPointer { s16 in
                        sums32of256.withUnsafeMutableBufferPointer { s32 in
                            guard let v = v.baseAddress, let sc = sc.baseAddress, let s16 = s16.baseAddress,
                                let s32 = s32.baseAddress
                            else { return }
                            for block in 0..<(count / 256) {
                                let values = v + block * 256
                                sc[block] = Self.quantize(source + block * 256, 256, into: values).0
                                for group in 0..<16 {
                                    var sum: Int32 = 0
                                    for k in 0..<16 { sum &+= Int32(values[group * 16 + k]) }
                                    s16[block * 16 + group] = Int16(sum)
                                }
                                for pair in 0..<8 {
                                    s32[block * 8 + pair] =
                                        s16[block * 16 + 2 * pair] &+ s16[block * 16 + 2 * pair + 1]
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// Symmetric int8 quantization of `count` values: scale = max|x| / 127, q = round(x / scale) (halves away from
    /// zero). Returns the scale and the sum of the quantized values.
    @inline(__always)
    static func quantize(_ source: UnsafePointer<Float>, _ count: Int, into output: UnsafeMutablePointer<Int8>)
        -> (Float, Int32)
    {
        var maximum: Float = 0
        for k in 0..<count { maximum = max(maximum, abs(source[k])) }
        if maximum == 0 {
            output.update(repeating: 0, count: count)
            return (0, 0)
        }
        let scale = maximum / 127
        let inverse = 127 / maximum
        var sum: Int32 = 0
        for k in 0..<count {
            let q = Int8(max(-127, min(127, (source[k] * inverse).rounded())))
            output[k] = q
            sum &+= Int32(q)
        }
        return (scale, sum)
    }
}
