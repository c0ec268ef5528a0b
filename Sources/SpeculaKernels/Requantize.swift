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
    /// The scale is chosen per block for the smallest squared error: the value of largest magnitude is mapped to each
    /// of the codes −8…−6 in quarter steps and to +7, every candidate scale is rounded to a half first (the stored
    /// scale is the one the codes are rounded with), and the best candidate's scale is then refitted by least
    /// squares for the codes it chose, kept when that lowers the error. The first candidate (the largest magnitude
    /// mapped to −8) is the format's usual choice, so a block's error is never above that choice's.
    public static func q4_0(_ values: UnsafePointer<Float>, count: Int, into out: UnsafeMutableRawPointer) {
        precondition(count % 32 == 0, "Q4_0 needs whole blocks of 32 values, not \(count)")
        var codes = [UInt8](repeating: 8, count: 32)
        var trial = [UInt8](repeating: 8, count: 32)
        for block in 0..<(count / 32) {
            let x = values + block * 32
            var extreme: Float = 0
            for k in 0..<32 where abs(x[k]) > abs(extreme) { extreme = x[k] }
            var bestScale: Float = 0
            var bestError = Float.infinity
            codes.withUnsafeMutableBufferPointer { codes in
                trial.withUnsafeMutableBufferPointer { trial in
                    guard let codes = codes.baseAddress, let trial = trial.baseAddress else { return }
                    if extreme == 0 || !extreme.isFinite {
                        codes.update(repeating: 8, count: 32)
                        return
                    }
                    func consider(_ scale: Float) {
                        let d = roundedToHalf(scale)
                        guard d != 0, d.isFinite else { return }
                        let error = round(x, scale: d, into: trial)
                        if error < bestError {
                            bestError = error
                            bestScale = d
                            codes.update(from: trial, count: 32)
                        }
                    }
                    for step in 0...8 { consider(extreme / (-8 + 0.25 * Float(step))) }
                    consider(extreme / 7)
                    var numerator: Float = 0
                    var denominator: Float = 0
                    for k in 0..<32 {
                        let level = Float(Int(codes[k]) - 8)
                        numerator += x[k] * level
                        denominator += level * level
                    }
                    if denominator > 0 { consider(numerator / denominator) }
                }
            }
            let destination = out + block * 18
            let bits = Float16(bestScale).bitPattern.littleEndian
            destination.storeBytes(of: bits, toByteOffset: 0, as: UInt16.self)
            for j in 0..<16 {
                destination.storeBytes(of: codes[j] | codes[j + 16] << 4, toByteOffset: 2 + j, as: UInt8.self)
            }
        }
    }

    /// Codes for the 32 values at `x` with scale `d` (nearest, clamped to 0…15), and the block's squared error.
    @inline(__always)
    static func round(_ x: UnsafePointer<Float>, scale d: Float, into codes: UnsafeMutablePointer<UInt8>) -> Float {
        let inverse = 1 / d
        var error: Float = 0
        for k in 0..<32 {
            let q = min(max((x[k] * inverse).rounded(.toNearestOrEven) + 8, 0), 15)
            codes[k] = UInt8(q)
            let e = x[k] - (q - 8) * d
            error += e * e
        }
        return error
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
