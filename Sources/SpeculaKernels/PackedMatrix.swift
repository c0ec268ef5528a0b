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
/// - Q4_0 (288 bytes per 32 values): d ×16 (f16), four nibble vectors as Q5_0's.
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
    /// A view's parent (``prefix(rows:)``), which owns the storage; nil when this matrix owns it.
    private let owner: PackedMatrix?
    /// What keeps bytes this matrix does not own alive (a mapped weight cache, ``init(mapped:type:rowCount:columnCount:keeper:)``).
    private let keeper: AnyObject?

    /// The types with a packed layout (when the vector kernels are compiled in).
    public static func supports(_ type: TensorType) -> Bool {
        #if SPECULA_AVX512
            return [.q4_K, .q6_K, .q8_0, .q5_0, .q4_0].contains(type)
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
        owner = nil
        keeper = nil
        let source = matrix
        let destination = raw
        let blocks = blocksPerRow
        let groupBytes = blockGroupBytes
        pool.parallelFor(count: rowCount / Self.groupRows) { range in
            for group in range {
                for b in 0..<blocks {
                    Self.pack(source, group: group, block: b, into: destination + (group * blocks + b) * groupBytes)
                }
            }
        }
    }

    private init(prefixOf parent: PackedMatrix, rows: Int) {
        type = parent.type
        rowCount = rows
        columnCount = parent.columnCount
        blocksPerRow = parent.blocksPerRow
        blockGroupBytes = parent.blockGroupBytes
        storage = parent.storage
        owner = parent
        keeper = nil
    }

    /// The packed bytes of a `rowCount` × `columnCount` matrix of `type`, as ``byteCount(type:rowCount:columnCount:)``
    /// counts them: nil when the type or shape has no packed layout, or `mapped` is not that long or not 64-byte
    /// aligned. The bytes are read in place (never written) and `keeper` is kept alive with this matrix.
    public init?(
        mapped: UnsafeRawBufferPointer, type: TensorType, rowCount: Int, columnCount: Int, keeper: AnyObject
    ) {
        guard let expected = Self.byteCount(type: type, rowCount: rowCount, columnCount: columnCount),
            mapped.count == expected, let base = mapped.baseAddress, Int(bitPattern: base) % 64 == 0
        else { return nil }
        self.type = type
        self.rowCount = rowCount
        self.columnCount = columnCount
        blocksPerRow = columnCount / type.blockSize
        blockGroupBytes = Self.blockGroupBytes(type)
        storage = UnsafeMutableRawPointer(mutating: base)
        owner = nil
        self.keeper = keeper
    }

    /// The packed size of a `rowCount` × `columnCount` matrix of `type`; nil when it has no packed layout.
    public static func byteCount(type: TensorType, rowCount: Int, columnCount: Int) -> Int? {
        guard supports(type), rowCount > 0, rowCount % groupRows == 0, columnCount > 0,
            columnCount % type.blockSize == 0
        else { return nil }
        let (bytes, overflow) = (columnCount / type.blockSize * blockGroupBytes(type))
            .multipliedReportingOverflow(by: rowCount / groupRows)
        return overflow ? nil : bytes
    }

    /// The packed bytes, in storage order (to write them to a weight cache).
    public var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: storage, count: byteCount) }

    /// The first `rows` rows (a multiple of 16), sharing this matrix's storage: groups are stored one after
    /// another, so a prefix of rows is a prefix of the bytes. Each row's products are the same as in the whole.
    public func prefix(rows: Int) -> PackedMatrix? {
        guard rows > 0, rows % Self.groupRows == 0, rows <= rowCount else { return nil }
        return PackedMatrix(prefixOf: self, rows: rows)
    }

    deinit { if owner == nil, keeper == nil { free(storage) } }

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

    // MARK: Products

    /// `output[n · stride + r] = Σ_k W[16·group + r, k] · x[n, k]` for `r` in `0..<16` and every activation row `n`.
    public func multiplyGroup(
        _ group: Int, _ x: QuantizedActivations, values32: UnsafePointer<Int8>?, values256: UnsafePointer<Int8>?,
        into output: UnsafeMutablePointer<Float>, stride: Int
    ) {
        #if SPECULA_AVX512
            precondition(x.columnCount == columnCount)
            // The float accumulators of the tile's tokens, then their integer sums, 64-byte aligned.
            let aligned = FastDot.productScratch(Self.tokenTile * 128)
            let floats = aligned.bindMemory(to: Float.self, capacity: Self.tokenTile * 16)
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
                case .q5_0: if let values32 { q5_0(group, x, values32, first, count, floats) }
                default: if let values32 { q4_0(group, x, values32, first, count, floats) }
                }
                for n in 0..<count {
                    (output + (first + n) * stride).update(from: floats + 16 * n, count: 16)
                }
                first += count
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

    #endif
}
