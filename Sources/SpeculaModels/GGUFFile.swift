import SpeculaKernels

/// One tensor's entry in a GGUF file.
public struct GGUFTensorInfo: Sendable, Equatable {
    public var name: String
    /// Dimensions as GGUF lists them: `dimensions[0]` is the innermost (contiguous) one.
    public var dimensions: [Int]
    public var type: TensorType
    /// Offset from the start of the data section.
    public var offset: Int
    public var elementCount: Int
    public var byteCount: Int
    /// Rows of `dimensions[0]` elements.
    public var rowCount: Int { dimensions.isEmpty ? 1 : elementCount / max(dimensions[0], 1) }
}

/// A GGUF file (versions 2 and 3), memory-mapped: metadata parsed, tensor data left in place and addressed by
/// offset, never copied.
///
/// Everything is validated before any tensor access: magic, version, counts and string lengths bounded by the
/// bytes left, value types, nesting depth, alignment, tensor dimensions and overflow, tensor types, offsets,
/// alignment and extent of every tensor. Errors are ``GGUFError``s naming the file, the byte offset and the key or
/// tensor. (Format facts: the GGUF specification in ggml's repository.)
public final class GGUFFile: @unchecked Sendable {
    public let path: String
    public let version: UInt32
    /// Metadata in file order.
    public let metadata: [(key: String, value: GGUFValue)]
    public let tensors: [GGUFTensorInfo]
    public let alignment: Int
    /// Offset of the data section in the file.
    public let dataOffset: Int
    public let fileSize: Int

    /// The keys of the metadata values left undecoded (``init(file:deferring:)``), in file order; their bytes are
    /// ``rawValue(of:)``. Their structure was checked (lengths, counts, types, nesting), their text was not decoded.
    public let deferredKeys: [String]
    /// Where each metadata entry's type and value are in the file.
    private let valueRanges: [String: Range<Int>]

    private let file: MappedFile
    private let metadataIndex: [String: Int]
    private let tensorIndex: [String: Int]

    /// Arrays deeper than this are rejected.
    public static let maximumNesting = 8

    /// Maps and validates the file at `path`. A file that cannot be opened throws ``MappedFile/OpenError``.
    public convenience init(path: String, deferring: (String) -> Bool = { _ in false }) throws {
        try self.init(file: try MappedFile(path: path), deferring: deferring)
    }

