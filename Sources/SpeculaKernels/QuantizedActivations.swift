#if SPECULA_AVX512
    import _Builtin_intrinsics.intel
#endif

/// A batch of activation rows quantized to int8 for integer dot products with quantized weights: per row, blocks
/// of 32 with a float scale and the sum of their quantized values (for the 32-element weight formats), and, when the
/// row length is a multiple of 256, blocks of 256 with a scale and sums per 16 values (for the K-quants). The float
/// rows are kept too, for float weights.
///
/// Each row is quantized on its own, so a row's numbers never depend on the other rows of the batch.
public struct QuantizedActivations: Sendable {
    public private(set) var rowCount: Int
    public private(set) var columnCount: Int
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
    public private(set) var formats: Formats

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
    /// form is made only when it is also a multiple of 256. With a `pool`, large batches are split over its workers
    /// by whole blocks (each block is quantized on its own, so the split changes nothing).
    public init(
        _ rows: UnsafeBufferPointer<Float>, rowCount: Int, columnCount: Int, formats wanted: Formats = .all,
        pool: WorkerPool? = nil
    ) {
        self.rowCount = 0
        self.columnCount = 0
        formats = []
        (floats, values32, scales32, sums32) = ([], [], [], [])
        (values256, scales256, sums16, sums32of256) = ([], [], [], [])
        update(rows, rowCount: rowCount, columnCount: columnCount, formats: wanted, pool: pool)
    }

    /// No rows: storage for ``update(_:rowCount:columnCount:formats:pool:)`` to fill.
    public static var empty: QuantizedActivations {
        QuantizedActivations(UnsafeBufferPointer(start: nil, count: 0), rowCount: 0, columnCount: 0)
    }

