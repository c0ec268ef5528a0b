import CSpeculaSystem

#if SPECULA_AVX512 || SPECULA_AVX2
    import _Builtin_intrinsics.intel
#endif

/// The dot products used on the hot path. With `SPECULA_AVX512` (set by Package.swift when the build machine has
/// AVX-512 VNNI) the integer sums come from `vpdpbusd`; otherwise from the scalar definitions. Either way each
/// block's integer sum is exact and is combined into the float result by the same operations in the same order as
/// ``ReferenceDot``, so both paths give identical floats — except the 32-element formats, whose kernel sums in
/// float lanes (see `dot32`) and agrees with the reference to ``blockFormatTolerance``.
///
/// The vector kernels take a run of activation rows: each weight block is unpacked once and used for every row of
/// the batch, and each row's arithmetic is the same as when it is alone.
public enum FastDot {
    /// Relative agreement of the 32-element-format kernels with ``ReferenceDot``: |fast − reference| ≤ this ×
    /// Σ|w·x| (float rounding of 16-lane partial sums against a block-by-block sum).
    public static let blockFormatTolerance: Float = 1e-5

    /// True when the vector kernels are compiled in.
    public static var isVectorized: Bool {
        #if SPECULA_AVX512 || SPECULA_AVX2
            return true
        #else
            return false
        #endif
    }

    /// Which kernels this build compiled in: "avx512-vnni", "avx2" or "portable".
    public static var kernelName: String {
        #if SPECULA_AVX512
            return "avx512-vnni"
        #elseif SPECULA_AVX2
            return "avx2"
        #else
            return "portable"
        #endif
    }

    /// The calling thread's product scratch (`specula_product_scratch`): at least `bytes`, 64-byte aligned, for the
    /// working space of one product call (a packed group's accumulators, an AVX2 kernel's unpacked row and totals).
    static func productScratch(_ bytes: Int) -> UnsafeMutableRawPointer {
        guard let scratch = specula_product_scratch(max(64, bytes)) else {
            preconditionFailure("no memory for a product's scratch")
        }
        return scratch
    }

    /// Whether the 32-element formats give ``ReferenceDot``'s floats exactly (the portable kernels) or agree to
    /// ``blockFormatTolerance`` (the vector kernels, which accumulate blocks in float lanes).
    public static var blockFormatsAreExact: Bool { !isVectorized }

    /// `output[n · stride] = Σ_k W[row, k] · x[first + n, k]` for `n` in `0..<count`.
    @inline(__always)
    public static func dotRows(
        _ matrix: QuantizedMatrix, row: Int, _ x: QuantizedActivations, first: Int, count: Int,
        values32: UnsafePointer<Int8>?, values256: UnsafePointer<Int8>?, into output: UnsafeMutablePointer<Float>,
        stride: Int
    ) {
        // The AVX-512 and AVX2 builds each compile their own `dotQ4K`, `dotQ6K` and `dot32` (never both).
        #if SPECULA_AVX512 || SPECULA_AVX2
            let n = matrix.columnCount
            switch matrix.type {
            case .q4_K:
                if let values256 {
                    dotQ4K(matrix.row(row), blocks: n / 256, values256, x, first, count, output, stride)
                    return
                }
            case .q6_K:
                if let values256 {
                    dotQ6K(matrix.row(row), blocks: n / 256, values256, x, first, count, output, stride)
                    return
                }
            case .q8_0, .q5_0, .q4_1, .q4_0:
                guard let values32 else { break }
                dot32(matrix.type, matrix.row(row), blocks: n / 32, values32, x, first, count, output, stride)
                return
            default: break
            }
        #endif
        ReferenceDot.dotRows(matrix, row: row, x, first: first, count: count, into: output, stride: stride)
    }

    /// One weight row with one activation row.
    public static func dot(
        _ matrix: QuantizedMatrix, row: Int, _ x: QuantizedActivations, _ index: Int, values32: UnsafePointer<Int8>?,
        values256: UnsafePointer<Int8>?
    ) -> Float {
        var result: Float = 0
        dotRows(
            matrix, row: row, x, first: index, count: 1, values32: values32, values256: values256, into: &result,
            stride: 1)
        return result
    }

