import SpeculaKernels
import SpeculaModels

/// Writes GGUF bytes field by field, so that tests can build valid files and break them on purpose.
struct GGUFBuilder {
    var bytes: [UInt8] = []

    mutating func u8(_ v: UInt8) { bytes.append(v) }
    mutating func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }
    mutating func u64(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }
    mutating func f32(_ v: Float) { u32(v.bitPattern) }
    mutating func string(_ s: String) {
        u64(UInt64(s.utf8.count))
        bytes.append(contentsOf: Array(s.utf8))
    }
    mutating func pad(to alignment: Int) {
        while bytes.count % alignment != 0 { bytes.append(0) }
    }

    struct Tensor {
        var name: String
        var dimensions: [UInt64]
        var type: TensorType
        var data: [UInt8]
    }

    /// A small valid file: a few metadata kinds (nested array included) and two tensors.
    static func valid(version: UInt32 = 3, alignment: UInt32? = nil) -> (bytes: [UInt8], tensors: [Tensor]) {
        var b = GGUFBuilder()
        let align = Int(alignment ?? 32)
        let f32Data = (0..<8).flatMap { i -> [UInt8] in
            withUnsafeBytes(of: Float(i).bitPattern.littleEndian) { Array($0) }
        }
        var q8 = [UInt8](repeating: 0, count: 34)
        q8[0] = 0x00
        q8[1] = 0x3C  // d = 1.0
        for j in 0..<32 { q8[2 + j] = UInt8(bitPattern: Int8(j - 16)) }
        let tensors = [
            Tensor(name: "a.weight", dimensions: [4, 2], type: .f32, data: f32Data),
            Tensor(name: "b.weight", dimensions: [32], type: .q8_0, data: q8),
        ]
        b.bytes += Array("GGUF".utf8)
        b.u32(version)
        b.u64(UInt64(tensors.count))
        b.u64(alignment == nil ? 4 : 5)
        b.string("general.architecture")
        b.u32(8)
        b.string("llama")
        b.string("llama.block_count")
        b.u32(4)
        b.u32(2)
        b.string("tokenizer.ggml.tokens")
        b.u32(9)
        b.u32(8)
        b.u64(3)
        for token in ["a", "b", "ab"] { b.string(token) }
        b.string("test.nested")
        b.u32(9)
        b.u32(9)
        b.u64(2)
        for row in 0..<2 {
            b.u32(6)
            b.u64(2)
            b.f32(Float(row))
            b.f32(0.5)
        }
        if let alignment {
            b.string("general.alignment")
            b.u32(4)
            b.u32(alignment)
        }
        var offset = 0
        for tensor in tensors {
            b.string(tensor.name)
            b.u32(UInt32(tensor.dimensions.count))
            for d in tensor.dimensions { b.u64(d) }
            b.u32(tensor.type.rawValue)
            b.u64(UInt64(offset))
            offset += (tensor.data.count + align - 1) / align * align
        }
        b.pad(to: align)
        for tensor in tensors {
            b.bytes += tensor.data
            b.pad(to: align)
        }
        return (b.bytes, tensors)
    }
}
