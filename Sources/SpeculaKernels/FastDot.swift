#if SPECULA_AVX512
    import _Builtin_intrinsics.intel
#endif

/// The dot products used on the hot path. With `SPECULA_AVX512` (set by Package.swift when the build machine has
/// AVX-512 VNNI) the integer sums come from `vpdpbusd`; otherwise from the scalar definitions. Either way each
/// block's integer sum is exact and is combined into the float result by the same operations in the same order as
/// ``ReferenceDot``, so both paths give identical floats.
///
/// The vector kernels take a run of activation rows: each weight block is unpacked once and used for every row of
/// the batch, and each row's arithmetic is the same as when it is alone.
public enum FastDot {
    /// True when the vector kernels are compiled in.
    public static var isVectorized: Bool {
        #if SPECULA_AVX512
            return true
        #else
            return false
        #endif
    }

    /// `output[n · stride] = Σ_k W[row, k] · x[first + n, k]` for `n` in `0..<count`.
    @inline(__always)
    public static func dotRows(
        _ matrix: QuantizedMatrix, row: Int, _ x: QuantizedActivations, first: Int, count: Int,
        values32: UnsafePointer<Int8>, values256: UnsafePointer<Int8>?, into output: UnsafeMutablePointer<Float>,
        stride: Int
    ) {
        #if SPECULA_AVX512
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
                dot32(matrix.type, matrix.row(row), blocks: n / 32, values32, x, first, count, output, stride)
                return
            default: break
            }
        #endif
        for k in 0..<count { output[k * stride] = ReferenceDot.dot(matrix, row: row, x, first + k) }
    }

    /// One weight row with one activation row.
    public static func dot(
        _ matrix: QuantizedMatrix, row: Int, _ x: QuantizedActivations, _ index: Int, values32: UnsafePointer<Int8>,
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

        @inline(__always)
        static func load256(_ p: UnsafeRawPointer) -> __m256i {
            _mm256_loadu_si256(p.assumingMemoryBound(to: __m256i_u.self))
        }

        @inline(__always)
        static func load128(_ p: UnsafeRawPointer) -> __m128i {
            _mm_loadu_si128(p.assumingMemoryBound(to: __m128i_u.self))
        }

        /// Eight lanes of `low` then eight of `high` (as int32).
        @inline(__always)
        static func halves(_ low: Int32, _ high: Int32) -> __m512i {
            _mm512_mask_blend_epi32(0xFF00, _mm512_set1_epi32(low), _mm512_set1_epi32(high))
        }

        /// Four lanes each of a, b, c, d (as int32).
        @inline(__always)
        static func quarters(_ a: Int32, _ b: Int32, _ c: Int32, _ d: Int32) -> __m512i {
            let ab = _mm512_mask_blend_epi32(0x00F0, _mm512_set1_epi32(a), _mm512_set1_epi32(b))
            let abc = _mm512_mask_blend_epi32(0x0F00, ab, _mm512_set1_epi32(c))
            return _mm512_mask_blend_epi32(0xF000, abc, _mm512_set1_epi32(d))
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
                                summ &+= m &* (sums16[g + 2 * j] &+ sums16[g + 2 * j + 1])
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
                                offset &+= scale &* sums16[g + j]
                            }
                            let sumi = horizontalSum(acc) &- 32 &* offset
                            output[k * stride] += d * scales[index * blocks + b] * Float(sumi)
                        }
                    }
                }
            }
        }

        /// The 32-element formats: one block per iteration (in the low half of a register), its integer sum exact.
        static func dot32(
            _ type: TensorType, _ w: UnsafeRawPointer, blocks: Int, _ values: UnsafePointer<Int8>,
            _ x: QuantizedActivations, _ first: Int, _ count: Int, _ output: UnsafeMutablePointer<Float>,
            _ stride: Int
        ) {
            let mask = _mm_set1_epi8(0x0F)
            let zero = _mm512_setzero_si512()
            let bias = _mm256_set1_epi8(-128)
            let sixteen = _mm256_set1_epi8(0x10)
            let bytesPerBlock = type.blockBytes
            let columns = blocks * 32
            for k in 0..<count { output[k * stride] = 0 }
            x.scales32.withUnsafeBufferPointer { scales in
                x.sums32.withUnsafeBufferPointer { sums in
                    for b in 0..<blocks {
                        let block = w + b * bytesPerBlock
                        let d = Dequantize.half(block, 0)
                        let wq: __m512i
                        switch type {
                        case .q8_0:
                            // Signed weights: add 128 to make them unsigned, then take 128·Σx back out.
                            wq = widen(_mm256_xor_si256(load256(block + 2), bias))
                        case .q4_0, .q4_1:
                            let packed = load128(block + (type == .q4_0 ? 2 : 4))
                            let low = _mm_and_si128(packed, mask)
                            let high = _mm_and_si128(_mm_srli_epi16(packed, 4), mask)
                            wq = widen(_mm256_set_m128i(high, low))
                        default:  // q5_0
                            let packed = load128(block + 6)
                            let low = _mm_and_si128(packed, mask)
                            let high = _mm_and_si128(_mm_srli_epi16(packed, 4), mask)
                            let qh = block.loadUnaligned(fromByteOffset: 2, as: UInt32.self).littleEndian
                            let fifth = _mm256_and_si256(_mm256_movm_epi8(__mmask32(qh)), sixteen)
                            wq = widen(_mm256_or_si256(_mm256_set_m128i(high, low), fifth))
                        }
                        let m = type == .q4_1 ? Dequantize.half(block, 2) : 0
                        for k in 0..<count {
                            let index = first + k
                            let xv = widen(load256(UnsafeRawPointer(values + index * columns + b * 32)))
                            let dx = scales[index * blocks + b]
                            let sx = sums[index * blocks + b]
                            let sumi = horizontalSum(_mm512_dpbusd_epi32(zero, wq, xv))
                            switch type {
                            case .q8_0: output[k * stride] += d * dx * Float(sumi &- 128 &* sx)
                            case .q4_0: output[k * stride] += d * dx * Float(sumi &- 8 &* sx)
                            case .q4_1: output[k * stride] += d * dx * Float(sumi) + m * dx * Float(sx)
                            default: output[k * stride] += d * dx * Float(sumi &- 16 &* sx)
                            }
                        }
                    }
                }
            }
        }
    #endif
}
