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

    init(tokens: [String], tokenIndex: [String: Int32], merges mergeStrings: [String], path: String) throws {
        // Some vocabularies (SmolLM2) lack tokens for a few control bytes; such a byte is dropped, as llama.cpp
        // drops it. (Encoding it as the unknown token would put SmolLM2's id 0, `<|endoftext|>`, into plain text.)
        var byteTokens = [Int32](repeating: -1, count: 256)
        for byte in 0..<256 {
            byteTokens[byte] = tokenIndex[String(Character(Self.byteCharacters[byte]))] ?? -1
        }
        if byteTokens.filter({ $0 >= 0 }).count < 128 {
            throw TokenizerError.invalid(path: path, reason: "byte-level BPE vocabulary lacks most single-byte tokens")
        }
        var merges: [UInt64: (rank: Int32, merged: Int32)] = [:]
        merges.reserveCapacity(mergeStrings.count)
        for (rank, merge) in mergeStrings.enumerated() {
            guard let space = merge.firstIndex(of: " ") else {
                throw TokenizerError.invalid(path: path, reason: "merge \(rank) '\(merge)' has no space")
            }
            let left = merge[..<space]
            let right = merge[merge.index(after: space)...]
            guard let leftId = tokenIndex[String(left)], let rightId = tokenIndex[String(right)],
                let mergedId = tokenIndex[String(left) + String(right)]
            else {
                // A merge whose parts or result are not tokens can never apply; skip it as llama.cpp does.
                continue
            }
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
