import CSpeculaSystem

#if SPECULA_AVX512
    import _Builtin_intrinsics.intel
#endif
#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A weight matrix repacked for batched products: rows interleaved in groups of 16, so that one integer
/// dot-product instruction multiplies four activation values (broadcast to every lane) by four weights of each of
/// the 16 rows, and every lane is one output row.
///
/// Why: in the stored layout each row's block has its own scales, so a product with several activation rows pays a
/// horizontal reduction and scalar scale arithmetic per (row, token, block) — for eight tokens that work, not the
/// weight reads, set the cost. Interleaved, the scales of 16 rows are one vector, nothing is reduced horizontally,
/// the unpacked weights of a sub-block stay in registers for every token of the batch, and a block's 16 outputs
/// are one contiguous store. The repacked bytes are the stored bits moved (Q4_K's scales take 4 more bytes per
/// block and row, +2.8 %; Q6_K pads each block to whole cache lines, +1 %), so a one-token product reads about the
/// same memory as before.
///
/// Packed layouts, per group of 16 rows and per weight block (all little-endian; "lane r" is the 4 bytes at
/// offset 4r of a 64-byte vector):
/// - Q4_K (2,368 bytes per 256 values): d ×16 (f16), dmin ×16 (f16), 8 × 16 six-bit scales (u8, sub-block-major),
///   4 × 32 minimum bytes (pair k holds the minimums of sub-blocks 2k and 2k+1 of row r at bytes 2r, 2r+1), then per
///   sub-block four 64-byte vectors: vector v, lane r, byte i holds value 4v+i in the low nibble and value 4v+16+i in
///   the high nibble.
/// - Q6_K (3,392 bytes per 256 values): 16 × 16 scales (i8, sub-block-major), d ×16 (f16), 32 bytes of padding,
///   then per 16-value sub-block two low-nibble vectors (vector u: group u low, group u+2 high; group g is values
///   4g..4g+3) and one vector of high bits (bits 2g, 2g+1 of lane r byte i: value 4g+i).
///
/// Each layout is read front to back in one pass (headers first, then the weights in the order the kernel uses
/// them), so the hardware prefetcher sees one sequential stream per thread.
/// - Q8_0 (544 bytes per 32 values): d ×16 (f16), eight vectors of q + 128 (vector g: values 4g..4g+3).
/// - Q5_0 (352 bytes per 32 values): d ×16 (f16), four low-nibble vectors (vector u: group u low, group u+4 high),
///   one vector of fifth bits (bit g of lane r byte i: value 4g+i).
///
/// Every output element is computed by the same operations in the same order whatever the batch size or the
/// token's place in it: integer sums per sub-block are exact; the float steps (one fused multiply-add per block and
/// lane, in block order) depend only on that row and that token. The order differs from ``ReferenceDot``'s scalar
/// sum, so the two agree to ``tolerance`` of Σ|w·x|.
public final class PackedMatrix: @unchecked Sendable {
    /// Rows per interleaved group.
    public static let groupRows = 16
    /// Tokens whose accumulators are kept at once (their activations and accumulators stay in the L1 cache).
    static let tokenTile = 32
    /// Relative agreement with ``ReferenceDot``: |packed − reference| ≤ this × Σ|w·x|.
    public static let tolerance: Float = 1e-5

    public let type: TensorType
    public let rowCount: Int
    public let columnCount: Int
    public var groupCount: Int { rowCount / Self.groupRows }
    let blocksPerRow: Int
    let blockGroupBytes: Int
    let storage: UnsafeMutableRawPointer

    /// The types with a packed layout (when the vector kernels are compiled in).
    public static func supports(_ type: TensorType) -> Bool {
        #if SPECULA_AVX512
            return [.q4_K, .q6_K, .q8_0, .q5_0].contains(type)
        #else
            return false
        #endif
    }

