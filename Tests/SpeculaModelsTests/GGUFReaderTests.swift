import SpeculaKernels
import SpeculaModels
import SpeculaTestSupport
import Testing

@Suite("GGUF reader: valid files and crafted bad bytes")
struct GGUFReaderTests {
    func open(_ bytes: [UInt8]) throws -> GGUFFile {
        try GGUFFile(file: MappedFile(copying: bytes, name: "crafted.gguf"))
    }

    func expectError(_ bytes: [UInt8], _ check: (GGUFError.Kind) -> Bool, subject: String? = nil) {
        do {
            _ = try open(bytes)
            Issue.record("expected a GGUFError, the file parsed")
        } catch let error as GGUFError {
            #expect(check(error.kind), "\(error)")
            #expect(error.path == "crafted.gguf")
            if let subject { #expect(error.subject == subject, "\(error)") }
            #expect(error.description.contains("crafted.gguf, byte \(error.offset)"))
        } catch {
            Issue.record("unexpected error \(error)")
        }
    }

    @Test(arguments: [UInt32(2), 3])
    func readsAValidFile(version: UInt32) throws {
        let (bytes, tensors) = GGUFBuilder.valid(version: version)
        let file = try open(bytes)
        #expect(file.version == version)
        #expect(try file.string("general.architecture") == "llama")
        #expect(try file.integer("llama.block_count") == 2)
        #expect(try file.stringArray("tokenizer.ggml.tokens") == ["a", "b", "ab"])
        guard case .array(.array, let rows) = file["test.nested"] else {
            Issue.record("nested array not read")
            return
        }
        #expect(
            rows == [.array(.float32, [.float32(0), .float32(0.5)]), .array(.float32, [.float32(1), .float32(0.5)])])
        #expect(file.alignment == 32)
        #expect(file.tensors.map(\.name) == tensors.map(\.name))
        let a = try file.data(ofTensorNamed: "a.weight")
        #expect(a.info.dimensions == [4, 2])
        #expect(a.info.rowCount == 2)
        #expect(Dequantize.row(.f32, a.bytes.baseAddress!, elementCount: 8) == (0..<8).map(Float.init))
        let b = try file.data(ofTensorNamed: "b.weight")
        #expect(Dequantize.row(.q8_0, b.bytes.baseAddress!, elementCount: 32) == (0..<32).map { Float($0 - 16) })
        #expect(file.dataOffset % 32 == 0)
        #expect(throws: GGUFError.self) { try file.data(ofTensorNamed: "missing") }
        #expect(throws: GGUFError.self) { try file.integer("general.architecture") }
        #expect(throws: GGUFError.self) { try file.string("missing.key") }
    }

    @Test func customAlignment() throws {
        let (bytes, _) = GGUFBuilder.valid(alignment: 64)
        let file = try open(bytes)
        #expect(file.alignment == 64)
        #expect(file.dataOffset % 64 == 0)
        #expect(try file.data(ofTensorNamed: "b.weight").bytes.count == 34)
    }

    // Offsets of fields in the valid file (version 3, no alignment key), for the crafted cases below.
    static let tensorCountOffset = 8
    static let metadataCountOffset = 16

    static func patch(_ bytes: [UInt8], at offset: Int, u64 value: UInt64) -> [UInt8] {
        var copy = bytes
        withUnsafeBytes(of: value.littleEndian) { for (i, b) in $0.enumerated() { copy[offset + i] = b } }
        return copy
    }

    static func patch(_ bytes: [UInt8], at offset: Int, u32 value: UInt32) -> [UInt8] {
        var copy = bytes
        withUnsafeBytes(of: value.littleEndian) { for (i, b) in $0.enumerated() { copy[offset + i] = b } }
        return copy
    }

    /// Byte offset just after the first occurrence of `marker` (a key or tensor name as written).
    static func after(_ marker: String, in bytes: [UInt8]) -> Int {
        let needle = Array(marker.utf8)
        for start in 0...(bytes.count - needle.count) where Array(bytes[start..<(start + needle.count)]) == needle {
            return start + needle.count
        }
        preconditionFailure("marker \(marker) not found")
    }

