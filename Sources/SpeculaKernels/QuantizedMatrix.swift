/// A weight matrix stored in a GGUF tensor: `rowCount` rows of `columnCount` elements, each row a whole number of
/// blocks, read in place from the mapped file.
public struct QuantizedMatrix: @unchecked Sendable {
    public let type: TensorType
    public let rowCount: Int
    public let columnCount: Int
    public let data: UnsafeRawPointer
    public let rowBytes: Int
    /// The same rows repacked for batched products (``PackedMatrix``), when made with ``packed(pool:)``.
    public private(set) var packed: PackedMatrix?
    /// The owner of `data` when the rows are not the mapped file's (``requantized(to:pool:)``): kept alive with
    /// every copy of this matrix.
    var owner: AnyObject?

    public init(type: TensorType, rowCount: Int, columnCount: Int, data: UnsafeRawPointer) {
        precondition(columnCount % type.blockSize == 0)
        self.type = type
        self.rowCount = rowCount
        self.columnCount = columnCount
        self.data = data
        rowBytes = columnCount / type.blockSize * type.blockBytes
    }

    /// A matrix whose rows are at `data` and whose packed copy is `packed` (one made elsewhere: a weight cache's,
    /// checked to be this type and shape), both kept alive by `owner` (nil for the mapped model file's rows).
    public init?(
        type: TensorType, rowCount: Int, columnCount: Int, data: UnsafeRawPointer, packed: PackedMatrix,
        owner: AnyObject?
    ) {
        guard columnCount % type.blockSize == 0, packed.type == type, packed.rowCount == rowCount,
            packed.columnCount == columnCount
        else { return nil }
        self.init(type: type, rowCount: rowCount, columnCount: columnCount, data: data)
        self.packed = packed
        self.owner = owner
    }

    public func row(_ index: Int) -> UnsafeRawPointer { data + index * rowBytes }

    /// This matrix with a packed copy of its rows, which ``Linear/multiply(_:_:bias:into:pool:)`` then uses; itself
    /// unchanged when its type or shape has no packed layout.
    public func packed(pool: WorkerPool = .shared) -> QuantizedMatrix {
        var copy = self
        copy.packed = PackedMatrix(self, pool: pool)
        return copy
    }

    /// The first `rows` rows, sharing the storage (and the packed copy's: nil when there is none or `rows` is not a
    /// multiple of 16).
    public func prefix(rows: Int) -> QuantizedMatrix? {
        guard rows > 0, rows <= rowCount, let packed, let view = packed.prefix(rows: rows) else { return nil }
        var copy = QuantizedMatrix(type: type, rowCount: rows, columnCount: columnCount, data: data)
        copy.packed = view
        copy.owner = owner
        return copy
    }

    /// The quantized activation forms a product with this matrix reads (none for float weights, which use the
    /// float rows).
    public var activationFormats: QuantizedActivations.Formats {
        switch type {
        case .q4_K, .q5_K, .q6_K: return .blocks256
        case .q4_0, .q4_1, .q5_0, .q5_1, .q8_0: return .blocks32
        default: return []
        }
    }

    /// Whether the integer kernels serve this type with these row lengths (otherwise rows are dequantized).
    var usesBlocks256: Bool { type == .q4_K || type == .q5_K || type == .q6_K }
}