    /// Repacks `matrix` (nil when its type has no packed layout or its row count is not a multiple of 16).
    public init?(_ matrix: QuantizedMatrix, pool: WorkerPool = .shared) {
        guard Self.supports(matrix.type), matrix.rowCount % Self.groupRows == 0, matrix.rowCount > 0 else {
            return nil
        }
        type = matrix.type
        rowCount = matrix.rowCount
        columnCount = matrix.columnCount
        blocksPerRow = matrix.columnCount / matrix.type.blockSize
        blockGroupBytes = Self.blockGroupBytes(matrix.type)
        let total = blocksPerRow * blockGroupBytes * (rowCount / Self.groupRows)
        guard let raw = specula_allocate_weights(total) else { return nil }
        storage = raw
        let source = matrix
        let destination = raw
        let blocks = blocksPerRow
        let groupBytes = blockGroupBytes
        pool.parallelFor(count: rowCount / Self.groupRows) { range in
            withUnsafeTemporaryAllocation(of: UInt8.self, capacity: Self.groupRows * 256) { values in
                guard let values = values.baseAddress else { return }
                for group in range {
                    for b in 0..<blocks {
                        Self.pack(
                            source, group: group, block: b, values: values,
                            into: destination + (group * blocks + b) * groupBytes)
                    }
                }
            }
        }
    }

    deinit { free(storage) }

    /// Bytes of one block of 16 rows: the stored bytes, except Q4_K's, whose scales and minimums are unpacked
    /// from 12 bytes to 16 per row (2,368 instead of 2,304), and Q6_K's, padded to whole cache lines (3,392 instead
    /// of 3,360) so that every 64-byte load is aligned.
    static func blockGroupBytes(_ type: TensorType) -> Int {
        switch type {
        case .q4_K: return 2368
        case .q6_K: return 3392
        default: return groupRows * type.blockBytes
        }
    }

    /// Bytes of the packed copy.
    public var byteCount: Int { blocksPerRow * blockGroupBytes * groupCount }

    func groupBase(_ group: Int) -> UnsafeRawPointer {
        UnsafeRawPointer(storage) + group * blocksPerRow * blockGroupBytes
    }

    // MARK: Repacking

    /// The unsigned value codes of one stored block: Q4_K 0…15, Q6_K 0…63, Q5_0 0…31, Q8_0 q + 128.
    static func unpack(_ type: TensorType, _ block: UnsafeRawPointer, into v: UnsafeMutablePointer<UInt8>) {
        func byte(_ offset: Int) -> UInt8 { block.load(fromByteOffset: offset, as: UInt8.self) }
        switch type {
        case .q4_K:
            for chunk in 0..<4 {
                for l in 0..<32 {
                    let q = byte(16 + chunk * 32 + l)
                    v[chunk * 64 + l] = q & 0x0F
                    v[chunk * 64 + 32 + l] = q >> 4
                }
            }
        case .q6_K:
            for half in 0..<2 {
                for l in 0..<32 {
                    let low0 = byte(half * 64 + l)
                    let low1 = byte(half * 64 + l + 32)
                    let high = byte(128 + half * 32 + l)
                    let base = half * 128 + l
                    v[base] = (low0 & 0x0F) | ((high & 3) << 4)
                    v[base + 32] = (low1 & 0x0F) | (((high >> 2) & 3) << 4)
                    v[base + 64] = (low0 >> 4) | (((high >> 4) & 3) << 4)
                    v[base + 96] = (low1 >> 4) | (((high >> 6) & 3) << 4)
                }
            }
        case .q5_0:
            let qh = block.loadUnaligned(fromByteOffset: 2, as: UInt32.self).littleEndian
            for l in 0..<16 {
                let q = byte(6 + l)
                v[l] = (q & 0x0F) | UInt8((qh >> UInt32(l)) & 1) << 4
                v[l + 16] = (q >> 4) | UInt8((qh >> UInt32(l + 16)) & 1) << 4
            }
        default:  // q8_0
            for l in 0..<32 { v[l] = byte(2 + l) &+ 128 }
        }
    }

