#if SPECULA_AVX512
    import _Builtin_intrinsics.intel
#endif
#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Re-quantization of stored weights into a leaner format at load, for a draft model: its products then read fewer
/// bytes per step. A draft may be any distribution the verifier is told about, so a less precise draft keeps every
/// verifier exact; only its acceptance can change.
public enum Requantize {
    /// The formats weights can be re-quantized to.
    public static let targets: Set<TensorType> = [.q4_0]

    /// Bits per weight of a stored format (block bytes × 8 ÷ block size).
    public static func bitsPerWeight(_ type: TensorType) -> Double {
        Double(type.blockBytes * 8) / Double(type.blockSize)
    }

    /// Q4_0 blocks for `count` values (a multiple of 32) at `out` (`count / 32 × 18` bytes): per block a scale d
    /// (stored as a half) and codes q in 0…15 standing for (q − 8)·d.
    ///
    /// The scale is chosen per block for the smallest squared error among three candidates: the value of largest
    /// magnitude mapped to the code −8 (the format's usual choice), the same value mapped to +7, and the
    /// least-squares scale for the codes the better of those two gave. Every candidate is rounded to a half before
    /// the codes are rounded with it (the stored scale is the one the codes were rounded with), so a block's error
    /// is never above the usual choice's. Vectorized where the AVX-512 kernels are compiled in (re-quantizing the
    /// pinned draft's 156 layer matrices and its output matrix takes a fraction of a second); the scalar loop is the
    /// same arithmetic lane by lane.
    public static func q4_0(_ values: UnsafePointer<Float>, count: Int, into out: UnsafeMutableRawPointer) {
        precondition(count % 32 == 0, "Q4_0 needs whole blocks of 32 values, not \(count)")
        for block in 0..<(count / 32) { q4_0Block(values + block * 32, into: out + block * 18) }
    }

    /// One block of ``q4_0(_:count:into:)``.
    @inline(__always)
    static func q4_0Block(_ x: UnsafePointer<Float>, into destination: UnsafeMutableRawPointer) {
        #if SPECULA_AVX512
            let a = _mm512_loadu_ps(x)
            let b = _mm512_loadu_ps(x + 16)
            let largest = horizontalMax(_mm512_max_ps(a, b))
            let smallest = -horizontalMax(-_mm512_min_ps(a, b))
        #else
            var largest = -Float.infinity
            var smallest = Float.infinity
            for k in 0..<32 {
                largest = max(largest, x[k])
                smallest = min(smallest, x[k])
            }
        #endif
        // The value of largest magnitude (the positive one on a tie).
        let extreme = largest >= -smallest ? largest : smallest
        var best: (scale: Float, error: Float) = (0, .infinity)
        func consider(_ scale: Float) {
            let d = roundedToHalf(scale)
            guard d != 0, d.isFinite else { return }
            let error = squaredError(x, scale: d)
            if error < best.error { best = (d, error) }
        }
        if extreme != 0 && extreme.isFinite {
            consider(extreme / -8)
            consider(extreme / 7)
            // The least-squares scale for the codes of the better candidate: Σ x·l / Σ l² over their levels l.
            if best.scale != 0 {
                let (numerator, denominator) = moments(x, inverse: 1 / best.scale)
                if denominator > 0 { consider(numerator / denominator) }
            }
        }
        let d = best.scale
        destination.storeBytes(of: Float16(d).bitPattern.littleEndian, toByteOffset: 0, as: UInt16.self)
        let inverse: Float = d == 0 ? 0 : 1 / d
        #if SPECULA_AVX512
            func codes(_ v: __m512) -> __m128i {
                _mm512_cvtepi32_epi8(_mm512_cvtps_epi32(_mm512_add_ps(levels(v, inverse), _mm512_set1_ps(8))))
            }
            let packed = _mm_or_si128(codes(a), _mm_slli_epi16(codes(b), 4))
            _mm_storeu_si128((destination + 2).assumingMemoryBound(to: __m128i_u.self), packed)
        #else
            for j in 0..<16 {
                destination.storeBytes(
                    of: code(x[j] * inverse) | code(x[j + 16] * inverse) << 4, toByteOffset: 2 + j, as: UInt8.self)
            }
        #endif
    }

    /// Σ x·l and Σ l² over the 32 values at `x`, l the level of x·`inverse`.
    @inline(__always) static func moments(_ x: UnsafePointer<Float>, inverse: Float) -> (Float, Float) {
        #if SPECULA_AVX512
            var numerator = _mm512_setzero_ps()
            var denominator = _mm512_setzero_ps()
            for half in 0..<2 {
                let v = _mm512_loadu_ps(x + 16 * half)
                let l = levels(v, inverse)
                numerator = _mm512_fmadd_ps(v, l, numerator)
                denominator = _mm512_fmadd_ps(l, l, denominator)
            }
            return (
                horizontalSum(numerator),
                horizontalSum(denominator)
            )
        #else
            var numerator: Float = 0
            var denominator: Float = 0
            for k in 0..<32 {
                let l = level(x[k] * inverse)
                numerator += x[k] * l
                denominator += l * l
            }
            return (numerator, denominator)
        #endif
    }