    @Test func badMagicAndVersions() {
        let valid = GGUFBuilder.valid().bytes
        var magic = valid
        magic[0] = UInt8(ascii: "X")
        expectError(magic) { if case .badMagic = $0 { return true } else { return false } }
        expectError(Self.patch(valid, at: 4, u32: 1)) { $0 == .unsupportedVersion(1) }
        expectError(Self.patch(valid, at: 4, u32: 99)) { $0 == .unsupportedVersion(99) }
        expectError(Self.patch(valid, at: 4, u32: UInt32(3).byteSwapped)) { $0 == .bigEndian }
        expectError([]) { if case .truncated = $0 { return true } else { return false } }
        expectError(Array("GGU".utf8)) { if case .truncated = $0 { return true } else { return false } }
    }

    @Test func hugeCountsAndLengths() {
        let valid = GGUFBuilder.valid().bytes
        expectError(Self.patch(valid, at: Self.tensorCountOffset, u64: UInt64.max)) {
            if case .countTooLarge = $0 { return true } else { return false }
        }
        expectError(Self.patch(valid, at: Self.metadataCountOffset, u64: 1 << 40)) {
            if case .countTooLarge = $0 { return true } else { return false }
        }
        // The first key's length.
        expectError(Self.patch(valid, at: 24, u64: 1 << 50)) {
            if case .stringTooLong = $0 { return true } else { return false }
        }
        // The token array's element count.
        let countAt = Self.after("tokenizer.ggml.tokens", in: valid) + 8
        expectError(
            Self.patch(valid, at: countAt, u64: UInt64.max / 2),
            { if case .countTooLarge = $0 { return true } else { return false } }, subject: "tokenizer.ggml.tokens")
    }

    @Test func badValues() {
        let valid = GGUFBuilder.valid().bytes
        let typeAt = Self.after("llama.block_count", in: valid)
        expectError(
            Self.patch(valid, at: typeAt, u32: 77), { $0 == .unknownValueType(77) }, subject: "llama.block_count")
        var utf8 = valid
        utf8[Self.after("general.architecture", in: valid) + 4 + 8] = 0xFF  // first byte of "llama"
        expectError(utf8, { $0 == .invalidUTF8 }, subject: "general.architecture")
        // A duplicate key: rename llama.block_count to general.architecture's spelling is not the same length, so
        // write a file with the same key twice.
        var b = GGUFBuilder()
        b.bytes += Array("GGUF".utf8)
        b.u32(3)
        b.u64(0)
        b.u64(2)
        for _ in 0..<2 {
            b.string("k")
            b.u32(4)
            b.u32(1)
        }
        expectError(b.bytes, { $0 == .duplicateKey }, subject: "k")
        // Nesting deeper than the limit.
        var deep = GGUFBuilder()
        deep.bytes += Array("GGUF".utf8)
        deep.u32(3)
        deep.u64(0)
        deep.u64(1)
        deep.string("deep")
        deep.u32(9)
        for _ in 0..<20 {
            deep.u32(9)
            deep.u64(1)
        }
        deep.u32(4)
        deep.u64(0)
        deep.bytes += [UInt8](repeating: 0, count: 64)
        expectError(deep.bytes, { if case .nestingTooDeep = $0 { return true } else { return false } }, subject: "deep")
        // A bool that is neither 0 nor 1.
        var flag = GGUFBuilder()
        flag.bytes += Array("GGUF".utf8)
        flag.u32(3)
        flag.u64(0)
        flag.u64(1)
        flag.string("flag")
        flag.u32(7)
        flag.u8(2)
        expectError(flag.bytes, { if case .wrongValueType = $0 { return true } else { return false } }, subject: "flag")
        // A bad alignment value.
        let (aligned, _) = GGUFBuilder.valid(alignment: 64)
        let alignAt = Self.after("general.alignment", in: aligned) + 4
        expectError(
            Self.patch(aligned, at: alignAt, u32: 48), { $0 == .badAlignment(48) }, subject: "general.alignment")
        expectError(Self.patch(aligned, at: alignAt, u32: 0), { $0 == .badAlignment(0) }, subject: "general.alignment")
    }

