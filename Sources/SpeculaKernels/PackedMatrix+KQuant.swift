import CSpeculaSystem

#if SPECULA_AVX512
    import _Builtin_intrinsics.intel
#endif
#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

// The K-quant products (Q4_K, Q6_K) over 256-value blocks.
#if SPECULA_AVX512
    extension PackedMatrix {
        /// Q4_K: each sub-block is unpacked into registers once and used by every token of the tile, whose running
        /// integer sums are kept in `scratch`; `finish` does the float steps per token and block.
        func q4K(
            _ group: Int, _ x: QuantizedActivations, _ values: UnsafePointer<Int8>, _ first: Int, _ count: Int,
            _ floats: UnsafeMutablePointer<Float>, _ scratch: UnsafeMutableRawPointer
        ) {
            let mask = _mm512_set1_epi8(0x0F)
            let zero = _mm512_setzero_si512()
            let blocks = blocksPerRow
            let columns = columnCount
            let base = groupBase(group)
            x.scales256.withUnsafeBufferPointer { scales in
                x.sums32of256.withUnsafeBufferPointer { pairSums in
                    guard let scales = scales.baseAddress, let pairSums = pairSums.baseAddress else { return }
                    for b in 0..<blocks {
                        let block = base + b * 2368
                        @inline(__always) func scale(_ j: Int) -> __m512i {
                            _mm512_cvtepu8_epi32(
                                _mm_loadu_si128((block + 64 + 16 * j).assumingMemoryBound(to: __m128i_u.self)))
                        }
                        // The 8 weight vectors of sub-block j: value groups 0–3 in the low nibbles, 4–7 high.
                        @inline(__always) func unpack(_ j: Int) -> (
                            __m512i, __m512i, __m512i, __m512i, __m512i, __m512i, __m512i, __m512i
                        ) {
                            let q = block + 320 + 256 * j
                            let v0 = Self.load(q)
                            let v1 = Self.load(q + 64)
                            let v2 = Self.load(q + 128)
                            let v3 = Self.load(q + 192)
                            return (
                                _mm512_and_si512(v0, mask), _mm512_and_si512(v1, mask), _mm512_and_si512(v2, mask),
                                _mm512_and_si512(v3, mask), _mm512_and_si512(_mm512_srli_epi16(v0, 4), mask),
                                _mm512_and_si512(_mm512_srli_epi16(v1, 4), mask),
                                _mm512_and_si512(_mm512_srli_epi16(v2, 4), mask),
                                _mm512_and_si512(_mm512_srli_epi16(v3, 4), mask)
                            )
                        }
                        let d = Self.halves(block)
                        let dmin = Self.halves(block + 32)
                        let pairs = block + 192
                        let m0 = _mm512_cvtepu8_epi16(_mm256_loadu_si256(pairs.assumingMemoryBound(to: __m256i_u.self)))
                        let m1 = _mm512_cvtepu8_epi16(
                            _mm256_loadu_si256((pairs + 32).assumingMemoryBound(to: __m256i_u.self)))
                        let m2 = _mm512_cvtepu8_epi16(
                            _mm256_loadu_si256((pairs + 64).assumingMemoryBound(to: __m256i_u.self)))
                        let m3 = _mm512_cvtepu8_epi16(
                            _mm256_loadu_si256((pairs + 96).assumingMemoryBound(to: __m256i_u.self)))
                        // Float steps for token n with its integer sum Σ_j scale_j · Σ q·x.
                        @inline(__always) func finish(_ n: Int, _ sum: __m512i) {
                            let index = (first + n) * blocks + b
                            let s = UnsafeRawPointer(pairSums + index * 8)
                            var minimum = _mm512_dpwssd_epi32(zero, m0, Self.broadcast(s, 0))
                            minimum = _mm512_dpwssd_epi32(minimum, m1, Self.broadcast(s, 4))
                            minimum = _mm512_dpwssd_epi32(minimum, m2, Self.broadcast(s, 8))
                            minimum = _mm512_dpwssd_epi32(minimum, m3, Self.broadcast(s, 12))
                            let dx = _mm512_set1_ps(scales[index])
                            Self.accumulate(floats, n, _mm512_cvtepi32_ps(sum), _mm512_mul_ps(d, dx))
                            Self.subtract(floats, n, _mm512_cvtepi32_ps(minimum), _mm512_mul_ps(dmin, dx))
                        }
                        @inline(__always) func subBlock(_ w: Weights8, _ xb: UnsafeRawPointer) -> __m512i {
                            Self.dot8(w, xb, start: zero)
                        }
                        for n in 0..<count { Self.store(zero, scratch, n) }
                        // Two sub-blocks at a time: 16 weight vectors in registers, two independent sums per token.
                        for pair in 0..<4 {
                            let j = 2 * pair
                            let w = unpack(j)
                            let v = unpack(j + 1)
                            let s0 = scale(j)
                            let s1 = scale(j + 1)
                            Self.prefetch(block + 2368 + 640 * pair, lines: 10)
                            Self.prefetchFar(block + 2368 * Self.farBlocks + 640 * pair, lines: 10)
                            for n in 0..<count {
                                let offset: Int = (first &+ n) &* columns &+ b &* 256 &+ 32 &* j
                                let xb = UnsafeRawPointer(values.advanced(by: offset))
                                let sum = _mm512_add_epi32(
                                    _mm512_mullo_epi32(subBlock(w, xb), s0),
                                    _mm512_mullo_epi32(subBlock(v, xb + 32), s1))
                                Self.store(_mm512_add_epi32(Self.load(scratch, n), sum), scratch, n)
                            }
                        }
                        for n in 0..<count { finish(n, Self.load(scratch, n)) }
                    }
                }
            }
        }

        /// Q6_K, the same way as ``q4K``.
        func q6K(
            _ group: Int, _ x: QuantizedActivations, _ values: UnsafePointer<Int8>, _ first: Int, _ count: Int,
            _ floats: UnsafeMutablePointer<Float>, _ scratch: UnsafeMutableRawPointer
        ) {
            let mask = _mm512_set1_epi8(0x0F)
            let highMask = _mm512_set1_epi8(0x30)
            let zero = _mm512_setzero_si512()
            let blocks = blocksPerRow
            let columns = columnCount
            let base = groupBase(group)
            x.scales256.withUnsafeBufferPointer { scales in
                x.sums16.withUnsafeBufferPointer { sums in
                    guard let scales = scales.baseAddress, let sums = sums.baseAddress else { return }
                    for b in 0..<blocks {
                        let block = base + b * 3392
                        @inline(__always) func scale(_ j: Int) -> __m512i {
                            _mm512_cvtepi8_epi32(
                                _mm_loadu_si128((block + 16 * j).assumingMemoryBound(to: __m128i_u.self)))
                        }
                        // The 4 weight vectors (value groups 0–3, codes 0…63) of 16-value sub-block j.
                        @inline(__always) func unpack(_ j: Int) -> (__m512i, __m512i, __m512i, __m512i) {
                            let low0 = Self.load(block + 320 + 192 * j)
                            let low1 = Self.load(block + 384 + 192 * j)
                            let high = Self.load(block + 448 + 192 * j)
                            return (
                                _mm512_or_si512(
                                    _mm512_and_si512(low0, mask), _mm512_and_si512(_mm512_slli_epi16(high, 4), highMask)
                                ),
                                _mm512_or_si512(
                                    _mm512_and_si512(low1, mask), _mm512_and_si512(_mm512_slli_epi16(high, 2), highMask)
                                ),
                                _mm512_or_si512(
                                    _mm512_and_si512(_mm512_srli_epi16(low0, 4), mask), _mm512_and_si512(high, highMask)
                                ),
                                _mm512_or_si512(
                                    _mm512_and_si512(_mm512_srli_epi16(low1, 4), mask),
                                    _mm512_and_si512(_mm512_srli_epi16(high, 2), highMask))
                            )
                        }
                        // Σ q·x over sub-block j for token `token` (the −32 offset is taken out per block in `finish`).
                        @inline(__always) func subBlock(
                            _ w: (__m512i, __m512i, __m512i, __m512i), _ token: Int, _ j: Int
                        ) -> __m512i {
                            let xb = UnsafeRawPointer(values.advanced(by: token &* columns &+ b &* 256 &+ j &* 16))
                            var p = _mm512_dpbusd_epi32(zero, w.0, Self.broadcast(xb, 0))
                            var q = _mm512_dpbusd_epi32(zero, w.1, Self.broadcast(xb, 4))
                            p = _mm512_dpbusd_epi32(p, w.2, Self.broadcast(xb, 8))
                            q = _mm512_dpbusd_epi32(q, w.3, Self.broadcast(xb, 12))
                            return _mm512_add_epi32(p, q)
                        }
                        let d = Self.halves(block + 256)
                        // Scales of sub-blocks 2k and 2k+1 as a 16-bit pair per row, for the offset: Σ_j sc_j·32·Σx_j
                        // in eight `vpdpwssd` per token and block, instead of a broadcast per sub-block.
                        let low16 = _mm512_set1_epi32(0xFFFF)
                        @inline(__always) func pair(_ k: Int) -> __m512i {
                            _mm512_or_si512(
                                _mm512_and_si512(scale(2 * k), low16), _mm512_slli_epi32(scale(2 * k + 1), 16))
                        }
                        let pairs = (pair(0), pair(1), pair(2), pair(3), pair(4), pair(5), pair(6), pair(7))
                        @inline(__always) func finish(_ n: Int, _ sum: __m512i) {
                            let index = (first + n) * blocks + b
                            let s = UnsafeRawPointer(sums + index * 16)
                            var offset = _mm512_dpwssd_epi32(zero, pairs.0, Self.broadcast(s, 0))
                            offset = _mm512_dpwssd_epi32(offset, pairs.1, Self.broadcast(s, 4))
                            offset = _mm512_dpwssd_epi32(offset, pairs.2, Self.broadcast(s, 8))
                            offset = _mm512_dpwssd_epi32(offset, pairs.3, Self.broadcast(s, 12))
                            offset = _mm512_dpwssd_epi32(offset, pairs.4, Self.broadcast(s, 16))
                            offset = _mm512_dpwssd_epi32(offset, pairs.5, Self.broadcast(s, 20))
                            offset = _mm512_dpwssd_epi32(offset, pairs.6, Self.broadcast(s, 24))
                            offset = _mm512_dpwssd_epi32(offset, pairs.7, Self.broadcast(s, 28))
                            // Σ_j sc_j·(Σ q·x − 32·Σx): exact in integers.
                            let total = _mm512_sub_epi32(sum, _mm512_slli_epi32(offset, 5))
                            let dx = _mm512_set1_ps(scales[index])
                            Self.accumulate(floats, n, _mm512_cvtepi32_ps(total), _mm512_mul_ps(d, dx))
                        }
                        for n in 0..<count { Self.store(zero, scratch, n) }
                        // Four sub-blocks at a time: 16 weight vectors in registers, four independent sums per token.
                        for quad in 0..<4 {
                            let j = 4 * quad
                            let w0 = unpack(j)
                            let w1 = unpack(j + 1)
                            let w2 = unpack(j + 2)
                            let w3 = unpack(j + 3)
                            let s0 = scale(j)
                            let s1 = scale(j + 1)
                            let s2 = scale(j + 2)
                            let s3 = scale(j + 3)
                            Self.prefetch(block + 3392 + 896 * quad, lines: 14)
                            Self.prefetchFar(block + 3392 * Self.farBlocks + 896 * quad, lines: 14)
                            for n in 0..<count {
                                let token = first &+ n
                                let sum = _mm512_add_epi32(
                                    _mm512_add_epi32(
                                        _mm512_mullo_epi32(subBlock(w0, token, j), s0),
                                        _mm512_mullo_epi32(subBlock(w1, token, j + 1), s1)),
                                    _mm512_add_epi32(
                                        _mm512_mullo_epi32(subBlock(w2, token, j + 2), s2),
                                        _mm512_mullo_epi32(subBlock(w3, token, j + 3), s3)))
                                Self.store(_mm512_add_epi32(Self.load(scratch, n), sum), scratch, n)
                            }
                        }
                        for n in 0..<count { finish(n, Self.load(scratch, n)) }
                    }
                }
            }
        }

    }
#endif
