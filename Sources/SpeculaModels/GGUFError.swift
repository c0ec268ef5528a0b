/// A GGUF file that cannot be read: what was wrong, in which file, at which byte offset, for which key or tensor.
public struct GGUFError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable {
        case badMagic(found: UInt32)
        case bigEndian
        case unsupportedVersion(UInt32)
        case truncated(needed: Int, available: Int)
        case countTooLarge(count: UInt64, limit: Int)
        case stringTooLong(length: UInt64, available: Int)
        case invalidUTF8
        case unknownValueType(UInt32)
        case nestingTooDeep(depth: Int)
        case duplicateKey
        case wrongValueType(expected: String, found: String)
        case badAlignment(UInt64)
        case tooManyDimensions(Int)
        case badDimension(UInt64)
        case elementCountOverflow
        case unknownTensorType(UInt32)
        case notWholeBlocks(elements: Int, blockSize: Int)
        case misaligned(offset: UInt64, alignment: Int)
        case outsideFile(start: UInt64, byteCount: Int, dataSize: Int)
        case duplicateTensor
        case missingKey
        case missingTensor
    }

    public var path: String
    /// Byte offset in the file where the problem was found.
    public var offset: Int
    /// The metadata key or tensor name concerned, if any.
    public var subject: String?
    public var kind: Kind

    public var description: String {
        let place = "\(path), byte \(offset)" + (subject.map { ", \($0)" } ?? "")
        return "\(place): \(message)"
    }

    var message: String {
        switch kind {
        case .badMagic(let found):
            return "not a GGUF file (magic 0x\(String(found, radix: 16)), expected \"GGUF\")"
        case .bigEndian: return "big-endian GGUF files are not supported"
        case .unsupportedVersion(let version): return "GGUF version \(version) is not supported (2 and 3 are)"
        case .truncated(let needed, let available):
            return "file ends early: \(needed) bytes needed, \(available) left"
        case .countTooLarge(let count, let limit): return "count \(count) exceeds what the file can hold (\(limit))"
        case .stringTooLong(let length, let available):
            return "string length \(length) exceeds the \(available) bytes left"
        case .invalidUTF8: return "string is not valid UTF-8"
        case .unknownValueType(let raw): return "unknown metadata value type \(raw)"
        case .nestingTooDeep(let depth): return "arrays nested \(depth) deep"
        case .duplicateKey: return "metadata key appears twice"
        case .wrongValueType(let expected, let found): return "expected a \(expected), found \(found)"
        case .badAlignment(let value): return "alignment \(value) is not a power of two between 1 and 2^20"
        case .tooManyDimensions(let count): return "\(count) dimensions (at most 4)"
        case .badDimension(let value): return "dimension \(value) is out of range"
        case .elementCountOverflow: return "element count overflows"
        case .unknownTensorType(let raw): return "unknown or unsupported tensor type \(raw)"
        case .notWholeBlocks(let elements, let blockSize):
            return "first dimension \(elements) is not a multiple of the block size \(blockSize)"
        case .misaligned(let offset, let alignment): return "data offset \(offset) is not a multiple of \(alignment)"
        case .outsideFile(let start, let byteCount, let dataSize):
            return "data [\(start), \(start) + \(byteCount)) lies outside the \(dataSize)-byte data section"
        case .duplicateTensor: return "tensor name appears twice"
        case .missingKey: return "required metadata key is missing"
        case .missingTensor: return "required tensor is missing"
        }
    }
}