/// Dot products of one stored weight row with one quantized activation row: the scalar definitions. The fast
/// kernels compute the same integer sums and combine them in a fixed order of their own.
public enum ReferenceDot {
    /// `Σ_i w_i · x_i` for weight row `row` of `matrix` and activation row `index` of `x`.
    public static func dot(_ matrix: QuantizedMatrix, row: Int, _ x: QuantizedActivations, _ index: Int) -> Float {
        let w = matrix.row(row)
        let n = matrix.columnCount
        switch matrix.type {
        case .q4_0, .q4_1, .q5_0, .q5_1, .q8_0:
            let blocks = n / 32
            var total: Float = 0
            for b in 0..<blocks {
                let block = w + b * matrix.type.blockBytes
                let xq = index * n + b * 32
                let dx = x.scales32[index * blocks + b]
                let sx = x.sums32[index * blocks + b]
                var q = [Int32](repeating: 0, count: 32)
                q.withUnsafeMutableBufferPointer {
                    if let base = $0.baseAddress { Self.unpack32(matrix.type, block, into: base) }
                }
                var sumi: Int32 = 0
                for k in 0..<32 { sumi += q[k] * Int32(x.values32[xq + k]) }
                let d = Dequantize.half(block, 0)
                switch matrix.type {
                case .q4_0: total += d * dx * Float(sumi - 8 * sx)
                case .q5_0: total += d * dx * Float(sumi - 16 * sx)
                case .q8_0: total += d * dx * Float(sumi)
                default:  // q4_1, q5_1: w = d·q + m
                    total += d * dx * Float(sumi) + Dequantize.half(block, 2) * dx * Float(sx)
                }
            }
            return total
        case .q4_K, .q5_K, .q6_K:
            precondition(x.hasBlocks256)
            let blocks = n / 256
            var total: Float = 0
            for b in 0..<blocks {
                let block = w + b * matrix.type.blockBytes
                let xq = index * n + b * 256
                let dx = x.scales256[index * blocks + b]
                // Integer sums per scale group, from the format's own layout.
                switch matrix.type {
                case .q6_K:
                    var q = [Int32](repeating: 0, count: 256)
                    q.withUnsafeMutableBufferPointer { if let base = $0.baseAddress { unpackQ6K(block, into: base) } }
                    var sumi: Int32 = 0
                    for g in 0..<16 {
                        let scale = Int32(Int8(bitPattern: block.load(fromByteOffset: 192 + g, as: UInt8.self)))
                        var s: Int32 = 0
                        for k in 0..<16 { s += (q[g * 16 + k] - 32) * Int32(x.values256[xq + g * 16 + k]) }
                        sumi += scale * s
                    }
                    total += Dequantize.half(block, 208) * dx * Float(sumi)
                default:
                    var q = [Int32](repeating: 0, count: 256)
                    q.withUnsafeMutableBufferPointer {
                        if let base = $0.baseAddress { unpackK(matrix.type, block, into: base) }
                    }
                    var sumi: Int32 = 0
                    var summ: Int32 = 0
                    for j in 0..<8 {
                        let (sc, m) = Dequantize.scaleAndMin(block + 4, j)
                        var s: Int32 = 0
                        for k in 0..<32 { s += q[j * 32 + k] * Int32(x.values256[xq + j * 32 + k]) }
                        sumi += Int32(sc) * s
                        let groupSum = Int32(x.sums16[(xq + j * 32) / 16]) + Int32(x.sums16[(xq + j * 32) / 16 + 1])
                        summ += Int32(m) * groupSum
                    }
                    total += dx * (Dequantize.half(block, 0) * Float(sumi) - Dequantize.half(block, 2) * Float(summ))
                }
            }
            return total
        case .f32, .f16, .bf16:
            let values = Dequantize.row(matrix.type, w, elementCount: n)
            var total: Float = 0
            for k in 0..<n { total += values[k] * x.floats[index * n + k] }
            return total
        }
    }

    /// ``dot(_:row:_:_:)`` for activation rows `first ..< first + count`, written to `output[k · stride]`: each
    /// weight block is unpacked once (into a stack buffer) for all the rows, and each row's total is the same
    /// expressions summed in the same block order, so every result is bit-identical to `dot`. The portable build's
    /// products run on it.
    public static func dotRows(
        _ matrix: QuantizedMatrix, row: Int, _ x: QuantizedActivations, first: Int, count: Int,
        into output: UnsafeMutablePointer<Float>, stride: Int
    ) {
        let w = matrix.row(row)
        let n = matrix.columnCount
        let type = matrix.type
        guard count > 0 else { return }
        switch type {
        case .q4_0, .q4_1, .q5_0, .q5_1, .q8_0:
            let blocks = n / 32
            x.values32.withUnsafeBufferPointer { values in
                withUnsafeTemporaryAllocation(of: Float.self, capacity: count) { totals in
                    withUnsafeTemporaryAllocation(of: Int32.self, capacity: 32) { buffer in
                        guard let q = buffer.baseAddress, let t = totals.baseAddress, let v = values.baseAddress else {
                            return
                        }
                        t.initialize(repeating: 0, count: count)
                        for b in 0..<blocks {
                            let block = w + b * type.blockBytes
                            Self.unpack32(type, block, into: q)
                            let d = Dequantize.half(block, 0)
                            for k in 0..<count {
                                let index = first + k
                                let xq = index * n + b * 32
                                let dx = x.scales32[index * blocks + b]
                                let sx = x.sums32[index * blocks + b]
                                var sumi: Int32 = 0
                                for i in 0..<32 { sumi += q[i] * Int32(v[xq + i]) }
                                switch type {
                                case .q4_0: t[k] += d * dx * Float(sumi - 8 * sx)
                                case .q5_0: t[k] += d * dx * Float(sumi - 16 * sx)
                                case .q8_0: t[k] += d * dx * Float(sumi)
                                default: t[k] += d * dx * Float(sumi) + Dequantize.half(block, 2) * dx * Float(sx)
                                }
                            }
                        }
                        for k in 0..<count { output[k * stride] = t[k] }
                    }
                }
            }
        case .q4_K, .q5_K, .q6_K:
            precondition(x.hasBlocks256)
            let blocks = n / 256
            x.values256.withUnsafeBufferPointer { values in
                withUnsafeTemporaryAllocation(of: Float.self, capacity: count) { totals in
                    withUnsafeTemporaryAllocation(of: Int32.self, capacity: 256) { buffer in
                        guard let q = buffer.baseAddress, let t = totals.baseAddress, let v = values.baseAddress else {
                            return
                        }
                        t.initialize(repeating: 0, count: count)
                        for b in 0..<blocks {
                            let block = w + b * type.blockBytes
                            if type == .q6_K {
                                unpackQ6K(block, into: q)
                                let d = Dequantize.half(block, 208)
                                for k in 0..<count {
                                    let index = first + k
                                    let xq = index * n + b * 256
                                    let dx = x.scales256[index * blocks + b]
                                    var sumi: Int32 = 0
                                    for g in 0..<16 {
                                        let scale = Int32(
                                            Int8(bitPattern: block.load(fromByteOffset: 192 + g, as: UInt8.self)))
                                        var s: Int32 = 0
                                        for i in 0..<16 { s += (q[g * 16 + i] - 32) * Int32(v[xq + g * 16 + i]) }
                                        sumi += scale * s
                                    }
                                    t[k] += d * dx * Float(sumi)
                                }
                            } else {
                                unpackK(type, block, into: q)
                                let d = Dequantize.half(block, 0)
                                let dmin = Dequantize.half(block, 2)
                                for k in 0..<count {
                                    let index = first + k
                                    let xq = index * n + b * 256
                                    let dx = x.scales256[index * blocks + b]
                                    var sumi: Int32 = 0
                                    var summ: Int32 = 0
                                    for j in 0..<8 {
                                        let (sc, m) = Dequantize.scaleAndMin(block + 4, j)
                                        var s: Int32 = 0
                                        for i in 0..<32 { s += q[j * 32 + i] * Int32(v[xq + j * 32 + i]) }
                                        sumi += Int32(sc) * s
                                        let groupSum =
                                            Int32(x.sums16[(xq + j * 32) / 16])
                                            + Int32(x.sums16[(xq + j * 32) / 16 + 1])
                                        summ += Int32(m) * groupSum
                                    }
                                    t[k] += dx * (d * Float(sumi) - dmin * Float(summ))
                                }
                            }
                        }
                        for k in 0..<count { output[k * stride] = t[k] }
                    }
                }
            }
        default:
            for k in 0..<count { output[k * stride] = dot(matrix, row: row, x, first + k) }
        }
    }