    @Test func badTensors() {
        let valid = GGUFBuilder.valid().bytes
        let aDims = Self.after("a.weight", in: valid)  // n_dims, then dims
        expectError(Self.patch(valid, at: aDims, u32: 9), { $0 == .tooManyDimensions(9) }, subject: "a.weight")
        expectError(Self.patch(valid, at: aDims + 4, u64: 0), { $0 == .badDimension(0) }, subject: "a.weight")
        expectError(
            Self.patch(valid, at: aDims + 4, u64: 1 << 40), { $0 == .badDimension(1 << 40) }, subject: "a.weight")
        // dims that multiply past Int64: three dimensions of 2^31 − 1 is not allowed past 2^60.
        var overflow = Self.patch(valid, at: aDims, u32: 4)
        overflow = Self.patch(overflow, at: aDims + 4, u64: UInt64(Int32.max))
        overflow = Self.patch(overflow, at: aDims + 12, u64: UInt64(Int32.max))
        // (the extra two dimensions read the type and offset as dimensions; the error comes first either way)
        expectError(
            overflow,
            {
                if case .elementCountOverflow = $0 { return true }; if case .badDimension = $0 { return true };
                return false
            }, subject: "a.weight")
        let aType = aDims + 4 + 16
        expectError(Self.patch(valid, at: aType, u32: 23), { $0 == .unknownTensorType(23) }, subject: "a.weight")
        let bDims = Self.after("b.weight", in: valid)
        expectError(
            Self.patch(valid, at: bDims + 4, u64: 20), { $0 == .notWholeBlocks(elements: 20, blockSize: 32) },
            subject: "b.weight")
        let bOffset = bDims + 4 + 8 + 4
        expectError(
            Self.patch(valid, at: bOffset, u64: 33), { $0 == .misaligned(offset: 33, alignment: 32) },
            subject: "b.weight")
        expectError(
            Self.patch(valid, at: bOffset, u64: 1 << 20),
            { if case .outsideFile = $0 { return true } else { return false } }, subject: "b.weight")
        expectError(
            Self.patch(valid, at: bOffset, u64: UInt64.max - 31),
            { if case .outsideFile = $0 { return true } else { return false } }, subject: "b.weight")
        // Truncated data section.
        expectError(
            Array(valid.prefix(valid.count - 40)), { if case .outsideFile = $0 { return true } else { return false } },
            subject: "b.weight")
        // A duplicate tensor name.
        var duplicate = valid
        let bName = Self.after("b.weight", in: valid) - "b.weight".utf8.count
        duplicate[bName] = UInt8(ascii: "a")
        expectError(duplicate, { $0 == .duplicateTensor }, subject: "a.weight")
    }

    /// Thousands of randomly mutated copies of a valid file: each parses or throws a GGUFError; none crashes, and
    /// every tensor a parsed file reports lies inside the file.
    @Test func randomMutationsNeverCrash() throws {
        let (valid, _) = GGUFBuilder.valid(alignment: 32)
        var random = MutationRandom(state: 0x1234_5678)
        func next() -> UInt64 { random.next() }
        var parsed = 0
        var rejected = 0
        for round in 0..<5000 {
            var bytes = valid
            let edits = 1 + Int(next() % 4)
            for _ in 0..<edits {
                let position = Int(next() % UInt64(bytes.count))
                switch next() % 4 {
                case 0: bytes[position] = UInt8(truncatingIfNeeded: next())
                case 1: bytes[position] ^= UInt8(1 << (next() % 8))
                case 2: bytes[position] = [0x00, 0xFF, 0x7F, 0x80][Int(next() % 4)]
                default: bytes = Array(bytes.prefix(position))
                }
                if bytes.isEmpty { break }
            }
            do {
                let file = try open(bytes)
                parsed += 1
                for tensor in file.tensors {
                    #expect(file.dataOffset + tensor.offset + tensor.byteCount <= bytes.count, "round \(round)")
                    _ = file.data(of: tensor)
                }
            } catch is GGUFError {
                rejected += 1
            }
        }
        #expect(parsed + rejected == 5000)
        #expect(rejected > 1000)
    }

