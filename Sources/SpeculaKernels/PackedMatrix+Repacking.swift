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

    /// The unsigned value codes of one stored block: Q4_K 0…15, Q6_K 0…63, Q5_0 0…31, Q4_0 0…15, Q8_0 q + 128.
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
        case .q4_0:
            for l in 0..<16 {
                let q = byte(2 + l)
                v[l] = q & 0x0F
                v[l + 16] = q >> 4
            }
        default:  // q8_0
            for l in 0..<32 { v[l] = byte(2 + l) &+ 128 }
        }
    }

    /// One block of 16 rows in the packed layout, written four bytes at a time straight from the stored bits (no
    /// per-value unpacking). Every load repacks every matrix; for the pinned pair this cut a process that loads both
    /// models and decodes one token from 1.75 s to 1.68 s (medians of 8 alternated runs; user time 1.92 → 1.75 s):
    /// what is left of the repack is bound by memory (first touches of the new pages and of the file's).
    /// Tests check it byte for byte against ``packByValue``.
    static func pack(_ m: QuantizedMatrix, group: Int, block b: Int, into out: UnsafeMutableRawPointer) {
        let rows = groupRows
        func source(_ r: Int) -> UnsafeRawPointer { m.row(group * rows + r) + b * m.type.blockBytes }
        func word(_ p: UnsafeRawPointer, _ offset: Int) -> UInt32 {
            UInt32(littleEndian: p.loadUnaligned(fromByteOffset: offset, as: UInt32.self))
        }
        func put(_ offset: Int, _ value: UInt32) {
            out.storeBytes(of: value.littleEndian, toByteOffset: offset, as: UInt32.self)
        }
        func copyHalf(_ r: Int, from offset: Int, to destination: Int) {
            out.storeBytes(
                of: source(r).loadUnaligned(fromByteOffset: offset, as: UInt16.self), toByteOffset: destination + 2 * r,
                as: UInt16.self)
        }
        let low: UInt32 = 0x0F0F_0F0F
        switch m.type {
        case .q4_K:
            for r in 0..<rows {
                let s = source(r)
                copyHalf(r, from: 0, to: 0)
                copyHalf(r, from: 2, to: 32)
                let (scales, minimums) = Dequantize.scalesAndMinimums(s + 4)
                for j in 0..<8 {
                    out.storeBytes(
                        of: UInt8(truncatingIfNeeded: scales >> UInt64(8 * j)), toByteOffset: 64 + j * 16 + r,
                        as: UInt8.self)
                    out.storeBytes(
                        of: UInt8(truncatingIfNeeded: minimums >> UInt64(8 * j)),
                        toByteOffset: 192 + (j / 2) * 32 + 2 * r + j % 2, as: UInt8.self)
                }
                // Sub-blocks 2c and 2c + 1 are the low and high nibbles of the 32 bytes of chunk c; vector v of a
                // sub-block pairs its values 4v…4v+3 (low nibble) with 4v+16… (high nibble).
                for chunk in 0..<4 {
                    for vector in 0..<4 {
                        let a = word(s, 16 + chunk * 32 + 4 * vector)
                        let c = word(s, 16 + chunk * 32 + 4 * vector + 16)
                        put(320 + (8 * chunk + vector) * 64 + 4 * r, (a & low) | (c & low) << 4)
                        put(320 + (8 * chunk + 4 + vector) * 64 + 4 * r, (a >> 4) & low | (c & ~low))
                    }
                }
            }
        case .q6_K:
            // The 32 bytes of padding after the scales: zero, so that a packed matrix's bytes depend on its weights
            // alone (the allocation is not cleared).
            (out + 288).initializeMemory(as: UInt8.self, repeating: 0, count: 32)
            for r in 0..<rows {
                let s = source(r)
                copyHalf(r, from: 208, to: 256)
                for j in 0..<16 {
                    out.storeBytes(
                        of: s.load(fromByteOffset: 192 + j, as: UInt8.self), toByteOffset: j * 16 + r, as: UInt8.self)
                }
                // Sub-block j (16 values) lies in one quarter of one half: its low codes are one nibble of 16 bytes
                // of `ql`, its two high bits one bit pair of 16 bytes of `qh`.
                for j in 0..<16 {
                    let half = j / 8
                    let quarter = (j % 8) / 2
                    let l0 = (j % 2) * 16
                    let lows = half * 64 + (quarter & 1) * 32 + l0
                    let shift = UInt32(4 * (quarter >> 1))
                    for u in 0..<2 {
                        let a = (word(s, lows + 4 * u) >> shift) & low
                        let c = (word(s, lows + 4 * u + 8) >> shift) & low
                        put(320 + j * 192 + u * 64 + 4 * r, a | c << 4)
                    }
                    var high: UInt32 = 0
                    for g in 0..<4 {
                        high |=
                            ((word(s, 128 + half * 32 + l0 + 4 * g) >> UInt32(2 * quarter)) & 0x0303_0303)
                            << UInt32(2 * g)
                    }
                    put(320 + j * 192 + 128 + 4 * r, high)
                }
            }
        case .q5_0:
            for r in 0..<rows {
                let s = source(r)
                copyHalf(r, from: 0, to: 0)
                // Vector u holds values 4u… (low nibble) and 4u+16… (high nibble): the stored bytes as they are.
                for u in 0..<4 { put(32 + u * 64 + 4 * r, word(s, 6 + 4 * u)) }
                let fifth = word(s, 2)
                var high: UInt32 = 0
                for i in 0..<4 {
                    var byte: UInt32 = 0
                    for g in 0..<8 { byte |= ((fifth >> UInt32(4 * g + i)) & 1) << UInt32(g) }
                    high |= byte << UInt32(8 * i)
                }
                put(288 + 4 * r, high)
            }
        case .q4_0:
            for r in 0..<rows {
                let s = source(r)
                copyHalf(r, from: 0, to: 0)
                for u in 0..<4 { put(32 + u * 64 + 4 * r, word(s, 2 + 4 * u)) }
            }
        default:  // q8_0
            for r in 0..<rows {
                let s = source(r)
                copyHalf(r, from: 0, to: 0)
                for g in 0..<8 { put(32 + g * 64 + 4 * r, word(s, 2 + 4 * g) ^ 0x8080_8080) }
            }
        }
    }

    /// The packed bytes, in storage order (for tests).
    public var storedBytes: [UInt8] {
        Array(UnsafeRawBufferPointer(start: groupBase(0), count: byteCount))
    }

    /// The bytes ``init(_:pool:)`` must store for `matrix`, assembled value by value (``packByValue``).
    public static func bytesByDefinition(_ matrix: QuantizedMatrix) -> [UInt8] {
        let blocks = matrix.columnCount / matrix.type.blockSize
        let groupBytes = blockGroupBytes(matrix.type)
        var bytes = [UInt8](repeating: 0, count: blocks * groupBytes * (matrix.rowCount / groupRows))
        var values = [UInt8](repeating: 0, count: groupRows * 256)
        bytes.withUnsafeMutableBytes { out in
            values.withUnsafeMutableBufferPointer { values in
                guard let out = out.baseAddress, let values = values.baseAddress else { return }
                for group in 0..<(matrix.rowCount / groupRows) {
                    for b in 0..<blocks {
                        packByValue(
                            matrix, group: group, block: b, values: values,
                            into: out + (group * blocks + b) * groupBytes)
                    }
                }
            }
        }
        return bytes
    }

    /// ``pack(_:group:block:into:)`` by its definition: every stored value unpacked to its code, then each
    /// packed byte assembled from the codes it holds.
    package static func packByValue(
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
        case .q4_0:
            for r in 0..<rows {
                copyHalf(r, from: 0, to: 0)
                for i in 0..<4 {
                    for u in 0..<4 { put(32 + u * 64 + 4 * r + i, value(r, 4 * u + i) | value(r, 4 * u + 16 + i) << 4) }
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