    #if SPECULA_AVX512
        // Several AVX2/AVX-512VL intrinsics are C macros Swift cannot import; these kernels use the 512-bit forms
        // (functions in the headers) on zero-extended 256-bit halves where a full register does not fit the layout.

        @inline(__always)
        static func horizontalSum(_ v: __m512i) -> Int32 { _mm512_reduce_add_epi32(v) }

        @inline(__always)
        static func widen(_ v: __m256i) -> __m512i { _mm512_zextsi256_si512(v) }

        /// Eight lanes of `low` then eight of `high` (as int32).
        @inline(__always)
        static func halves(_ low: Int32, _ high: Int32) -> __m512i {
            _mm512_mask_blend_epi32(0xFF00, _mm512_set1_epi32(low), _mm512_set1_epi32(high))
        }

        /// Q4_K: each 64-value chunk is 32 bytes whose low nibbles are values 0–31 and high nibbles 32–63; both
        /// halves go in one register ([bytes | bytes], shifted by 0 and 4) against the 64 contiguous activations.
        static func dotQ4K(
            _ w: UnsafeRawPointer, blocks: Int, _ values: UnsafePointer<Int8>, _ x: QuantizedActivations,
            _ first: Int, _ count: Int, _ output: UnsafeMutablePointer<Float>, _ stride: Int
        ) {
            let mask = _mm512_set1_epi8(0x0F)
            let shifts = _mm512_set_epi64(4, 4, 4, 4, 0, 0, 0, 0)
            let shift16 = _mm512_or_si512(shifts, _mm512_slli_epi64(shifts, 16))
            let shiftLanes = _mm512_or_si512(shift16, _mm512_slli_epi64(shift16, 32))
            let zero = _mm512_setzero_si512()
            let columns = blocks * 256
            for k in 0..<count { output[k * stride] = 0 }
            x.scales256.withUnsafeBufferPointer { scales in
                x.sums16.withUnsafeBufferPointer { sums16 in
                    for b in 0..<blocks {
                        let block = w + b * 144
                        let qs = block + 16
                        let (scaleWord, minimumWord) = Dequantize.scalesAndMinimums(block + 4)
                        var weights = (zero, zero, zero, zero)
                        var scaleVectors = (zero, zero, zero, zero)
                        withUnsafeMutableBytes(of: &weights) { wv in
                            withUnsafeMutableBytes(of: &scaleVectors) { sv in
                                for chunk in 0..<4 {
                                    let sc1 = Int32(UInt8(truncatingIfNeeded: scaleWord >> UInt64(16 * chunk)))
                                    let sc2 = Int32(UInt8(truncatingIfNeeded: scaleWord >> UInt64(16 * chunk + 8)))
                                    let bytes = _mm512_broadcast_i64x4(load256(qs + chunk * 32))
                                    wv.storeBytes(
                                        of: _mm512_and_si512(_mm512_srlv_epi16(bytes, shiftLanes), mask),
                                        toByteOffset: chunk * 64, as: __m512i.self)
                                    sv.storeBytes(of: halves(sc1, sc2), toByteOffset: chunk * 64, as: __m512i.self)
                                }
                            }
                        }
                        let d = Dequantize.half(block, 0)
                        let dmin = Dequantize.half(block, 2)
                        for k in 0..<count {
                            let index = first + k
                            let xb = UnsafeRawPointer(values + index * columns + b * 256)
                            var acc = zero
                            acc = _mm512_add_epi32(
                                acc,
                                _mm512_mullo_epi32(
                                    _mm512_dpbusd_epi32(zero, weights.0, _mm512_loadu_si512(xb)), scaleVectors.0))
                            acc = _mm512_add_epi32(
                                acc,
                                _mm512_mullo_epi32(
                                    _mm512_dpbusd_epi32(zero, weights.1, _mm512_loadu_si512(xb + 64)), scaleVectors.1))
                            acc = _mm512_add_epi32(
                                acc,
                                _mm512_mullo_epi32(
                                    _mm512_dpbusd_epi32(zero, weights.2, _mm512_loadu_si512(xb + 128)), scaleVectors.2))
                            acc = _mm512_add_epi32(
                                acc,
                                _mm512_mullo_epi32(
                                    _mm512_dpbusd_epi32(zero, weights.3, _mm512_loadu_si512(xb + 192)), scaleVectors.3))
                            let g = (index * blocks + b) * 16
                            var summ: Int32 = 0
                            // Wrapping arithmetic: the values are bounded far below Int32's range (6-bit minimums,
                            // 16-value sums of int8), and overflow checks cost more than the work here.
                            for j in 0..<8 {
                                let m = Int32(UInt8(truncatingIfNeeded: minimumWord >> UInt64(8 * j)))
                                summ &+= m &* (Int32(sums16[g + 2 * j]) &+ Int32(sums16[g + 2 * j + 1]))
                            }
                            let sumi = horizontalSum(acc)
                            let dx = scales[index * blocks + b]
                            output[k * stride] += dx * (d * Float(sumi) - dmin * Float(summ))
                        }
                    }
                }
            }
        }

