import CSpeculaSystem

#if SPECULA_AVX512
    import _Builtin_intrinsics.intel
#endif
#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

// The 32-value block products (Q8_0, Q5_0, Q4_0).
#if SPECULA_AVX512
    extension PackedMatrix {
        func q8_0(
            _ group: Int, _ x: QuantizedActivations, _ values: UnsafePointer<Int8>, _ first: Int, _ count: Int,
            _ floats: UnsafeMutablePointer<Float>
        ) {
            let blocks = blocksPerRow
            let columns = columnCount
            let base = groupBase(group)
            x.scales32.withUnsafeBufferPointer { scales in
                x.sums32.withUnsafeBufferPointer { sums in
                    guard let scales = scales.baseAddress, let sums = sums.baseAddress else { return }
                    for b in 0..<blocks {
                        let block = base + b * 544
                        Self.prefetch(block + 544 * 4, lines: 9)
                        let w0 = Self.load(block + 32)
                        let w1 = Self.load(block + 96)
                        let w2 = Self.load(block + 160)
                        let w3 = Self.load(block + 224)
                        let w4 = Self.load(block + 288)
                        let w5 = Self.load(block + 352)
                        let w6 = Self.load(block + 416)
                        let w7 = Self.load(block + 480)
                        let d = Self.halves(block)
                        for n in 0..<count {
                            let index = (first + n) * blocks + b
                            let xb = UnsafeRawPointer(values + (first + n) * columns + b * 32)
                            // Σ (u − 128)·x with u = q + 128.
                            var p = _mm512_dpbusd_epi32(
                                _mm512_set1_epi32(sums[index] &* -128), w0, Self.broadcast(xb, 0))
                            p = _mm512_dpbusd_epi32(p, w1, Self.broadcast(xb, 4))
                            p = _mm512_dpbusd_epi32(p, w2, Self.broadcast(xb, 8))
                            p = _mm512_dpbusd_epi32(p, w3, Self.broadcast(xb, 12))
                            p = _mm512_dpbusd_epi32(p, w4, Self.broadcast(xb, 16))
                            p = _mm512_dpbusd_epi32(p, w5, Self.broadcast(xb, 20))
                            p = _mm512_dpbusd_epi32(p, w6, Self.broadcast(xb, 24))
                            p = _mm512_dpbusd_epi32(p, w7, Self.broadcast(xb, 28))
                            Self.accumulate(
                                floats, n, _mm512_cvtepi32_ps(p), _mm512_mul_ps(d, _mm512_set1_ps(scales[index])))
                        }
                    }
                }
            }
        }

        func q5_0(
            _ group: Int, _ x: QuantizedActivations, _ values: UnsafePointer<Int8>, _ first: Int, _ count: Int,
            _ floats: UnsafeMutablePointer<Float>
        ) {
            let mask = _mm512_set1_epi8(0x0F)
            let bit = _mm512_set1_epi8(0x10)
            let blocks = blocksPerRow
            let columns = columnCount
            let base = groupBase(group)
            x.scales32.withUnsafeBufferPointer { scales in
                x.sums32.withUnsafeBufferPointer { sums in
                    guard let scales = scales.baseAddress, let sums = sums.baseAddress else { return }
                    for b in 0..<blocks {
                        let block = base + b * 352
                        Self.prefetch(block + 352 * 4, lines: 6)
                        let l0 = Self.load(block + 32)
                        let l1 = Self.load(block + 96)
                        let l2 = Self.load(block + 160)
                        let l3 = Self.load(block + 224)
                        let h = Self.load(block + 288)
                        let w0 = _mm512_or_si512(
                            _mm512_and_si512(l0, mask), _mm512_and_si512(_mm512_slli_epi16(h, 4), bit))
                        let w1 = _mm512_or_si512(
                            _mm512_and_si512(l1, mask), _mm512_and_si512(_mm512_slli_epi16(h, 3), bit))
                        let w2 = _mm512_or_si512(
                            _mm512_and_si512(l2, mask), _mm512_and_si512(_mm512_slli_epi16(h, 2), bit))
                        let w3 = _mm512_or_si512(
                            _mm512_and_si512(l3, mask), _mm512_and_si512(_mm512_slli_epi16(h, 1), bit))
                        let w4 = _mm512_or_si512(
                            _mm512_and_si512(_mm512_srli_epi16(l0, 4), mask), _mm512_and_si512(h, bit))
                        let w5 = _mm512_or_si512(
                            _mm512_and_si512(_mm512_srli_epi16(l1, 4), mask),
                            _mm512_and_si512(_mm512_srli_epi16(h, 1), bit))
                        let w6 = _mm512_or_si512(
                            _mm512_and_si512(_mm512_srli_epi16(l2, 4), mask),
                            _mm512_and_si512(_mm512_srli_epi16(h, 2), bit))
                        let w7 = _mm512_or_si512(
                            _mm512_and_si512(_mm512_srli_epi16(l3, 4), mask),
                            _mm512_and_si512(_mm512_srli_epi16(h, 3), bit))
                        let d = Self.halves(block)
                        for n in 0..<count {
                            let index = (first + n) * blocks + b
                            let xb = UnsafeRawPointer(values + (first + n) * columns + b * 32)
                            var p = _mm512_dpbusd_epi32(
                                _mm512_set1_epi32(sums[index] &* -16), w0, Self.broadcast(xb, 0))
                            p = _mm512_dpbusd_epi32(p, w1, Self.broadcast(xb, 4))
                            p = _mm512_dpbusd_epi32(p, w2, Self.broadcast(xb, 8))
                            p = _mm512_dpbusd_epi32(p, w3, Self.broadcast(xb, 12))
                            p = _mm512_dpbusd_epi32(p, w4, Self.broadcast(xb, 16))
                            p = _mm512_dpbusd_epi32(p, w5, Self.broadcast(xb, 20))
                            p = _mm512_dpbusd_epi32(p, w6, Self.broadcast(xb, 24))
                            p = _mm512_dpbusd_epi32(p, w7, Self.broadcast(xb, 28))
                            Self.accumulate(
                                floats, n, _mm512_cvtepi32_ps(p), _mm512_mul_ps(d, _mm512_set1_ps(scales[index])))
                        }
                    }
                }
            }
        }
        func q4_0(
            _ group: Int, _ x: QuantizedActivations, _ values: UnsafePointer<Int8>, _ first: Int, _ count: Int,
            _ floats: UnsafeMutablePointer<Float>
        ) {
            let mask = _mm512_set1_epi8(0x0F)
            let blocks = blocksPerRow
            let columns = columnCount
            let base = groupBase(group)
            x.scales32.withUnsafeBufferPointer { scales in
                x.sums32.withUnsafeBufferPointer { sums in
                    guard let scales = scales.baseAddress, let sums = sums.baseAddress else { return }
                    for b in 0..<blocks {
                        let block = base + b * 288
                        Self.prefetch(block + 288 * 4, lines: 5)
                        let l0 = Self.load(block + 32)
                        let l1 = Self.load(block + 96)
                        let l2 = Self.load(block + 160)
                        let l3 = Self.load(block + 224)
                        let w0 = _mm512_and_si512(l0, mask)
                        let w1 = _mm512_and_si512(l1, mask)
                        let w2 = _mm512_and_si512(l2, mask)
                        let w3 = _mm512_and_si512(l3, mask)
                        let w4 = _mm512_and_si512(_mm512_srli_epi16(l0, 4), mask)
                        let w5 = _mm512_and_si512(_mm512_srli_epi16(l1, 4), mask)
                        let w6 = _mm512_and_si512(_mm512_srli_epi16(l2, 4), mask)
                        let w7 = _mm512_and_si512(_mm512_srli_epi16(l3, 4), mask)
                        let d = Self.halves(block)
                        for n in 0..<count {
                            let index = (first + n) * blocks + b
                            let xb = UnsafeRawPointer(values + (first + n) * columns + b * 32)
                            // Σ (u − 8)·x with u the stored nibble.
                            var p = _mm512_dpbusd_epi32(
                                _mm512_set1_epi32(sums[index] &* -8), w0, Self.broadcast(xb, 0))
                            p = _mm512_dpbusd_epi32(p, w1, Self.broadcast(xb, 4))
                            p = _mm512_dpbusd_epi32(p, w2, Self.broadcast(xb, 8))
                            p = _mm512_dpbusd_epi32(p, w3, Self.broadcast(xb, 12))
                            p = _mm512_dpbusd_epi32(p, w4, Self.broadcast(xb, 16))
                            p = _mm512_dpbusd_epi32(p, w5, Self.broadcast(xb, 20))
                            p = _mm512_dpbusd_epi32(p, w6, Self.broadcast(xb, 24))
                            p = _mm512_dpbusd_epi32(p, w7, Self.broadcast(xb, 28))
                            Self.accumulate(
                                floats, n, _mm512_cvtepi32_ps(p), _mm512_mul_ps(d, _mm512_set1_ps(scales[index])))
                        }
                    }
                }
            }
        }
    }
#endif