    static func pack(
        _ m: QuantizedMatrix, group: Int, block b: Int, values: UnsafeMutablePointer<UInt8>,
        into out: UnsafeMutableRawPointer
    ) {
        let rows = groupRows
        let size = m.type.blockSize
        func source(_ r: Int) -> UnsafeRawPointer { m.row(group * rows + r) + b * m.type.blockBytes }
        for r in 0..<rows { unpack(m.type, source(r), into: values + r * size) }
        func value(_ r: Int, _ k: Int) -> UInt8 { values[r * size + k] }
        func put(_ offset: Int, _ byte: UInt8) { out.storeBytes(of: byte, toByteOffset: offset, as: UInt8.self) }
        func copyHalf(_ r: Int, from offset: Int, to destination: Int) {
            out.storeBytes(
                of: source(r).loadUnaligned(fromByteOffset: offset, as: UInt16.self), toByteOffset: destination + 2 * r,
                as: UInt16.self)
        }
        switch m.type {
        case .q4_K:
            for r in 0..<rows {
                copyHalf(r, from: 0, to: 0)
                copyHalf(r, from: 2, to: 32)
                let (scales, minimums) = Dequantize.scalesAndMinimums(source(r) + 4)
                for j in 0..<8 {
                    put(64 + j * 16 + r, UInt8(truncatingIfNeeded: scales >> UInt64(8 * j)))
                    put(192 + (j / 2) * 32 + 2 * r + j % 2, UInt8(truncatingIfNeeded: minimums >> UInt64(8 * j)))
                }
                for j in 0..<8 {
                    for vector in 0..<4 {
                        for i in 0..<4 {
                            let k = j * 32 + 4 * vector + i
                            put(320 + (j * 4 + vector) * 64 + 4 * r + i, value(r, k) | value(r, k + 16) << 4)
                        }
                    }
                }
            }
        case .q6_K:
            for r in 0..<rows {
                copyHalf(r, from: 208, to: 256)
                for j in 0..<16 { put(j * 16 + r, source(r).load(fromByteOffset: 192 + j, as: UInt8.self)) }
                for j in 0..<16 {
                    for i in 0..<4 {
                        let k = j * 16 + i
                        for u in 0..<2 {
                            put(
                                320 + j * 192 + u * 64 + 4 * r + i,
                                (value(r, k + 4 * u) & 0x0F) | (value(r, k + 4 * u + 8) & 0x0F) << 4)
                        }
                        var high: UInt8 = 0
                        for g in 0..<4 { high |= (value(r, k + 4 * g) >> 4) << UInt8(2 * g) }
                        put(320 + j * 192 + 128 + 4 * r + i, high)
                    }
                }
            }
        case .q5_0:
            for r in 0..<rows {
                copyHalf(r, from: 0, to: 0)
                for i in 0..<4 {
                    for u in 0..<4 {
                        put(
                            32 + u * 64 + 4 * r + i,
                            (value(r, 4 * u + i) & 0x0F) | (value(r, 4 * u + 16 + i) & 0x0F) << 4)
                    }
                    var high: UInt8 = 0
                    for g in 0..<8 { high |= (value(r, 4 * g + i) >> 4) << UInt8(g) }
                    put(288 + 4 * r + i, high)
                }
            }
        default:  // q8_0
            for r in 0..<rows {
                copyHalf(r, from: 0, to: 0)
                for g in 0..<8 {
                    for i in 0..<4 { put(32 + g * 64 + 4 * r + i, value(r, 4 * g + i)) }
                }
            }
        }
    }

    // MARK: Products

    /// `output[n · stride + r] = Σ_k W[16·group + r, k] · x[n, k]` for `r` in `0..<16` and every activation row `n`.
    public func multiplyGroup(
        _ group: Int, _ x: QuantizedActivations, values32: UnsafePointer<Int8>?, values256: UnsafePointer<Int8>?,
        into output: UnsafeMutablePointer<Float>, stride: Int
    ) {
        #if SPECULA_AVX512
            precondition(x.columnCount == columnCount)
            withUnsafeTemporaryAllocation(of: Float.self, capacity: Self.tokenTile * 32 + 16) { scratch in
                // 64-byte aligned: the float accumulators of the tile's tokens, then their integer sums.
                guard let scratch = scratch.baseAddress,
                    let aligned = UnsafeMutableRawPointer(bitPattern: (Int(bitPattern: scratch) + 63) & ~63)
                else { return }
                let floats = aligned.assumingMemoryBound(to: Float.self)
                let integers = aligned + Self.tokenTile * 64
                var first = 0
                while first < x.rowCount {
                    let count = min(Self.tokenTile, x.rowCount - first)
                    for n in 0..<count { floats.advanced(by: 16 * n).initialize(repeating: 0, count: 16) }
                    switch type {
                    case .q4_K:
                        if let values256 { q4K(group, x, values256, first, count, floats, integers) }
                    case .q6_K:
                        if let values256 { q6K(group, x, values256, first, count, floats, integers) }
                    case .q8_0: if let values32 { q8_0(group, x, values32, first, count, floats) }
                    default: if let values32 { q5_0(group, x, values32, first, count, floats) }
                    }
                    for n in 0..<count {
                        (output + (first + n) * stride).update(from: floats + 16 * n, count: 16)
                    }
                    first += count
                }
            }
        #else
            preconditionFailure("packed matrices need the vector kernels")
        #endif
    }