    /// Validates an already mapped file (also used by the tests on crafted bytes). Metadata values whose key
    /// `deferring` accepts (any but `general.alignment`, which the reader needs) are checked for structure but not
    /// decoded, and are not in ``metadata``: their bytes are
    /// in ``deferred`` (a draft's tokenizer arrays, compared byte for byte with its target's: decoding 300,000
    /// strings takes most of a 0.05 s open).
    public init(file: MappedFile, deferring: (String) -> Bool = { _ in false }) throws {
        self.file = file
        path = file.path
        fileSize = file.bytes.count
        var reader = ByteReader(bytes: file.bytes, path: file.path)
        let magic = try reader.uint32(subject: "magic")
        if magic != 0x4655_4747 {  // "GGUF" read little-endian
            throw GGUFError(path: path, offset: 0, subject: nil, kind: .badMagic(found: magic))
        }
        let versionOffset = reader.offset
        let rawVersion = try reader.uint32(subject: "version")
        if rawVersion != 2 && rawVersion != 3 {
            if rawVersion.byteSwapped == 2 || rawVersion.byteSwapped == 3 {
                throw GGUFError(path: path, offset: versionOffset, subject: "version", kind: .bigEndian)
            }
            throw GGUFError(
                path: path, offset: versionOffset, subject: "version", kind: .unsupportedVersion(rawVersion))
        }
        version = rawVersion
        let tensorCount = try reader.count(subject: "tensor count", minimumElementBytes: 24)
        let metadataCount = try reader.count(subject: "metadata count", minimumElementBytes: 12)

        var metadata: [(key: String, value: GGUFValue)] = []
        metadata.reserveCapacity(metadataCount)
        var metadataIndex: [String: Int] = [:]
        var deferredKeys: [String] = []
        var valueRanges: [String: Range<Int>] = [:]
        for _ in 0..<metadataCount {
            let keyOffset = reader.offset
            let key = try reader.string(subject: "metadata key")
            let typeOffset = reader.offset
            let rawType = try reader.uint32(subject: key)
            guard let type = GGUFValueType(rawValue: rawType) else {
                throw GGUFError(path: path, offset: typeOffset, subject: key, kind: .unknownValueType(rawType))
            }
            // The reader needs the alignment itself.
            let deferred = deferring(key) && key != "general.alignment"
            var value: GGUFValue?
            if deferred {
                try reader.skipValue(type, subject: key, depth: 0)
            } else {
                value = try reader.value(type, subject: key, depth: 0)
            }
            if valueRanges[key] != nil {
                throw GGUFError(path: path, offset: keyOffset, subject: key, kind: .duplicateKey)
            }
            if let value {
                metadataIndex[key] = metadata.count
                metadata.append((key, value))
            } else {
                deferredKeys.append(key)
            }
            valueRanges[key] = typeOffset..<reader.offset
        }
        self.deferredKeys = deferredKeys
        self.valueRanges = valueRanges

        var alignment = 32
        if let index = metadataIndex["general.alignment"] {
            let value = metadata[index].value
            guard let raw = value.integer, raw >= 1, raw <= 1 << 20, raw & (raw - 1) == 0 else {
                let shown = value.integer.map { UInt64(max($0, 0)) } ?? 0
                throw GGUFError(path: path, offset: 0, subject: "general.alignment", kind: .badAlignment(shown))
            }
            alignment = raw
        }

        struct Pending {
            var info: GGUFTensorInfo
            var rawOffset: UInt64
            var at: Int
        }
        var pending: [Pending] = []
        pending.reserveCapacity(tensorCount)
        var tensorIndex: [String: Int] = [:]
        for _ in 0..<tensorCount {
            let entryOffset = reader.offset
            let name = try reader.string(subject: "tensor name")
            let dimensionCount = try reader.uint32(subject: name)
            if dimensionCount > 4 {
                throw GGUFError(
                    path: path, offset: entryOffset, subject: name, kind: .tooManyDimensions(Int(dimensionCount)))
            }
            var dimensions: [Int] = []
            var elementCount = 1
            for _ in 0..<dimensionCount {
                let at = reader.offset
                let raw = try reader.uint64(subject: name)
                guard raw >= 1, raw <= UInt64(Int32.max) else {
                    throw GGUFError(path: path, offset: at, subject: name, kind: .badDimension(raw))
                }
                let (product, overflow) = elementCount.multipliedReportingOverflow(by: Int(raw))
                if overflow || product > Int(Int64.max / 8) {
                    throw GGUFError(path: path, offset: at, subject: name, kind: .elementCountOverflow)
                }
                elementCount = product
                dimensions.append(Int(raw))
            }
            let typeOffset = reader.offset
            let rawType = try reader.uint32(subject: name)
            guard let type = TensorType(rawValue: rawType) else {
                throw GGUFError(path: path, offset: typeOffset, subject: name, kind: .unknownTensorType(rawType))
            }
            let inner = dimensions.first ?? 1
            guard inner % type.blockSize == 0, let byteCount = type.byteCount(elementCount: elementCount) else {
                throw GGUFError(
                    path: path, offset: typeOffset, subject: name,
                    kind: .notWholeBlocks(elements: inner, blockSize: type.blockSize))
            }
            let dataOffsetAt = reader.offset
            let rawOffset = try reader.uint64(subject: name)
            if rawOffset % UInt64(alignment) != 0 {
                throw GGUFError(
                    path: path, offset: dataOffsetAt, subject: name,
                    kind: .misaligned(offset: rawOffset, alignment: alignment))
            }
            if tensorIndex[name] != nil {
                throw GGUFError(path: path, offset: entryOffset, subject: name, kind: .duplicateTensor)
            }
            tensorIndex[name] = pending.count
            let info = GGUFTensorInfo(
                name: name, dimensions: dimensions, type: type, offset: 0, elementCount: elementCount,
                byteCount: byteCount)
            pending.append(Pending(info: info, rawOffset: rawOffset, at: dataOffsetAt))
        }
        // The data section starts at the next multiple of the alignment.
        let headerEnd = reader.offset
        let dataOffset = (headerEnd + alignment - 1) / alignment * alignment
        let dataSize = max(fileSize - dataOffset, 0)
        if tensorCount > 0 && dataOffset > fileSize {
            throw GGUFError(
                path: path, offset: headerEnd, subject: "data section",
                kind: .truncated(needed: dataOffset - headerEnd, available: fileSize - headerEnd))
        }
        var tensors: [GGUFTensorInfo] = []
        tensors.reserveCapacity(pending.count)
        for entry in pending {
            let (end, overflow) = entry.rawOffset.addingReportingOverflow(UInt64(entry.info.byteCount))
            if overflow || end > UInt64(dataSize) {
                throw GGUFError(
                    path: path, offset: entry.at, subject: entry.info.name,
                    kind: .outsideFile(start: entry.rawOffset, byteCount: entry.info.byteCount, dataSize: dataSize))
            }
            var info = entry.info
            info.offset = Int(entry.rawOffset)
            tensors.append(info)
        }
        self.metadata = metadata
        self.metadataIndex = metadataIndex
        self.tensors = tensors
        self.tensorIndex = tensorIndex
        self.alignment = alignment
        self.dataOffset = dataOffset
    }

