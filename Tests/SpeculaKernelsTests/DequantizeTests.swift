import Foundation
import SpeculaKernels
import Testing

/// Scalar dequantization against the `gguf` package's numpy dequantizers (scripts/make-quant-fixtures.py): the
/// same bytes must give the same float32 bit patterns.
@Suite("Tensor types: reference dequantization")
struct DequantizeTests {
    struct Case: Decodable {
        var type: String
        var elements: Int
        var bytes: String
        var values: [String]
    }

    static let cases: [Case] = {
        struct File: Decodable { var cases: [Case] }
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("Fixtures/dequantize.json")
        guard let data = try? Data(contentsOf: url), let file = try? JSONDecoder().decode(File.self, from: data)
        else { return [] }
        return file.cases
    }()

    static func bytes(_ hex: String) -> [UInt8] {
        var result: [UInt8] = []
        var index = hex.startIndex
        while index < hex.endIndex {
            let next = hex.index(index, offsetBy: 2)
            result.append(UInt8(hex[index..<next], radix: 16) ?? 0)
            index = next
        }
        return result
    }

    @Test func everyTypeHasAFixture() {
        #expect(Set(Self.cases.map(\.type)) == Set(TensorType.allCases.map(\.description)))
    }

    @Test(arguments: TensorType.allCases)
    func matchesTheIndependentDequantizer(type: TensorType) throws {
        let fixture = try #require(Self.cases.first { $0.type == type.description })
        let raw = Self.bytes(fixture.bytes)
        #expect(raw.count == type.byteCount(elementCount: fixture.elements))
        let values = raw.withUnsafeBytes { buffer in
            Dequantize.row(type, buffer.baseAddress!, elementCount: fixture.elements)
        }
        var mismatches = 0
        for (index, expected) in fixture.values.enumerated() {
            let bits = UInt32(expected, radix: 16) ?? 0
            if values[index].bitPattern != bits {
                if mismatches < 3 {
                    Issue.record("\(type) element \(index): \(values[index]) vs \(Float(bitPattern: bits))")
                }
                mismatches += 1
            }
        }
        #expect(mismatches == 0, "\(type): \(mismatches) of \(fixture.elements) values differ")
        // The reference dot product is the dequantized row times the vector.
        let vector = (0..<fixture.elements).map { Float($0 % 7) - 3 }
        let dot = raw.withUnsafeBytes { Dequantize.dot(type, $0.baseAddress!, vector) }
        var expected = 0.0
        for index in vector.indices { expected += Double(values[index]) * Double(vector[index]) }
        #expect(dot == expected)
    }

    @Test func halfConversionIsExact() {
        #expect(floatFromHalf(0x3C00) == 1)
        #expect(floatFromHalf(0xC000) == -2)
        #expect(floatFromHalf(0x0001) == 0x1p-24)
        #expect(floatFromHalf(0x7BFF) == 65504)
        #expect(floatFromHalf(0x7C00) == .infinity)
        #expect(floatFromHalf(0x7E00).isNaN)
        #expect(floatFromHalf(0x8000).sign == .minus)
        for bits in UInt16(0)...UInt16(0x7BFF) {  // every finite positive half: portable path = platform type
            #expect(floatFromHalfBits(bits) == Float(Float16(bitPattern: bits)))
            #expect(floatFromHalfBits(bits | 0x8000) == Float(Float16(bitPattern: bits | 0x8000)))
        }
        #expect(floatFromHalfBits(0x7C00) == .infinity)
        #expect(floatFromHalfBits(0x7E00).isNaN)
        #expect(floatFromBFloat16(0x3F80) == 1)
    }

    @Test func byteCounts() {
        #expect(TensorType.q4_K.byteCount(elementCount: 512) == 288)
        #expect(TensorType.q4_K.byteCount(elementCount: 100) == nil)
        #expect(TensorType.f32.byteCount(elementCount: Int.max / 2) == nil)
    }
}