    /// The unsigned quantized values (before offsets and minimums) of a 32-element block.
    static func unpack32(_ type: TensorType, _ block: UnsafeRawPointer, into q: UnsafeMutablePointer<Int32>) {
        switch type {
        case .q8_0:
            for k in 0..<32 { q[k] = Int32(Int8(bitPattern: block.load(fromByteOffset: 2 + k, as: UInt8.self))) }
        case .q4_0, .q4_1:
            let offset = type == .q4_0 ? 2 : 4
            for k in 0..<16 {
                let byte = block.load(fromByteOffset: offset + k, as: UInt8.self)
                q[k] = Int32(byte & 0x0F)
                q[k + 16] = Int32(byte >> 4)
            }
        default:  // q5_0, q5_1
            let high = type == .q5_0 ? 2 : 4
            let qh = block.loadUnaligned(fromByteOffset: high, as: UInt32.self).littleEndian
            for k in 0..<16 {
                let byte = block.load(fromByteOffset: high + 4 + k, as: UInt8.self)
                q[k] = Int32(byte & 0x0F) | Int32((qh >> UInt32(k)) & 1) << 4
                q[k + 16] = Int32(byte >> 4) | Int32((qh >> UInt32(k + 16)) & 1) << 4
            }
        }
    }

    /// Q4_K / Q5_K values 0…15 / 0…31 in element order.
    static func unpackK(_ type: TensorType, _ block: UnsafeRawPointer, into q: UnsafeMutablePointer<Int32>) {
        let qs = block + (type == .q4_K ? 16 : 48)
        let qh = block + 16
        for chunk in 0..<4 {
            for l in 0..<32 {
                let byte = qs.load(fromByteOffset: chunk * 32 + l, as: UInt8.self)
                var low = Int32(byte & 0x0F)
                var high = Int32(byte >> 4)
                if type == .q5_K {
                    let h = qh.load(fromByteOffset: l, as: UInt8.self)
                    low |= Int32((h >> UInt8(2 * chunk)) & 1) << 4
                    high |= Int32((h >> UInt8(2 * chunk + 1)) & 1) << 4
                }
                q[chunk * 64 + l] = low
                q[chunk * 64 + 32 + l] = high
            }
        }
    }

    /// Q6_K values 0…63 in element order.
    static func unpackQ6K(_ block: UnsafeRawPointer, into q: UnsafeMutablePointer<Int32>) {
        for half in 0..<2 {
            let ql = block + half * 64
            let qh = block + 128 + half * 32
            for l in 0..<32 {
                let h = qh.load(fromByteOffset: l, as: UInt8.self)
                let a = ql.load(fromByteOffset: l, as: UInt8.self)
                let b = ql.load(fromByteOffset: l + 32, as: UInt8.self)
                q[half * 128 + l] = Int32((a & 0x0F) | ((h & 3) << 4))
                q[half * 128 + l + 32] = Int32((b & 0x0F) | (((h >> 2) & 3) << 4))
                q[half * 128 + l + 64] = Int32((a >> 4) | (((h >> 4) & 3) << 4))
                q[half * 128 + l + 96] = Int32((b >> 4) | (((h >> 6) & 3) << 4))
            }
        }
    }
}
