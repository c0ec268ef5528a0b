#if SPECULA_AVX2
    import _Builtin_intrinsics.intel

    /// The AVX2 kernels, for hosts with AVX2, FMA and F16C but without AVX-512 VNNI (Package.swift sets
    /// `SPECULA_AVX2`). Integer block sums come from `vpmaddubsw` (unsigned weight byte × signed activation byte,
    /// adjacent pairs summed to 16 bits) and `vpmaddwd` (pairs of those, or times a sub-block scale, summed to 32
    /// bits). No 16-bit sum can saturate: the unsigned weights are at most 63 (Q6_K) and the activations at most 127
    /// in magnitude (the quantizer clamps to ±127), so a pair is at most 2 · 63 · 127 = 16,002; the 32-element
    /// formats' signed weights go through the sign trick (|w| · (x · sign w)), at most 2 · 128 · 127 = 32,512.
    ///
    /// Every block's integer sum is exact. The K-quants combine it into the float result by the same expressions in
    /// the same block order as ``ReferenceDot`` (bit-identical to the portable build); the 32-element formats sum in
    /// float lanes (see `dot32`). Like the AVX-512 kernels, a run of activation rows shares each weight block's
    /// unpacking.
    extension FastDot {
        @inline(__always)
        static func sum8(_ v: __m256i) -> Int32 { unsafeBitCast(v, to: SIMD8<Int32>.self).wrappedSum() }

        /// Q4_K: per 256-value block, eight 32-value sub-blocks of unsigned 4-bit values with a 6-bit scale and
        /// minimum each; Σ scale_j · Σ q·x in integers, the minimums through the activations' 32-value sums.
        static func dotQ4K(
            _ w: UnsafeRawPointer, blocks: Int, _ values: UnsafePointer<Int8>, _ x: QuantizedActivations,
            _ first: Int, _ count: Int, _ output: UnsafeMutablePointer<Float>, _ stride: Int
        ) {
            let mask = _mm256_set1_epi8(0x0F)
            let columns = blocks * 256
            // The rows' totals in the thread's scratch: a pass's prompt rows are more than the stack takes.
            let t = productScratch(count * MemoryLayout<Float>.stride).bindMemory(to: Float.self, capacity: count)
            t.initialize(repeating: 0, count: count)
            withUnsafeTemporaryAllocation(of: __m256i.self, capacity: 16) { unpacked in
                guard let q = unpacked.baseAddress else { return }
                let scaleVectors = q + 8
                x.scales256.withUnsafeBufferPointer { scales in
                    x.sums32of256.withUnsafeBufferPointer { sums32 in
                        guard let scales = scales.baseAddress, let sums32 = sums32.baseAddress else { return }
                        for b in 0..<blocks {
                            let block = w + b * 144
                            let qs = block + 16
                            let (scaleWord, minimumWord) = Dequantize.scalesAndMinimums(block + 4)
                            for chunk in 0..<4 {
                                let bytes = load256(qs + chunk * 32)
                                (q + 2 * chunk).initialize(to: _mm256_and_si256(bytes, mask))
                                (q + 2 * chunk + 1).initialize(
                                    to: _mm256_and_si256(_mm256_srli_epi16(bytes, 4), mask))
                            }
                            for j in 0..<8 {
                                let scale = Int16(UInt8(truncatingIfNeeded: scaleWord >> UInt64(8 * j)))
                                (scaleVectors + j).initialize(to: _mm256_set1_epi16(scale))
                            }
                            let minimums = _mm_cvtepu8_epi16(_mm_cvtsi64_si128(Int64(bitPattern: minimumWord)))
                            let d = Dequantize.half(block, 0)
                            let dmin = Dequantize.half(block, 2)
                            for k in 0..<count {
                                let index = first + k
                                let xb = UnsafeRawPointer(values + index * columns + b * 256)
                                var acc = _mm256_setzero_si256()
                                for j in 0..<8 {
                                    let pairs = _mm256_maddubs_epi16(q[j], load256(xb + 32 * j))
                                    acc = _mm256_add_epi32(acc, _mm256_madd_epi16(pairs, scaleVectors[j]))
                                }
                                let sumi = sum8(acc)
                                // Σ_j minimum_j · (Σ of sub-block j's activations): 6-bit minimums times
                                // 32-value sums of int8, in one `vpmaddwd`.
                                let activationSums = load128(sums32 + (index * blocks + b) * 8)
                                let summ = unsafeBitCast(
                                    _mm_madd_epi16(minimums, activationSums), to: SIMD4<Int32>.self
                                ).wrappedSum()
                                let dx = scales[index * blocks + b]
                                t[k] += dx * (d * Float(sumi) - dmin * Float(summ))
                            }
                        }
                    }
                }
                for k in 0..<count { output[k * stride] = t[k] }
            }
        }

        /// Q6_K: per 128-value half, the low nibbles of 64 bytes and two bits each of 32 bytes make values 0…63;
        /// each 32-value register covers two 16-value scale groups, whose signed scales multiply the pair sums in
        /// `vpmaddwd`. The −32 offset is taken out with the activations' 16-value sums.
        static func dotQ6K(
            _ w: UnsafeRawPointer, blocks: Int, _ values: UnsafePointer<Int8>, _ x: QuantizedActivations,
            _ first: Int, _ count: Int, _ output: UnsafeMutablePointer<Float>, _ stride: Int
        ) {
            let mask = _mm256_set1_epi8(0x0F)
            let bits45 = _mm256_set1_epi8(0x30)
            let columns = blocks * 256
            // The rows' totals in the thread's scratch: a pass's prompt rows are more than the stack takes.
            let t = productScratch(count * MemoryLayout<Float>.stride).bindMemory(to: Float.self, capacity: count)
            t.initialize(repeating: 0, count: count)
            withUnsafeTemporaryAllocation(of: __m256i.self, capacity: 16) { unpacked in
                guard let q = unpacked.baseAddress else { return }
                let scaleVectors = q + 8
                x.scales256.withUnsafeBufferPointer { scales in
                    x.sums16.withUnsafeBufferPointer { sums16 in
                        guard let scales = scales.baseAddress, let sums16 = sums16.baseAddress else { return }
                        for b in 0..<blocks {
                            let block = w + b * 210
                            let sc = block + 192
                            for half in 0..<2 {
                                let low = load256(block + half * 64)
                                let high = load256(block + half * 64 + 32)
                                let qh = load256(block + 128 + half * 32)
                                let r = q + 4 * half
                                // Values 0–31: low nibbles of `low`, bits 0–1 of qh; 32–63: low nibbles of
                                // `high`, bits 2–3; 64–95: high nibbles of `low`, bits 4–5; 96–127: high
                                // nibbles of `high`, bits 6–7. (Masks applied after each 16-bit shift keep
                                // only bits of the byte itself.)
                                r.initialize(
                                    to: _mm256_or_si256(
                                        _mm256_and_si256(low, mask),
                                        _mm256_and_si256(_mm256_slli_epi16(qh, 4), bits45)))
                                (r + 1).initialize(
                                    to: _mm256_or_si256(
                                        _mm256_and_si256(high, mask),
                                        _mm256_and_si256(_mm256_slli_epi16(qh, 2), bits45)))
                                (r + 2).initialize(
                                    to: _mm256_or_si256(
                                        _mm256_and_si256(_mm256_srli_epi16(low, 4), mask),
                                        _mm256_and_si256(qh, bits45)))
                                (r + 3).initialize(
                                    to: _mm256_or_si256(
                                        _mm256_and_si256(_mm256_srli_epi16(high, 4), mask),
                                        _mm256_and_si256(_mm256_srli_epi16(qh, 2), bits45)))
                            }
                            for v in 0..<8 {
                                // Register v holds groups 2v (lanes 0–7 of the pair sums) and 2v + 1.
                                let a = Int16(Int8(bitPattern: sc.load(fromByteOffset: 2 * v, as: UInt8.self)))
                                let c = Int16(Int8(bitPattern: sc.load(fromByteOffset: 2 * v + 1, as: UInt8.self)))
                                (scaleVectors + v).initialize(
                                    to: _mm256_setr_epi16(a, a, a, a, a, a, a, a, c, c, c, c, c, c, c, c))
                            }
                            let d = Dequantize.half(block, 208)
                            for k in 0..<count {
                                let index = first + k
                                let xb = UnsafeRawPointer(values + index * columns + b * 256)
                                var acc = _mm256_setzero_si256()
                                for v in 0..<8 {
                                    let pairs = _mm256_maddubs_epi16(q[v], load256(xb + 32 * v))
                                    acc = _mm256_add_epi32(acc, _mm256_madd_epi16(pairs, scaleVectors[v]))
                                }
                                let g = (index * blocks + b) * 16
                                var offset: Int32 = 0
                                for j in 0..<16 {
                                    let scale = Int32(Int8(bitPattern: sc.load(fromByteOffset: j, as: UInt8.self)))
                                    offset &+= scale &* Int32(sums16[g + j])
                                }
                                let sumi = sum8(acc) &- 32 &* offset
                                t[k] += d * scales[index * blocks + b] * Float(sumi)
                            }
                        }
                    }
                }
                for k in 0..<count { output[k * stride] = t[k] }
            }
        }

        /// The 32-element formats. The weight row is unpacked once into 32 signed bytes per block with the offset
        /// taken out (Q4_0: q − 8, Q5_0: q − 16 with the fifth bit merged, Q8_0 as stored; Q4_1 keeps its unsigned
        /// 0…15) and their magnitudes, and each block's d (and Q4_1's minimum). Then per activation row and block,
        /// `vpmaddubsw` of |w| with x · sign(w) gives exact integer lanes, which are converted and accumulated in
        /// float lanes times d·dx, reduced once per row; Q4_1's minimum term is summed in a scalar. No horizontal
        /// sum per block: the float order differs from ``ReferenceDot``'s, so the two agree to
        /// ``blockFormatTolerance``, as the AVX-512 kernel does.
        static func dot32(
            _ type: TensorType, _ w: UnsafeRawPointer, blocks: Int, _ values: UnsafePointer<Int8>,
            _ x: QuantizedActivations, _ first: Int, _ count: Int, _ output: UnsafeMutablePointer<Float>,
            _ stride: Int
        ) {
            let mask = _mm_set1_epi8(0x0F)
            let sixteen = _mm256_set1_epi8(0x10)
            let ones = _mm256_set1_epi16(1)
            // Byte k of these selects byte k / 8 of the fifth-bit word; the mask then keeps bit k % 8 (every bit
            // but that one set, so a byte is all ones exactly when the bit was set).
            let spread = _mm256_setr_epi64x(
                0, 0x0101_0101_0101_0101, 0x0202_0202_0202_0202, 0x0303_0303_0303_0303)
            let others = _mm256_set1_epi64x(0x7FBF_DFEF_F7FB_FDFE)
            let allOnes = _mm256_set1_epi64x(-1)
            let offset = _mm256_set1_epi8(type == .q5_0 ? 16 : type == .q4_0 ? 8 : 0)
            let bytesPerBlock = type.blockBytes
            let columns = blocks * 32
            // The unpacked row and its constants in the thread's scratch (64-byte aligned): a few kilobytes per weight
            // row, more than the stack takes, and a heap allocation per row cost more than the row's products.
            let vectorBytes = 2 * blocks * MemoryLayout<__m256i>.stride
            let scratch = productScratch(vectorBytes + (2 * blocks + count) * MemoryLayout<Float>.stride)
            let signed = scratch.bindMemory(to: __m256i.self, capacity: 2 * blocks)
            let d = (scratch + vectorBytes).bindMemory(to: Float.self, capacity: 2 * blocks + count)
            let magnitudes = signed + blocks
            let m = d + blocks  // Q4_1's minimum per block
            let t = d + 2 * blocks
            for b in 0..<blocks {
                let block = w + b * bytesPerBlock
                d[b] = Dequantize.half(block, 0)
                m[b] = type == .q4_1 ? Dequantize.half(block, 2) : 0
                let wq: __m256i
                switch type {
                case .q8_0:
                    wq = load256(block + 2)
                case .q4_0, .q4_1:
                    let packed = load128(block + (type == .q4_0 ? 2 : 4))
                    wq = _mm256_sub_epi8(
                        _mm256_set_m128i(
                            _mm_and_si128(_mm_srli_epi16(packed, 4), mask), _mm_and_si128(packed, mask)),
                        offset)
                default:  // q5_0
                    let packed = load128(block + 6)
                    let low = _mm_and_si128(packed, mask)
                    let high = _mm_and_si128(_mm_srli_epi16(packed, 4), mask)
                    let qh = block.loadUnaligned(fromByteOffset: 2, as: UInt32.self).littleEndian
                    let spreadBits = _mm256_or_si256(
                        _mm256_shuffle_epi8(_mm256_set1_epi32(Int32(bitPattern: qh)), spread), others)
                    let fifth = _mm256_and_si256(_mm256_cmpeq_epi8(spreadBits, allOnes), sixteen)
                    wq = _mm256_sub_epi8(_mm256_or_si256(_mm256_set_m128i(high, low), fifth), offset)
                }
                (signed + b).initialize(to: wq)
                (magnitudes + b).initialize(to: _mm256_abs_epi8(wq))
            }
            x.scales32.withUnsafeBufferPointer { scales in
                x.sums32.withUnsafeBufferPointer { sums in
                    guard let scales = scales.baseAddress, let sums = sums.baseAddress else { return }
                    for k in 0..<count {
                        let index = first + k
                        let xRow = UnsafeRawPointer(values + index * columns)
                        let dxRow = scales + index * blocks
                        var acc = _mm256_setzero_ps()
                        for b in 0..<blocks {
                            let xv = _mm256_sign_epi8(load256(xRow + b * 32), signed[b])
                            let lanes = _mm256_madd_epi16(_mm256_maddubs_epi16(magnitudes[b], xv), ones)
                            acc = _mm256_fmadd_ps(
                                _mm256_cvtepi32_ps(lanes), _mm256_set1_ps(d[b] * dxRow[b]), acc)
                        }
                        var scalar: Float = 0
                        if type == .q4_1 {
                            for b in 0..<blocks {
                                scalar += m[b] * dxRow[b] * Float(sums[index * blocks + b])
                            }
                        }
                        t[k] = unsafeBitCast(acc, to: SIMD8<Float>.self).sum() + scalar
                    }
                }
            }
            for k in 0..<count { output[k * stride] = t[k] }
        }
    }
#endif