    public subscript(key: String) -> GGUFValue? {
        metadataIndex[key].map { metadata[$0].value }
    }

    public func tensor(named name: String) -> GGUFTensorInfo? {
        tensorIndex[name].map { tensors[$0] }
    }

    /// The bytes of a tensor, in place in the mapping (no copy).
    public func data(of tensor: GGUFTensorInfo) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(
            rebasing: file.bytes[(dataOffset + tensor.offset)..<(dataOffset + tensor.offset + tensor.byteCount)])
    }

    /// Drops the tensor's pages from resident memory (see ``MappedFile/release(_:)``); its bytes stay readable.
    public func release(_ tensor: GGUFTensorInfo) { file.release(data(of: tensor)) }

    /// The bytes of a metadata entry's type and value as the file stores them (deferred or not); nil when absent.
    public func rawValue(of key: String) -> UnsafeRawBufferPointer? {
        valueRanges[key].map { UnsafeRawBufferPointer(rebasing: file.bytes[$0]) }
    }

    /// Every metadata key, decoded or deferred, in no particular order.
    public var allKeys: [String] { Array(valueRanges.keys) }

    /// The bytes of a named tensor; a missing one is a ``GGUFError``.
    public func data(ofTensorNamed name: String) throws -> (info: GGUFTensorInfo, bytes: UnsafeRawBufferPointer) {
        guard let info = tensor(named: name) else {
            throw GGUFError(path: path, offset: 0, subject: name, kind: .missingTensor)
        }
        return (info, data(of: info))
    }

    // MARK: typed metadata access

    func missing(_ key: String) -> GGUFError { GGUFError(path: path, offset: 0, subject: key, kind: .missingKey) }

    func wrongType(_ key: String, _ expected: String, _ value: GGUFValue) -> GGUFError {
        GGUFError(path: path, offset: 0, subject: key, kind: .wrongValueType(expected: expected, found: value.summary))
    }

    public func string(_ key: String) throws -> String {
        guard let value = self[key] else { throw missing(key) }
        guard let string = value.string else { throw wrongType(key, "string", value) }
        return string
    }

    public func integer(_ key: String) throws -> Int {
        guard let value = self[key] else { throw missing(key) }
        guard let integer = value.integer else { throw wrongType(key, "integer", value) }
        return integer
    }

    public func double(_ key: String) throws -> Double {
        guard let value = self[key] else { throw missing(key) }
        guard let double = value.double else { throw wrongType(key, "number", value) }
        return double
    }

    public func stringArray(_ key: String) throws -> [String] {
        guard let value = self[key] else { throw missing(key) }
        guard case .array(.string, let values) = value else { throw wrongType(key, "array of strings", value) }
        return values.map { $0.string ?? "" }
    }

    public func integerArray(_ key: String) throws -> [Int] {
        guard let value = self[key] else { throw missing(key) }
        guard let values = value.array else { throw wrongType(key, "array of integers", value) }
        return try values.map { element in
            guard let integer = element.integer else { throw wrongType(key, "array of integers", value) }
            return integer
        }
    }

    public func doubleArray(_ key: String) throws -> [Double] {
        guard let value = self[key] else { throw missing(key) }
        guard let values = value.array else { throw wrongType(key, "array of numbers", value) }
        return try values.map { element in
            guard let number = element.double else { throw wrongType(key, "array of numbers", value) }
            return number
        }
    }
}

/// Bounds-checked little-endian reads over the mapped bytes.
struct ByteReader {
    let bytes: UnsafeRawBufferPointer
    let path: String
    var offset = 0

    var remaining: Int { bytes.count - offset }

    func error(_ kind: GGUFError.Kind, _ subject: String?, at: Int? = nil) -> GGUFError {
        GGUFError(path: path, offset: at ?? offset, subject: subject, kind: kind)
    }

    mutating func need(_ count: Int, _ subject: String?) throws {
        if count > remaining { throw error(.truncated(needed: count, available: remaining), subject) }
    }

