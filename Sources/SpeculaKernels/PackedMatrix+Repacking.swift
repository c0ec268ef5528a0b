import CSpeculaSystem

#if SPECULA_AVX512
    import _Builtin_intrinsics.intel
#endif
#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

// Repacking at load: stored blocks unpacked to value codes and written back interleaved by groups of 16 rows.
extension PackedMatrix {
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

}