    #if SPECULA_AVX512
        @inline(__always) static func load(_ p: UnsafeRawPointer) -> __m512i { _mm512_loadu_si512(p) }

        @inline(__always) static func load(_ p: UnsafeMutableRawPointer, _ n: Int) -> __m512i {
            _mm512_load_si512(p + 64 * n)
        }

        @inline(__always) static func load(_ p: UnsafeRawPointer, _ n: Int) -> __m512i {
            _mm512_load_si512(p + 64 * n)
        }

        @inline(__always) static func store(_ v: __m512i, _ p: UnsafeMutableRawPointer, _ n: Int) {
            _mm512_store_si512(p + 64 * n, v)
        }

        /// Prefetch hints for `lines` cache lines from `address` (the next block while this one is computed: with
        /// several tokens the arithmetic between two blocks' loads is longer than the out-of-order window, and
        /// without hints the loads of the next block would wait for it).
        @inline(__always) static func prefetch(_ address: UnsafeRawPointer, lines: Int) {
            for line in 0..<lines { specula_prefetch(address + 64 * line) }
        }

        /// Blocks ahead for the second, far prefetch (into the L2 cache only) of the K-quant kernels. One block ahead
        /// (the hint above) keeps too few lines in flight to stream at the memory's rate while several tokens are
        /// computed: the one-core L1 miss queue drains between blocks and the products wait for memory instead of
        /// overlapping it. Measured on the pinned target (`specula bench model --verify 8`, alternated runs): t(8)
        /// 56–78 ms without, 48–49 ms at 4 blocks (2: 49–64, 8: 50); one-token decode unchanged.
        static let farBlocks = 4

        @inline(__always) static func prefetchFar(_ address: UnsafeRawPointer, lines: Int) {
            for line in 0..<lines { specula_prefetch_l2(address + 64 * line) }
        }

        typealias Weights8 = (__m512i, __m512i, __m512i, __m512i, __m512i, __m512i, __m512i, __m512i)

        /// Σ over 32 values (8 groups of 4) of weight × activation per lane, plus `start`: two dependency chains of
        /// four `vpdpbusd` (the integer sum is exact in any order).
        // The 32-element formats keep their own loops (`q8_0`, `q5_0`): one shared, specialized function measured
        // 15–25 % slower for one token.
        @inline(__always) static func dot8(_ w: Weights8, _ xb: UnsafeRawPointer, start: __m512i) -> __m512i {
            var p = _mm512_dpbusd_epi32(start, w.0, broadcast(xb, 0))
            var q = _mm512_dpbusd_epi32(_mm512_setzero_si512(), w.1, broadcast(xb, 4))
            p = _mm512_dpbusd_epi32(p, w.2, broadcast(xb, 8))
            q = _mm512_dpbusd_epi32(q, w.3, broadcast(xb, 12))
            p = _mm512_dpbusd_epi32(p, w.4, broadcast(xb, 16))
            q = _mm512_dpbusd_epi32(q, w.5, broadcast(xb, 20))
            p = _mm512_dpbusd_epi32(p, w.6, broadcast(xb, 24))
            q = _mm512_dpbusd_epi32(q, w.7, broadcast(xb, 28))
            return _mm512_add_epi32(p, q)
        }

        /// Four activation bytes at `offset`, repeated in every lane.
        @inline(__always) static func broadcast(_ x: UnsafeRawPointer, _ offset: Int) -> __m512i {
            _mm512_set1_epi32(x.loadUnaligned(fromByteOffset: offset, as: Int32.self))
        }

        @inline(__always) static func halves(_ p: UnsafeRawPointer) -> __m512 {
            _mm512_cvtph_ps(_mm256_loadu_si256(p.assumingMemoryBound(to: __m256i_u.self)))
        }

        /// `acc[n] += a · b` in float lanes, in place.
        @inline(__always) static func accumulate(
            _ floats: UnsafeMutablePointer<Float>, _ n: Int, _ a: __m512, _ b: __m512
        ) {
            let p = floats + 16 * n
            _mm512_store_ps(p, _mm512_fmadd_ps(a, b, _mm512_load_ps(p)))
        }

        @inline(__always) static func subtract(
            _ floats: UnsafeMutablePointer<Float>, _ n: Int, _ a: __m512, _ b: __m512
        ) {
            let p = floats + 16 * n
            _mm512_store_ps(p, _mm512_fnmadd_ps(a, b, _mm512_load_ps(p)))
        }

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
    #endif
}