    mutating func load<T: FixedWidthInteger>(_: T.Type, _ subject: String?) throws -> T {
        try need(MemoryLayout<T>.size, subject)
        let value = bytes.loadUnaligned(fromByteOffset: offset, as: T.self)
        offset += MemoryLayout<T>.size
        return T(littleEndian: value)
    }

    mutating func uint32(subject: String?) throws -> UInt32 { try load(UInt32.self, subject) }
    mutating func uint64(subject: String?) throws -> UInt64 { try load(UInt64.self, subject) }

    /// A 64-bit count, bounded by what the rest of the file could hold at `minimumElementBytes` per element.
    mutating func count(subject: String, minimumElementBytes: Int) throws -> Int {
        let at = offset
        let raw = try uint64(subject: subject)
        let limit = remaining / max(minimumElementBytes, 1)
        if raw > UInt64(limit) { throw error(.countTooLarge(count: raw, limit: limit), subject, at: at) }
        return Int(raw)
    }

    mutating func string(subject: String?) throws -> String {
        let at = offset
        let slice = try stringBytes(subject: subject)
        guard let text = String(validating: slice, as: UTF8.self) else { throw error(.invalidUTF8, subject, at: at) }
        return text
    }

    /// A string's bytes, its length checked against the bytes left; not checked for UTF-8.
    mutating func stringBytes(subject: String?) throws -> UnsafeRawBufferPointer {
        let at = offset
        let length = try uint64(subject: subject)
        if length > UInt64(remaining) {
            throw error(.stringTooLong(length: length, available: remaining), subject, at: at)
        }
        defer { offset += Int(length) }
        return UnsafeRawBufferPointer(rebasing: bytes[offset..<(offset + Int(length))])
    }

    /// An array's element type and count (the nesting depth checked).
    mutating func arrayHeader(subject: String, depth: Int) throws -> (elementType: GGUFValueType, count: Int) {
        if depth >= GGUFFile.maximumNesting { throw error(.nestingTooDeep(depth: depth + 1), subject) }
        let typeOffset = offset
        let rawType = try uint32(subject: subject)
        guard let elementType = GGUFValueType(rawValue: rawType) else {
            throw error(.unknownValueType(rawType), subject, at: typeOffset)
        }
        // Each element takes at least its fixed size, or 8 bytes (a string's length, an array's header).
        return (elementType, try count(subject: subject, minimumElementBytes: elementType.fixedSize ?? 8))
    }

    /// Steps over a value as ``value(_:subject:depth:)`` reads it, with the same checks of lengths, counts, types
    /// and nesting, but without decoding it (strings are not checked for UTF-8).
    mutating func skipValue(_ type: GGUFValueType, subject: String, depth: Int) throws {
        switch type {
        case .string:
            _ = try stringBytes(subject: subject)
        case .array:
            let (elementType, count) = try arrayHeader(subject: subject, depth: depth)
            if let size = elementType.fixedSize, elementType != .bool {
                try need(count * size, subject)
                offset += count * size
            } else {
                for _ in 0..<count { try skipValue(elementType, subject: subject, depth: depth + 1) }
            }
        default:
            _ = try value(type, subject: subject, depth: depth)
        }
    }

    mutating func value(_ type: GGUFValueType, subject: String, depth: Int) throws -> GGUFValue {
        switch type {
        case .uint8: return .uint8(try load(UInt8.self, subject))
        case .int8: return .int8(try load(Int8.self, subject))
        case .uint16: return .uint16(try load(UInt16.self, subject))
        case .int16: return .int16(try load(Int16.self, subject))
        case .uint32: return .uint32(try load(UInt32.self, subject))
        case .int32: return .int32(try load(Int32.self, subject))
        case .float32: return .float32(Float(bitPattern: try load(UInt32.self, subject)))
        case .bool:
            let at = offset
            let raw = try load(UInt8.self, subject)
            if raw > 1 { throw error(.wrongValueType(expected: "bool (0 or 1)", found: "\(raw)"), subject, at: at) }
            return .bool(raw == 1)
        case .string: return .string(try string(subject: subject))
        case .uint64: return .uint64(try load(UInt64.self, subject))
        case .int64: return .int64(try load(Int64.self, subject))
        case .float64: return .float64(Double(bitPattern: try load(UInt64.self, subject)))
        case .array:
            let (elementType, count) = try arrayHeader(subject: subject, depth: depth)
            var values: [GGUFValue] = []
            values.reserveCapacity(count)
            for _ in 0..<count { values.append(try value(elementType, subject: subject, depth: depth + 1)) }
            return .array(elementType, values)
        }
    }
}
