/// Scalar reference dequantization and dot products for every ``TensorType``: the definition the fast kernels are
/// tested against. Layouts are those of GGML's block formats; each loop follows the format's own element order.
public enum Dequantize {
    /// Dequantizes `elementCount` elements stored at `source` (a whole number of blocks) into `destination`.
    /// - Complexity: O(elementCount).
    public static func row(
        _ type: TensorType, _ source: UnsafeRawPointer, elementCount: Int, into destination: UnsafeMutablePointer<Float>
    ) {
        precondition(elementCount % type.blockSize == 0, "\(type): \(elementCount) is not a whole number of blocks")
        let blocks = elementCount / type.blockSize
        for block in 0..<blocks {
            let input = source + block * type.blockBytes
            let output = destination + block * type.blockSize
            switch type {
            case .f32: output[0] = input.loadUnaligned(as: Float.self)
            case .f16: output[0] = floatFromHalf(input.loadUnaligned(as: UInt16.self))
            case .bf16: output[0] = floatFromBFloat16(input.loadUnaligned(as: UInt16.self))
            case .q4_0: q4_0(input, output)
            case .q4_1: q4_1(input, output)
            case .q5_0: q5_0(input, output)
            case .q5_1: q5_1(input, output)
            case .q8_0: q8_0(input, output)
            case .q4_K: q4_K(input, output)
            case .q5_K: q5_K(input, output)
            case .q6_K: q6_K(input, output)
            }
        }
    }

    /// Dequantizes into a new array.
    public static func row(_ type: TensorType, _ source: UnsafeRawPointer, elementCount: Int) -> [Float] {
        [Float](unsafeUninitializedCapacity: elementCount) { buffer, initialized in
            if let base = buffer.baseAddress { row(type, source, elementCount: elementCount, into: base) }
            initialized = elementCount
        }
    }

    /// The reference dot product of a stored row with a float vector: dequantize, then sum the products in
    /// `Double` in element order.
    public static func dot(_ type: TensorType, _ source: UnsafeRawPointer, _ vector: [Float]) -> Double {
        let values = row(type, source, elementCount: vector.count)
        var total = 0.0
        for index in vector.indices { total += Double(values[index]) * Double(vector[index]) }
        return total
    }

    @inline(__always) public static func half(_ pointer: UnsafeRawPointer, _ offset: Int) -> Float {
        floatFromHalf(pointer.loadUnaligned(fromByteOffset: offset, as: UInt16.self))
    }

    @inline(__always) static func byte(_ pointer: UnsafeRawPointer, _ offset: Int) -> UInt8 {
        pointer.load(fromByteOffset: offset, as: UInt8.self)
    }

    // 32 values: d, then 16 bytes; low nibbles are elements 0..<16, high nibbles 16..<32, offset −8.
    static func q4_0(_ x: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
        let d = half(x, 0)
        for j in 0..<16 {
            let q = byte(x, 2 + j)
            y[j] = Float(Int(q & 0x0F) - 8) * d
            y[j + 16] = Float(Int(q >> 4) - 8) * d
        }
    }

    // As Q4_0 with a minimum: value = q·d + m.
    static func q4_1(_ x: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
        let d = half(x, 0)
        let m = half(x, 2)
        for j in 0..<16 {
            let q = byte(x, 4 + j)
            y[j] = Float(q & 0x0F) * d + m
            y[j + 16] = Float(q >> 4) * d + m
        }
    }

    // 5-bit values: the fifth bit of element j is bit j of the 32-bit qh, offset −16.
    static func q5_0(_ x: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
        let d = half(x, 0)
        let qh = x.loadUnaligned(fromByteOffset: 2, as: UInt32.self).littleEndian
        for j in 0..<16 {
            let q = byte(x, 6 + j)
            let high0 = UInt8(truncatingIfNeeded: ((qh >> UInt32(j)) << 4) & 0x10)
            let high1 = UInt8(truncatingIfNeeded: (qh >> UInt32(j + 12)) & 0x10)
            y[j] = Float(Int((q & 0x0F) | high0) - 16) * d
            y[j + 16] = Float(Int((q >> 4) | high1) - 16) * d
        }
    }

    static func q5_1(_ x: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
        let d = half(x, 0)
        let m = half(x, 2)
        let qh = x.loadUnaligned(fromByteOffset: 4, as: UInt32.self).littleEndian
        for j in 0..<16 {
            let q = byte(x, 8 + j)
            let high0 = UInt8(truncatingIfNeeded: ((qh >> UInt32(j)) << 4) & 0x10)
            let high1 = UInt8(truncatingIfNeeded: (qh >> UInt32(j + 12)) & 0x10)
            y[j] = Float((q & 0x0F) | high0) * d + m
            y[j + 16] = Float((q >> 4) | high1) * d + m
        }
    }

    static func q8_0(_ x: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
        let d = half(x, 0)
        for j in 0..<32 { y[j] = Float(Int8(bitPattern: byte(x, 2 + j))) * d }
    }