        /// Q6_K: per 128-value half, values 0–63 come from the 64 low-nibble bytes and bits 0–3 of the high bits,
        /// values 64–127 from the high nibbles and bits 4–7; the −32 offset is taken out with the activation sums.
        static func dotQ6K(
            _ w: UnsafeRawPointer, blocks: Int, _ values: UnsafePointer<Int8>, _ x: QuantizedActivations,
            _ first: Int, _ count: Int, _ output: UnsafeMutablePointer<Float>, _ stride: Int
        ) {
            let mask = _mm512_set1_epi8(0x0F)
            let three = _mm512_set1_epi8(0x03)
            let zero = _mm512_setzero_si512()
            let lowShift = _mm512_set_epi64(2, 2, 2, 2, 0, 0, 0, 0)
            let lowShift16 = _mm512_or_si512(lowShift, _mm512_slli_epi64(lowShift, 16))
            let shiftA = _mm512_or_si512(lowShift16, _mm512_slli_epi64(lowShift16, 32))  // 0 | 2
            let shiftB = _mm512_add_epi16(shiftA, _mm512_set1_epi16(4))  // 4 | 6
            let four = _mm512_set1_epi16(4)
            // Byte k of the 8 scales, each repeated 4 times (scales 0–3, then 4–7).
            let spreadLow = _mm_set_epi8(3, 3, 3, 3, 2, 2, 2, 2, 1, 1, 1, 1, 0, 0, 0, 0)
            let spreadHigh = _mm_set_epi8(7, 7, 7, 7, 6, 6, 6, 6, 5, 5, 5, 5, 4, 4, 4, 4)
            let columns = blocks * 256
            for k in 0..<count { output[k * stride] = 0 }
            x.scales256.withUnsafeBufferPointer { scales in
                x.sums16.withUnsafeBufferPointer { sums16 in
                    for b in 0..<blocks {
                        let block = w + b * 210
                        let sc = block + 192
                        var weights = (zero, zero, zero, zero)
                        var scaleVectors = (zero, zero, zero, zero)
                        withUnsafeMutableBytes(of: &weights) { wv in
                            withUnsafeMutableBytes(of: &scaleVectors) { sv in
                                for half in 0..<2 {
                                    let ql = _mm512_loadu_si512(block + half * 64)
                                    let qh = _mm512_broadcast_i64x4(load256(block + 128 + half * 32))
                                    let highA = _mm512_sllv_epi16(
                                        _mm512_and_si512(_mm512_srlv_epi16(qh, shiftA), three), four)
                                    let highB = _mm512_sllv_epi16(
                                        _mm512_and_si512(_mm512_srlv_epi16(qh, shiftB), three), four)
                                    wv.storeBytes(
                                        of: _mm512_or_si512(_mm512_and_si512(ql, mask), highA),
                                        toByteOffset: half * 128, as: __m512i.self)
                                    wv.storeBytes(
                                        of: _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(ql, 4), mask), highB),
                                        toByteOffset: half * 128 + 64, as: __m512i.self)
                                    let raw = sc.loadUnaligned(fromByteOffset: half * 8, as: UInt64.self)
                                    let packed = _mm_cvtsi64_si128(Int64(bitPattern: raw))
                                    sv.storeBytes(
                                        of: _mm512_cvtepi8_epi32(_mm_shuffle_epi8(packed, spreadLow)),
                                        toByteOffset: half * 128, as: __m512i.self)
                                    sv.storeBytes(
                                        of: _mm512_cvtepi8_epi32(_mm_shuffle_epi8(packed, spreadHigh)),
                                        toByteOffset: half * 128 + 64, as: __m512i.self)
                                }
                            }
                        }
                        let d = Dequantize.half(block, 208)
                        for k in 0..<count {
                            let index = first + k
                            let xb = UnsafeRawPointer(values + index * columns + b * 256)
                            var acc = zero
                            acc = _mm512_add_epi32(
                                acc,
                                _mm512_mullo_epi32(
                                    _mm512_dpbusd_epi32(zero, weights.0, _mm512_loadu_si512(xb)), scaleVectors.0))
                            acc = _mm512_add_epi32(
                                acc,
                                _mm512_mullo_epi32(
                                    _mm512_dpbusd_epi32(zero, weights.1, _mm512_loadu_si512(xb + 64)), scaleVectors.1))
                            acc = _mm512_add_epi32(
                                acc,
                                _mm512_mullo_epi32(
                                    _mm512_dpbusd_epi32(zero, weights.2, _mm512_loadu_si512(xb + 128)), scaleVectors.2))
                            acc = _mm512_add_epi32(
                                acc,
                                _mm512_mullo_epi32(
                                    _mm512_dpbusd_epi32(zero, weights.3, _mm512_loadu_si512(xb + 192)), scaleVectors.3))
                            let g = (index * blocks + b) * 16
                            var offset: Int32 = 0
                            for j in 0..<16 {
                                let scale = Int32(Int8(bitPattern: sc.load(fromByteOffset: j, as: UInt8.self)))
                                offset &+= scale &* Int32(sums16[g + j])
                            }
                            let sumi = horizontalSum(acc) &- 32 &* offset
                            output[k * stride] += d * scales[index * blocks + b] * Float(sumi)
                        }
                    }
                }
            }
        }

        /// The 32-element formats, two blocks per register. The weight row is unpacked once into unsigned bytes
        /// (Q8_0 offset by 128, Q5_0's fifth bit merged) with each block's scale; then, per activation row, each
        /// pair of blocks takes one `vpdpbusd`, and its 16 integer lanes are scaled in float (d·dx per lane) and
        /// accumulated in a float register, reduced once per row. The offsets (−8, −16, −128 times the activation
        /// values) are taken out of each lane exactly in integers; Q4_1's minimum term is added in a scalar. The float summation order differs from
        /// ``ReferenceDot``'s per-block order, so the two agree to rounding (`FastDot.blockFormatTolerance`).
        static func dot32(
            _ type: TensorType, _ w: UnsafeRawPointer, blocks: Int, _ values: UnsafePointer<Int8>,
            _ x: QuantizedActivations, _ first: Int, _ count: Int, _ output: UnsafeMutablePointer<Float>,
            _ stride: Int
        ) {
            let mask = _mm_set1_epi8(0x0F)
            let bias = _mm256_set1_epi8(-128)
            let sixteen = _mm256_set1_epi8(0x10)
            let zero = _mm512_setzero_si512()
            let bytesPerBlock = type.blockBytes
            let columns = blocks * 32
            let offset: Int32 = type == .q8_0 ? 128 : type == .q5_0 ? 16 : type == .q4_0 ? 8 : 0
            let pairIndex = _mm512_set_epi32(1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0)
            let ones = _mm512_set1_epi8(1)
            let offsets = _mm512_set1_epi32(offset)
            withUnsafeTemporaryAllocation(of: UInt8.self, capacity: columns + 64) { unpacked in
                withUnsafeTemporaryAllocation(of: Float.self, capacity: 2 * blocks + 2) { constants in
                    guard let bytes = unpacked.baseAddress, let dm = constants.baseAddress else { return }
                    let d = dm  // d per block
                    let m = dm + blocks  // Q4_1 minimum per block
                    for b in 0..<blocks {
                        let block = w + b * bytesPerBlock
                        d[b] = Dequantize.half(block, 0)
                        m[b] = type == .q4_1 ? Dequantize.half(block, 2) : 0
                        let wq: __m256i
                        switch type {
                        case .q8_0:
                            wq = _mm256_xor_si256(load256(block + 2), bias)
                        case .q4_0, .q4_1:
                            let packed = load128(block + (type == .q4_0 ? 2 : 4))
                            wq = _mm256_set_m128i(
                                _mm_and_si128(_mm_srli_epi16(packed, 4), mask), _mm_and_si128(packed, mask))
                        default:  // q5_0
                            let packed = load128(block + 6)
                            let low = _mm_and_si128(packed, mask)
                            let high = _mm_and_si128(_mm_srli_epi16(packed, 4), mask)
                            let qh = block.loadUnaligned(fromByteOffset: 2, as: UInt32.self).littleEndian
                            wq = _mm256_or_si256(
                                _mm256_set_m128i(high, low), _mm256_and_si256(_mm256_movm_epi8(__mmask32(qh)), sixteen))
                        }
                        UnsafeMutableRawPointer(bytes + b * 32).storeBytes(of: wq, as: __m256i.self)
                    }
                    x.scales32.withUnsafeBufferPointer { scales in
                        x.sums32.withUnsafeBufferPointer { sums in
                            guard let scaleBase = scales.baseAddress else { return }
                            for k in 0..<count {
                                let index = first + k
                                let xRow = UnsafeRawPointer(values + index * columns)
                                let dxRow = scaleBase + index * blocks
                                var acc = _mm512_setzero_ps()
                                var scalar: Float = 0
                                var b = 0
                                while b + 2 <= blocks {
                                    let xv = _mm512_loadu_si512(xRow + b * 32)
                                    // Exact per-lane integers: Σ u·x − offset·Σ x over each lane's 4 values, so no
                                    // large offset is subtracted in float.
                                    let p = _mm512_sub_epi32(
                                        _mm512_dpbusd_epi32(zero, _mm512_loadu_si512(bytes + b * 32), xv),
                                        _mm512_mullo_epi32(_mm512_dpbusd_epi32(zero, ones, xv), offsets))
                                    let dPair = _mm512_permutexvar_ps(pairIndex, _mm512_maskz_loadu_ps(0x3, d + b))
                                    let dxPair = _mm512_permutexvar_ps(pairIndex, _mm512_maskz_loadu_ps(0x3, dxRow + b))
                                    acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p), _mm512_mul_ps(dPair, dxPair), acc)
                                    b += 2
                                }
                                if b < blocks {
                                    let xv = widen(load256(xRow + b * 32))
                                    let p = _mm512_sub_epi32(
                                        _mm512_dpbusd_epi32(zero, widen(load256(bytes + b * 32)), xv),
                                        _mm512_mullo_epi32(_mm512_dpbusd_epi32(zero, ones, xv), offsets))
                                    let scale = _mm512_set1_ps(d[b] * dxRow[b])
                                    acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p), scale, acc)
                                }
                                if type == .q4_1 {
                                    for block in 0..<blocks {
                                        scalar += m[block] * dxRow[block] * Float(sums[index * blocks + block])
                                    }
                                }
                                output[k * stride] = _mm512_reduce_add_ps(acc) + scalar
                            }
                        }
                    }
                }
            }
        }
    #endif
}

#if SPECULA_AVX512 || SPECULA_AVX2
    // Unaligned loads shared by both vector kernel sets.
    extension FastDot {
        @inline(__always)
        static func load256(_ p: UnsafeRawPointer) -> __m256i {
            _mm256_loadu_si256(p.assumingMemoryBound(to: __m256i_u.self))
        }

        @inline(__always)
        static func load128(_ p: UnsafeRawPointer) -> __m128i {
            _mm_loadu_si128(p.assumingMemoryBound(to: __m128i_u.self))
        }
    }
#endif