    /// Quantizes `rows` as ``init(_:rowCount:columnCount:formats:pool:)`` does, into this value's own arrays: an
    /// array whose size does not change keeps its storage (a forward pass quantizes activations of the same few
    /// shapes in every layer, so their arrays are made once per pass instead of eight per quantization). Every
    /// element is written, so nothing of the previous rows is left.
    public mutating func update(
        _ rows: UnsafeBufferPointer<Float>, rowCount: Int, columnCount: Int, formats wanted: Formats = .all,
        pool: WorkerPool? = nil
    ) {
        precondition(columnCount % 32 == 0, "activation rows must be whole 32-value blocks")
        precondition(rows.count >= rowCount * columnCount)
        self.rowCount = rowCount
        self.columnCount = columnCount
        var formats = wanted
        if columnCount % 256 != 0 { formats.remove(.blocks256) }
        self.formats = formats
        let count = rowCount * columnCount
        let with32 = formats.contains(.blocks32)
        let with256 = formats.contains(.blocks256)
        if floats.count == count, let source = rows.baseAddress {
            floats.withUnsafeMutableBufferPointer { $0.baseAddress?.update(from: source, count: count) }
        } else {
            floats = Array(rows.prefix(count))
        }
        Self.resize(&values32, with32 ? count : 0)
        Self.resize(&scales32, with32 ? count / 32 : 0)
        Self.resize(&sums32, with32 ? count / 32 : 0)
        Self.resize(&values256, with256 ? count : 0)
        Self.resize(&scales256, with256 ? count / 256 : 0)
        Self.resize(&sums16, with256 ? count / 16 : 0)
        Self.resize(&sums32of256, with256 ? count / 32 : 0)
        guard let source = rows.baseAddress, count > 0 else { return }
        // Below this many values one thread is quicker than handing out the work.
        let parallel = count >= Self.parallelThreshold ? pool : nil
        func forEach(blocks: Int, _ body: @escaping (Range<Int>) -> Void) {
            if let parallel { parallel.parallelFor(count: blocks, body) } else { body(0..<blocks) }
        }
        if with32 {
            values32.withUnsafeMutableBufferPointer { v in
                scales32.withUnsafeMutableBufferPointer { sc in
                    sums32.withUnsafeMutableBufferPointer { su in
                        guard let v = v.baseAddress, let sc = sc.baseAddress, let su = su.baseAddress else { return }
                        forEach(blocks: count / 32) { range in
                            for block in range {
                                let (scale, sum) = Self.quantize32(source + block * 32, into: v + block * 32)
                                sc[block] = scale
                                su[block] = sum
                            }
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
                            forEach(blocks: count / 256) { range in
                                for block in range {
                                    sc[block] = Self.quantize256(
                                        source + block * 256, into: v + block * 256, sums: s16 + block * 16)
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
    }

    /// Makes `array` hold `count` elements, keeping its storage when it already does (the elements are overwritten
    /// by the caller).
    @inline(__always)
    static func resize<Element: Numeric>(_ array: inout [Element], _ count: Int) {
        if array.count != count { array = [Element](repeating: 0, count: count) }
    }

    /// Activation values from which a pool splits the quantization (about 20 µs of work).
    static let parallelThreshold = 16_384

    /// The largest |x| over `chunks` 16-value chunks, compared as bit patterns (with the sign bit cleared, the
    /// order of the patterns is the order of the values, and a NaN is above infinity, so it is never lost).
    @inline(__always)
    static func maximumMagnitude(_ source: UnsafePointer<Float>, chunks: Int) -> Float {
        let raw = UnsafeRawPointer(source)
        var m = SIMD16<UInt32>()
        for c in 0..<chunks {
            let v = raw.loadUnaligned(fromByteOffset: 64 * c, as: SIMD16<UInt32>.self) & 0x7FFF_FFFF
            m = m.replacing(with: v, where: v .> m)
        }
        return Float(bitPattern: m.max())
    }

    /// 16 values times `inverse`, rounded half away from zero (as `Float.rounded()`), clamped to ±127; stored as
    /// int8 at `output`. Returns their sum.
    @inline(__always)
    static func quantizeChunk(
        _ source: UnsafePointer<Float>, _ inverse: Float, into output: UnsafeMutablePointer<Int8>
    ) -> Int32 {
        let x = UnsafeRawPointer(source).loadUnaligned(as: SIMD16<Float>.self) * inverse
        // Nearest with ties to even by the 1.5·2^23 trick (|x| ≤ 128), then ties moved away from zero: x ± 0.5 is
        // exact at a tie. (The generic SIMD `rounded`, `clamped` and float-to-integer conversions run lane by lane.)
        let even = (x + 12_582_912) - 12_582_912
        let bits = unsafeBitCast(x, to: SIMD16<UInt32>.self)
        let half = unsafeBitCast((bits & 0x8000_0000) | 0x3F00_0000, to: SIMD16<Float>.self)
        let nearest = even.replacing(with: x + half, where: abs16(x - even) .== 0.5)
        let rounded = nearest.replacing(with: 127, where: nearest .> 127).replacing(with: -127, where: nearest .< -127)
        #if SPECULA_AVX512
            // The generic int8 narrowing and lane sum run 128 bits at a time; one conversion (exact: the values are
            // whole numbers), one narrowing store and one reduction instead.
            let q = _mm512_cvtps_epi32(unsafeBitCast(rounded, to: __m512.self))
            UnsafeMutableRawPointer(output).storeBytes(of: _mm512_cvtepi32_epi8(q), as: __m128i.self)
            return _mm512_reduce_add_epi32(q)
        #else
            let q = unsafeBitCast(rounded + 12_582_912, to: SIMD16<Int32>.self) &- 0x4B40_0000
            UnsafeMutableRawPointer(output).storeBytes(of: SIMD16<Int8>(truncatingIfNeeded: q), as: SIMD16<Int8>.self)
            return q.wrappedSum()
        #endif
    }

    @inline(__always)
    static func abs16(_ x: SIMD16<Float>) -> SIMD16<Float> {
        unsafeBitCast(unsafeBitCast(x, to: SIMD16<UInt32>.self) & 0x7FFF_FFFF, to: SIMD16<Float>.self)
    }

    /// ``quantize(_:_:into:)`` of 32 values, in 16 lanes.
    @inline(__always)
    static func quantize32(_ source: UnsafePointer<Float>, into output: UnsafeMutablePointer<Int8>) -> (Float, Int32) {
        let maximum = maximumMagnitude(source, chunks: 2)
        if maximum == 0 || !maximum.isFinite { return quantize(source, 32, into: output) }
        let inverse = 127 / maximum
        let sum = quantizeChunk(source, inverse, into: output) &+ quantizeChunk(source + 16, inverse, into: output + 16)
        return (maximum / 127, sum)
    }

    /// ``quantize(_:_:into:)`` of 256 values, in 16 lanes, with the sum of each 16-value group in `sums`.
    @inline(__always)
    static func quantize256(
        _ source: UnsafePointer<Float>, into output: UnsafeMutablePointer<Int8>, sums: UnsafeMutablePointer<Int16>
    ) -> Float {
        let maximum = maximumMagnitude(source, chunks: 16)
        if maximum == 0 || !maximum.isFinite {
            let scale = quantize(source, 256, into: output).0
            for group in 0..<16 {
                var sum: Int32 = 0
                for k in 0..<16 { sum &+= Int32(output[group * 16 + k]) }
                sums[group] = Int16(sum)
            }
            return scale
        }
        let inverse = 127 / maximum
        for group in 0..<16 {
            sums[group] = Int16(
                truncatingIfNeeded: quantizeChunk(source + 16 * group, inverse, into: output + 16 * group))
        }
        return maximum / 127
    }

    /// The scalar definition of one block's quantization (``quantize(_:_:into:)``), for tests of the vector forms:
    /// the int8 values, the scale, and their sum.
    public static func reference(_ block: [Float]) -> (values: [Int8], scale: Float, sum: Int32) {
        var values = [Int8](repeating: 0, count: block.count)
        let (scale, sum) = block.withUnsafeBufferPointer { source in
            values.withUnsafeMutableBufferPointer { output in
                guard let s = source.baseAddress, let o = output.baseAddress else { return (Float(0), Int32(0)) }
                return quantize(s, block.count, into: o)
            }
        }
        return (values, scale, sum)
    }

    /// Symmetric int8 quantization of `count` values: scale = max|x| / 127, q = round(x / scale) (halves away from
    /// zero). Returns the scale and the sum of the quantized values. The scalar definition: the vector forms above
    /// give the same bytes (tested), and fall back to it for an all-zero or non-finite block.
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
            let value = (source[k] * inverse).rounded()
            let q = value.isNaN ? 0 : Int8(max(-127, min(127, value)))
            output[k] = q
            sum &+= Int32(q)
        }
        return (scale, sum)
    }
}