    @Test func deferredValuesAreCheckedButNotDecoded() throws {
        let (valid, _) = GGUFBuilder.valid(alignment: 32)
        let deferring = { (key: String) in key.hasPrefix("tokenizer.") || key == "test.nested" }
        let whole = try open(valid)
        let file = try GGUFFile(file: MappedFile(copying: valid, name: "crafted.gguf"), deferring: deferring)
        #expect(file.deferredKeys == ["tokenizer.ggml.tokens", "test.nested"])
        #expect(file["tokenizer.ggml.tokens"] == nil && file["test.nested"] == nil)
        #expect(file["llama.block_count"] == whole["llama.block_count"])
        #expect(Set(file.allKeys) == Set(whole.allKeys))
        // The raw bytes: the type (9, an array), the element type (8, strings), the count, then the strings.
        var expected = GGUFBuilder()
        expected.u32(9)
        expected.u32(8)
        expected.u64(3)
        for token in ["a", "b", "ab"] { expected.string(token) }
        #expect(file.rawValue(of: "tokenizer.ggml.tokens").map(Array.init) == expected.bytes)
        for key in whole.allKeys {
            #expect(file.rawValue(of: key).map(Array.init) == whole.rawValue(of: key).map(Array.init))
        }
        #expect(file.rawValue(of: "no.such.key") == nil)
        #expect(file.tensors.map(\.name) == whole.tensors.map(\.name) && file.dataOffset == whole.dataOffset)

        // Over random mutations, deferring every key accepts and rejects what decoding does, but for text that is
        // not UTF-8 (never decoded), and keeps the same raw bytes.
        var random = MutationRandom(state: 0x5eed)
        var compared = 0
        for round in 0..<3000 {
            var bytes = valid
            for _ in 0..<(1 + Int(random.next() % 3)) {
                let position = Int(random.next() % UInt64(bytes.count))
                if random.next() % 8 == 0 {
                    bytes = Array(bytes.prefix(position))
                } else {
                    bytes[position] = UInt8(truncatingIfNeeded: random.next())
                }
                if bytes.isEmpty { break }
            }
            let decoded = Result { try open(bytes) }
            let skipped = Result {
                try GGUFFile(file: MappedFile(copying: bytes, name: "crafted.gguf"), deferring: { _ in true })
            }
            switch (decoded, skipped) {
            case (.success(let a), .success(let b)):
                compared += 1
                #expect(Set(b.metadata.map(\.key)).isSubset(of: ["general.alignment"]), "round \(round)")
                #expect(Set(b.deferredKeys + b.metadata.map(\.key)) == Set(a.allKeys), "round \(round)")
                for key in a.allKeys {
                    #expect(
                        a.rawValue(of: key).map(Array.init) == b.rawValue(of: key).map(Array.init), "round \(round)")
                }
            case (.failure(let error as GGUFError), .success):
                #expect(error.kind == .invalidUTF8, "round \(round): only text is left unchecked; \(error)")
            case (.failure(let a as GGUFError), .failure(let b as GGUFError)):
                if a.kind != .invalidUTF8 { #expect(a.kind == b.kind && a.offset == b.offset, "round \(round)") }
            case (.success, .failure(let error)):
                Issue.record("round \(round): deferring rejected a file decoding accepts: \(error)")
            default:
                Issue.record("round \(round): an error that is not a GGUFError")
            }
        }
        #expect(compared > 300)
    }

    @Test func tokenizerEntriesAreComparedAsBytes() throws {
        let (valid, _) = GGUFBuilder.valid(alignment: 32)
        let tokenizer = { (key: String) in key.hasPrefix("tokenizer.ggml.") }
        let a = try open(valid)
        let b = try GGUFFile(file: MappedFile(copying: valid, name: "other.gguf"), deferring: tokenizer)
        #expect(LoadedModel.sameRawValues(a, b, keys: tokenizer))
        // One byte of one token changed ("ab" → "ac"): not the same tokenizer.
        var changed = valid
        let token = try #require(changed.indices.first { changed[$0] == 0x61 && changed[$0 + 1] == 0x62 })
        changed[token + 1] = 0x63
        let c = try GGUFFile(file: MappedFile(copying: changed, name: "changed.gguf"), deferring: tokenizer)
        #expect(!LoadedModel.sameRawValues(a, c, keys: tokenizer))
        // No entry to compare is not a match either.
        #expect(!LoadedModel.sameRawValues(a, b, keys: { $0.hasPrefix("no.such.") }))
        #expect(LoadedModel.sameRawValues(a, b, keys: { $0 == "test.nested" }))
    }

    @Test func missingFilesAreClearErrors() {
        #expect(throws: MappedFile.OpenError.self) { try GGUFFile(path: "/nonexistent/model.gguf") }
        #expect(throws: MappedFile.OpenError.self) { try GGUFFile(path: "/tmp") }
    }
}
