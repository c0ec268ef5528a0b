/// Byte-level BPE (GPT-2 style, `tokenizer.ggml.model = gpt2`): each byte of a pre-tokenized piece maps to a
/// printable character (GPT-2's byte-to-unicode table), and merges from `tokenizer.ggml.merges` apply lowest rank
/// first, leftmost among equals.
struct BytePairEncoding: Sendable {
    /// Token id of each byte's single-character token.
    let byteTokens: [Int32]
    /// (left id << 32 | right id) → (rank, merged id).
    let merges: [UInt64: (rank: Int32, merged: Int32)]

    /// GPT-2's map from bytes to printable characters: printable Latin-1 bytes map to themselves, the others to
    /// U+0100 onwards in byte order.
    static let byteCharacters: [Unicode.Scalar] = {
        var table = [Unicode.Scalar](repeating: " ", count: 256)
        var next: UInt32 = 256
        for byte in 0..<256 {
            let printable = (0x21...0x7E).contains(byte) || (0xA1...0xAC).contains(byte) || (0xAE...0xFF).contains(byte)
            if printable {
                table[byte] = Unicode.Scalar(UInt8(byte))
            } else {
                table[byte] = Unicode.Scalar(next) ?? " "
                next += 1
            }
        }
        return table
    }()

    /// The inverse map, for decoding: character → byte.
    static let characterBytes: [UInt32: UInt8] = {
        var map: [UInt32: UInt8] = [:]
        for (byte, scalar) in byteCharacters.enumerated() { map[scalar.value] = UInt8(byte) }
        return map
    }()

    init(tokens: [String], merges mergeStrings: [String], path: String) throws {
        // Text → id (the first token with a text wins), by the texts' UTF-8 bytes: the merge table needs three
        // look-ups per merge (150,000 merges for Qwen2.5), and a dictionary keyed by `String` hashed each text's
        // canonical form (most of a load's tokenizer time). In a byte-level vocabulary two texts are canonically
        // equivalent only when their bytes are equal (its characters, U+0021–U+0143, hold no combining marks and
        // none that decomposes into others of them), so comparing bytes finds the same ids.
        let index = TokenTextIndex(tokens)
        // Some vocabularies (SmolLM2) lack tokens for a few control bytes; such a byte is dropped, as llama.cpp
        // drops it. (Encoding it as the unknown token would put SmolLM2's id 0, `<|endoftext|>`, into plain text.)
        var byteTokens = [Int32](repeating: -1, count: 256)
        for byte in 0..<256 {
            var text = String(Character(Self.byteCharacters[byte]))
            byteTokens[byte] = text.withUTF8 { index.id(of: $0[...], $0[$0.count...]) } ?? -1
        }
        if byteTokens.filter({ $0 >= 0 }).count < 128 {
            throw TokenizerError.invalid(path: path, reason: "byte-level BPE vocabulary lacks most single-byte tokens")
        }
        var merges: [UInt64: (rank: Int32, merged: Int32)] = [:]
        merges.reserveCapacity(mergeStrings.count)
        for (rank, merge) in mergeStrings.enumerated() {
            var text = merge
            let ids: (Int32, Int32, Int32)?? = text.withUTF8 { bytes in
                guard let space = bytes.firstIndex(of: 0x20) else { return .none }
                let left = bytes[..<space]
                let right = bytes[(space + 1)...]
                guard let leftId = index.id(of: left, right[right.endIndex...]),
                    let rightId = index.id(of: right, right[right.endIndex...]),
                    let mergedId = index.id(of: left, right)
                else { return .some(nil) }
                return .some((leftId, rightId, mergedId))
            }
            guard let found = ids else {
                throw TokenizerError.invalid(path: path, reason: "merge \(rank) '\(merge)' has no space")
            }
            // A merge whose parts or result are not tokens can never apply; skip it as llama.cpp does.
            guard let (leftId, rightId, mergedId) = found else { continue }
            let key = UInt64(UInt32(bitPattern: leftId)) << 32 | UInt64(UInt32(bitPattern: rightId))
            if merges[key] == nil { merges[key] = (Int32(rank), mergedId) }
        }
        self.byteTokens = byteTokens
        self.merges = merges
    }