    /// The sum of 16 lanes, by halves (vector adds, not a loop over lanes).
    @inline(__always) static func horizontalSum(_ v: SIMD16<Float>) -> Float {
        let eight = v.lowHalf + v.highHalf
        let four = eight.lowHalf + eight.highHalf
        let two = four.lowHalf + four.highHalf
        return two[0] + two[1]
    }

    /// The largest of 16 lanes, by halves.
    @inline(__always) static func horizontalMax(_ v: SIMD16<Float>) -> Float {
        let eight = v.lowHalf.replacing(with: v.highHalf, where: v.highHalf .> v.lowHalf)
        let four = eight.lowHalf.replacing(with: eight.highHalf, where: eight.highHalf .> eight.lowHalf)
        let two = four.lowHalf.replacing(with: four.highHalf, where: four.highHalf .> four.lowHalf)
        return max(two[0], two[1])
    }

    #if SPECULA_AVX512
        /// ``level(_:)`` of 16 lanes of v·`inverse` (a lane that is not a number goes to −8).
        @inline(__always) static func levels(_ v: __m512, _ inverse: Float) -> __m512 {
            let scaled = _mm512_min_ps(
                _mm512_max_ps(_mm512_mul_ps(v, _mm512_set1_ps(inverse)), _mm512_set1_ps(-8)), _mm512_set1_ps(7))
            let magic = _mm512_set1_ps(12_582_912)
            return _mm512_sub_ps(_mm512_add_ps(scaled, magic), magic)
        }
    #endif

    /// The level −8…7 nearest to `v` (ties to even): clamped first, then rounded by adding and subtracting 1.5·2²³.
    @inline(__always) static func level(_ v: Float) -> Float {
        let clamped = min(max(v, -8), 7)
        return (clamped + 12_582_912) - 12_582_912
    }

    /// The stored code of `v`'s level, 0…15 (8, the level 0, for a value that is not a number).
    @inline(__always) static func code(_ v: Float) -> UInt8 {
        let l = level(v)
        return l.isNaN ? 8 : UInt8(l + 8)
    }

    /// Σ (x − level(x/d)·d)² over the 32 values at `x`.
    @inline(__always) static func squaredError(_ x: UnsafePointer<Float>, scale d: Float) -> Float {
        let inverse = 1 / d
        #if SPECULA_AVX512
            var total = _mm512_setzero_ps()
            for half in 0..<2 {
                let v = _mm512_loadu_ps(x + 16 * half)
                let e = _mm512_fnmadd_ps(levels(v, inverse), _mm512_set1_ps(d), v)
                total = _mm512_fmadd_ps(e, e, total)
            }
            return horizontalSum(total)
        #else
            var error: Float = 0
            for k in 0..<32 {
                let e = x[k] - level(x[k] * inverse) * d
                error += e * e
            }
            return error
        #endif
    }

    /// `value` as the nearest half, back in single precision.
    static func roundedToHalf(_ value: Float) -> Float { Float(Float16(value)) }
}

/// Rows of a matrix re-quantized at load: memory of its own, freed with the last matrix that uses it.
final class OwnedRows: @unchecked Sendable {
    let base: UnsafeMutableRawPointer
    init?(byteCount: Int) {
        guard byteCount > 0, let base = malloc(byteCount) else { return nil }
        self.base = base
    }
    deinit { free(base) }
}

extension QuantizedMatrix {
    /// This matrix's values re-quantized to `type` (one of ``Requantize/targets``), row by row on `pool`: each
    /// row is dequantized exactly (float formats too) and quantized again. Nil when `type` is not a target or the
    /// rows are not whole blocks of `type`. Not packed; call ``packed(pool:)``.
    public func requantized(to type: TensorType, pool: WorkerPool = .shared) -> QuantizedMatrix? {
        guard Requantize.targets.contains(type), columnCount % type.blockSize == 0,
            let rowBytes = type.byteCount(elementCount: columnCount),
            let storage = OwnedRows(byteCount: rowBytes * rowCount)
        else { return nil }
        let source = self
        let columns = columnCount
        let destination = storage.base
        pool.parallelFor(count: rowCount, granularity: 16) { range in
            var values = [Float](repeating: 0, count: columns)
            values.withUnsafeMutableBufferPointer { values in
                guard let values = values.baseAddress else { return }
                for row in range {
                    Dequantize.row(source.type, source.row(row), elementCount: columns, into: values)
                    Requantize.q4_0(values, count: columns, into: destination + row * rowBytes)
                }
            }
        }
        var matrix = QuantizedMatrix(type: type, rowCount: rowCount, columnCount: columnCount, data: destination)
        matrix.owner = storage
        return matrix
    }
}
