/// The tensor element types Specula reads, with GGML's type ids and block layouts (facts of the GGUF format).
///
/// Quantized types store blocks of `blockSize` elements in `blockBytes` bytes; see `Dequantize` for each layout.
public enum TensorType: UInt32, Sendable, CaseIterable, CustomStringConvertible {
    case f32 = 0
    case f16 = 1
    case q4_0 = 2
    case q4_1 = 3
    case q5_0 = 6
    case q5_1 = 7
    case q8_0 = 8
    case q4_K = 12
    case q5_K = 13
    case q6_K = 14
    case bf16 = 30

    /// Elements per block.
    public var blockSize: Int {
        switch self {
        case .f32, .f16, .bf16: return 1
        case .q4_0, .q4_1, .q5_0, .q5_1, .q8_0: return 32
        case .q4_K, .q5_K, .q6_K: return 256
        }
    }

    /// Bytes per block.
    public var blockBytes: Int {
        switch self {
        case .f32: return 4
        case .f16, .bf16: return 2
        case .q4_0: return 18  // f16 d, 16 bytes of 4-bit values
        case .q4_1: return 20  // f16 d, f16 m, 16 bytes
        case .q5_0: return 22  // f16 d, 4 bytes of high bits, 16 bytes
        case .q5_1: return 24  // f16 d, f16 m, 4 bytes high bits, 16 bytes
        case .q8_0: return 34  // f16 d, 32 int8
        case .q4_K: return 144  // f16 d, f16 dmin, 12 bytes of 6-bit scales/mins, 128 bytes
        case .q5_K: return 176  // as Q4_K plus 32 bytes of high bits
        case .q6_K: return 210  // 128 bytes low 4 bits, 64 bytes high 2 bits, 16 int8 scales, f16 d
        }
    }

    /// The GGML name (`Q4_K`, `F32`, …).
    public var description: String {
        switch self {
        case .f32: return "F32"
        case .f16: return "F16"
        case .bf16: return "BF16"
        case .q4_0: return "Q4_0"
        case .q4_1: return "Q4_1"
        case .q5_0: return "Q5_0"
        case .q5_1: return "Q5_1"
        case .q8_0: return "Q8_0"
        case .q4_K: return "Q4_K"
        case .q5_K: return "Q5_K"
        case .q6_K: return "Q6_K"
        }
    }

    /// Bytes for `elementCount` elements, or nil if the count is not a whole number of blocks or overflows.
    public func byteCount(elementCount: Int) -> Int? {
        guard elementCount >= 0, elementCount % blockSize == 0 else { return nil }
        let (bytes, overflow) = (elementCount / blockSize).multipliedReportingOverflow(by: blockBytes)
        return overflow ? nil : bytes
    }
}

/// IEEE half precision to single, exactly (subnormals, infinities and NaN included), without relying on the
/// platform's `Float16`.
@inlinable @inline(__always)
public func floatFromHalf(_ bits: UInt16) -> Float {
    #if arch(x86_64) || arch(arm64)
        // The hardware conversion (F16C / FP16), exact like the bit manipulation below.
        return Float(Float16(bitPattern: bits))
    #else
        return floatFromHalfBits(bits)
    #endif
}

/// The portable conversion, by bit manipulation.
@inlinable
public func floatFromHalfBits(_ bits: UInt16) -> Float {
    let sign = UInt32(bits & 0x8000) << 16
    let exponent = Int((bits >> 10) & 0x1F)
    let mantissa = UInt32(bits & 0x3FF)
    if exponent == 0 {
        if mantissa == 0 { return Float(bitPattern: sign) }
        // Subnormal half: mantissa · 2^−24, exact in Float.
        let magnitude = Float(mantissa) * 0x1p-24
        return sign == 0 ? magnitude : -magnitude
    }
    if exponent == 31 { return Float(bitPattern: sign | 0x7F80_0000 | (mantissa << 13)) }
    return Float(bitPattern: sign | UInt32(exponent - 15 + 127) << 23 | (mantissa << 13))
}

/// bfloat16 to single: the top 16 bits of a Float.
@inlinable
public func floatFromBFloat16(_ bits: UInt16) -> Float { Float(bitPattern: UInt32(bits) << 16) }