    /// All eight 6-bit scales and minimums of a Q4_K/Q5_K block at once: byte `j` of `scales` is sub-block `j`'s
    /// scale, byte `j` of `minimums` its minimum (the same values as ``scaleAndMin(_:_:)``, with word operations).
    @inline(__always)
    public static func scalesAndMinimums(_ packed: UnsafeRawPointer) -> (scales: UInt64, minimums: UInt64) {
        let u0 = packed.loadUnaligned(fromByteOffset: 0, as: UInt32.self).littleEndian
        let u1 = packed.loadUnaligned(fromByteOffset: 4, as: UInt32.self).littleEndian
        let u2 = packed.loadUnaligned(fromByteOffset: 8, as: UInt32.self).littleEndian
        let scalesLow = u0 & 0x3F3F_3F3F
        let scalesHigh = (u2 & 0x0F0F_0F0F) | (((u0 >> 6) & 0x0303_0303) << 4)
        let minimumsLow = u1 & 0x3F3F_3F3F
        let minimumsHigh = ((u2 >> 4) & 0x0F0F_0F0F) | (((u1 >> 6) & 0x0303_0303) << 4)
        return (UInt64(scalesLow) | UInt64(scalesHigh) << 32, UInt64(minimumsLow) | UInt64(minimumsHigh) << 32)
    }

    /// The 6-bit scale and minimum of sub-block `j` (0..<8) of a Q4_K/Q5_K block, packed in 12 bytes.
    @inline(__always) public static func scaleAndMin(_ scales: UnsafeRawPointer, _ j: Int) -> (UInt8, UInt8) {
        if j < 4 { return (byte(scales, j) & 63, byte(scales, j + 4) & 63) }
        let scale = (byte(scales, j + 4) & 0x0F) | ((byte(scales, j - 4) >> 6) << 4)
        let minimum = (byte(scales, j + 4) >> 4) | ((byte(scales, j) >> 6) << 4)
        return (scale, minimum)
    }

    // 256 values in 8 sub-blocks of 32: value = d·scale·q − dmin·min. Each 64-value chunk takes 32 bytes: low
    // nibbles first, then high nibbles.
    static func q4_K(_ x: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
        let d = half(x, 0)
        let dmin = half(x, 2)
        let scales = x + 4
        var q = x + 16
        var out = y
        for chunk in 0..<4 {
            let (sc1, m1) = scaleAndMin(scales, 2 * chunk)
            let (sc2, m2) = scaleAndMin(scales, 2 * chunk + 1)
            let d1 = d * Float(sc1)
            let min1 = dmin * Float(m1)
            let d2 = d * Float(sc2)
            let min2 = dmin * Float(m2)
            for l in 0..<32 { out[l] = d1 * Float(byte(q, l) & 0x0F) - min1 }
            for l in 0..<32 { out[32 + l] = d2 * Float(byte(q, l) >> 4) - min2 }
            q += 32
            out += 64
        }
    }

    // As Q4_K with a fifth bit per value from qh: chunk c uses bits 2c and 2c + 1 of each qh byte.
    static func q5_K(_ x: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
        let d = half(x, 0)
        let dmin = half(x, 2)
        let scales = x + 4
        let qh = x + 16
        var ql = x + 48
        var out = y
        var u1: UInt8 = 1
        var u2: UInt8 = 2
        for chunk in 0..<4 {
            let (sc1, m1) = scaleAndMin(scales, 2 * chunk)
            let (sc2, m2) = scaleAndMin(scales, 2 * chunk + 1)
            let d1 = d * Float(sc1)
            let min1 = dmin * Float(m1)
            let d2 = d * Float(sc2)
            let min2 = dmin * Float(m2)
            for l in 0..<32 {
                let high: UInt8 = byte(qh, l) & u1 != 0 ? 16 : 0
                out[l] = d1 * Float((byte(ql, l) & 0x0F) + high) - min1
            }
            for l in 0..<32 {
                let high: UInt8 = byte(qh, l) & u2 != 0 ? 16 : 0
                out[32 + l] = d2 * Float((byte(ql, l) >> 4) + high) - min2
            }
            ql += 32
            out += 64
            u1 <<= 2
            u2 <<= 2
        }
    }

    // 256 values: 4 low bits in ql, 2 high bits in qh, 16 int8 scales, d last; value = d·scale·(q − 32).
    static func q6_K(_ x: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
        let d = half(x, 208)
        var ql = x
        var qh = x + 128
        var sc = x + 192
        var out = y
        for _ in 0..<2 {
            for l in 0..<32 {
                let s = l / 16
                let h = byte(qh, l)
                let q1 = Int((byte(ql, l) & 0x0F) | ((h & 3) << 4)) - 32
                let q2 = Int((byte(ql, l + 32) & 0x0F) | (((h >> 2) & 3) << 4)) - 32
                let q3 = Int((byte(ql, l) >> 4) | (((h >> 4) & 3) << 4)) - 32
                let q4 = Int((byte(ql, l + 32) >> 4) | (((h >> 6) & 3) << 4)) - 32
                out[l] = d * Float(Int8(bitPattern: byte(sc, s))) * Float(q1)
                out[l + 32] = d * Float(Int8(bitPattern: byte(sc, s + 2))) * Float(q2)
                out[l + 64] = d * Float(Int8(bitPattern: byte(sc, s + 4))) * Float(q3)
                out[l + 96] = d * Float(Int8(bitPattern: byte(sc, s + 6))) * Float(q4)
            }
            ql += 64
            qh += 32
            sc += 8
            out += 128
        }
    }
}