    /// Encodes one pre-tokenized piece (its UTF-8 bytes) into `output`.
    /// - Complexity: O(n²) in the piece length with a small constant; pieces are words.
    func encode(_ bytes: UnsafeBufferPointer<UInt8>, into output: inout [Int]) {
        var symbols = bytes.map { byteTokens[Int($0)] }
        while symbols.count > 1 {
            var bestRank = Int32.max
            var bestIndex = -1
            var bestMerged: Int32 = 0
            for index in 0..<(symbols.count - 1) where symbols[index] >= 0 && symbols[index + 1] >= 0 {
                let key =
                    UInt64(UInt32(bitPattern: symbols[index])) << 32 | UInt64(UInt32(bitPattern: symbols[index + 1]))
                if let merge = merges[key], merge.rank < bestRank {
                    bestRank = merge.rank
                    bestIndex = index
                    bestMerged = merge.merged
                }
            }
            if bestIndex < 0 { break }
            // Merge every non-overlapping occurrence of the best pair, left to right (they share the rank).
            let left = symbols[bestIndex]
            let right = symbols[bestIndex + 1]
            var merged: [Int32] = []
            merged.reserveCapacity(symbols.count)
            var index = 0
            while index < symbols.count {
                if index + 1 < symbols.count && symbols[index] == left && symbols[index + 1] == right {
                    merged.append(bestMerged)
                    index += 2
                } else {
                    merged.append(symbols[index])
                    index += 1
                }
            }
            symbols = merged
        }
        for symbol in symbols {
            if symbol >= 0 { output.append(Int(symbol)) }
        }
    }
}

/// Token ids by the UTF-8 bytes of their texts: an open-addressing table (FNV-1a hashes, linear probing) over one
/// buffer holding every text's bytes. The first token with a text wins.
struct TokenTextIndex {
    /// Every token's UTF-8 bytes, one after another; token i's are `bytes[starts[i]..<starts[i + 1]]`.
    private var bytes: [UInt8] = []
    private var starts: [Int] = [0]
    /// Token id per slot, −1 for an empty slot; the count is a power of two at least twice the tokens'.
    private var slots: [Int32]

    init(_ tokens: [String]) {
        var size = 1
        while size < 2 * max(tokens.count, 1) { size <<= 1 }
        slots = [Int32](repeating: -1, count: size)
        bytes.reserveCapacity(tokens.count * 8)
        starts.reserveCapacity(tokens.count + 1)
        for token in tokens {
            var text = token
            text.withUTF8 { bytes.append(contentsOf: $0) }
            starts.append(bytes.count)
        }
        for id in tokens.indices {
            let (hash, found) = bytes.withUnsafeBufferPointer { all in
                let own = all[starts[id]..<starts[id + 1]]
                return (Self.hash(own, all[0..<0]), lookUp(own, all[0..<0], in: all))
            }
            if found != nil { continue }
            var slot = hash & (slots.count - 1)
            while slots[slot] >= 0 { slot = (slot + 1) & (slots.count - 1) }
            slots[slot] = Int32(id)
        }
    }

    /// The id of the token whose text is the bytes of `first` followed by those of `second` (nil if none).
    func id(of first: Slice<UnsafeBufferPointer<UInt8>>, _ second: Slice<UnsafeBufferPointer<UInt8>>) -> Int32? {
        bytes.withUnsafeBufferPointer { lookUp(first, second, in: $0) }
    }

    private func lookUp(
        _ first: Slice<UnsafeBufferPointer<UInt8>>, _ second: Slice<UnsafeBufferPointer<UInt8>>,
        in all: UnsafeBufferPointer<UInt8>
    ) -> Int32? {
        var slot = Self.hash(first, second) & (slots.count - 1)
        let length = first.count + second.count
        while slots[slot] >= 0 {
            let id = Int(slots[slot])
            let start = starts[id]
            if starts[id + 1] - start == length
                && zip(first, all[start..<(start + first.count)]).allSatisfy({ $0 == $1 })
                && zip(second, all[(start + first.count)..<(start + length)]).allSatisfy({ $0 == $1 })
            {
                return Int32(id)
            }
            slot = (slot + 1) & (slots.count - 1)
        }
        return nil
    }

    private static func hash(
        _ first: Slice<UnsafeBufferPointer<UInt8>>, _ second: Slice<UnsafeBufferPointer<UInt8>>
    ) -> Int {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in first { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
        for byte in second { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
        return Int(truncatingIfNeeded: hash ^ (hash >> 29))
    }
}
