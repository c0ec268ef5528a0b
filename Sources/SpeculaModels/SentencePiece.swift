#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The SentencePiece-style BPE of `tokenizer.ggml.model = llama` vocabularies (Gemma 3): spaces become `▁`, the
/// text is split into UTF-8 characters, adjacent pairs whose concatenation is a token merge highest score first
/// (leftmost among equals), and a piece that is not a token falls back to its bytes as `<0xXX>` tokens.
struct SentencePiece: Sendable {
    let scores: [Float]
    /// Token id of each `<0xXX>` byte token.
    let byteTokens: [Int32]
    let unknown: Int
    /// Token lookup by the bytes of a piece, without building a String: an open-addressing table from the FNV-1a
    /// hash of a token's bytes to its id (−1 marks an empty slot), checked against the token's bytes.
    let slots: [Int32]
    let slotHashes: [UInt64]
    let slotMask: Int
    /// All token texts back to back, and where each starts (`offsets[id]..<offsets[id + 1]`).
    let tokenText: [UInt8]
    let offsets: [Int]

    init(tokens: [String], scores: [Float], types: [TokenType], unknown: Int?, path: String) throws {
        if scores.count != tokens.count {
            throw TokenizerError.invalid(
                path: path, reason: "tokenizer.ggml.scores has \(scores.count) entries for \(tokens.count) tokens")
        }
        var byteTokens = [Int32](repeating: -1, count: 256)
        for (id, text) in tokens.enumerated() where types[id] == .byte {
            // "<0xAB>"
            let hex = text.dropFirst(3).dropLast()
            if text.hasPrefix("<0x"), text.hasSuffix(">"), let byte = UInt8(hex, radix: 16) {
                byteTokens[Int(byte)] = Int32(id)
            }
        }
        self.scores = scores
        self.byteTokens = byteTokens
        self.unknown = unknown ?? 0
        var tokenText: [UInt8] = []
        var offsets = [0]
        for token in tokens {
            tokenText += token.utf8
            offsets.append(tokenText.count)
        }
        var capacity = 1
        while capacity < 2 * tokens.count { capacity <<= 1 }
        var slots = [Int32](repeating: -1, count: capacity)
        var slotHashes = [UInt64](repeating: 0, count: capacity)
        tokenText.withUnsafeBufferPointer { text in
            for id in tokens.indices {
                let bytes = UnsafeBufferPointer(rebasing: text[offsets[id]..<offsets[id + 1]])
                let key = Self.hash(bytes)
                var slot = Int(truncatingIfNeeded: key) & (capacity - 1)
                var duplicate = false
                while slots[slot] >= 0 {
                    let other = Int(slots[slot])
                    if slotHashes[slot] == key && text[offsets[other]..<offsets[other + 1]].elementsEqual(bytes) {
                        duplicate = true  // the first token with a text wins, as in the string index
                        break
                    }
                    slot = (slot + 1) & (capacity - 1)
                }
                if !duplicate {
                    slots[slot] = Int32(id)
                    slotHashes[slot] = key
                }
            }
        }
        self.slots = slots
        self.slotHashes = slotHashes
        slotMask = capacity - 1
        self.tokenText = tokenText
        self.offsets = offsets
    }

    static func hash(_ bytes: UnsafeBufferPointer<UInt8>) -> UInt64 {
        var h: UInt64 = 0xCBF2_9CE4_8422_2325
        for byte in bytes { h = (h ^ UInt64(byte)) &* 0x100_0000_01B3 }
        return h
    }

    /// The id of the token whose text is exactly these bytes.
    func token(_ bytes: UnsafeBufferPointer<UInt8>) -> Int32? {
        let key = Self.hash(bytes)
        var slot = Int(truncatingIfNeeded: key) & slotMask
        return tokenText.withUnsafeBufferPointer { text in
            guard let textBase = text.baseAddress, let queryBase = bytes.baseAddress else { return nil }
            while true {
                let id = slots[slot]
                if id < 0 { return nil }
                if slotHashes[slot] == key {
                    let start = offsets[Int(id)]
                    let end = offsets[Int(id) + 1]
                    if end - start == bytes.count && memcmp(textBase + start, queryBase, bytes.count) == 0 { return id }
                }
                slot = (slot + 1) & slotMask
            }
        }
    }

    struct Symbol {
        var start: Int
        var length: Int
        var previous: Int
        var next: Int
    }

    struct Bigram: Comparable {
        var score: Float
        var left: Int32
        var right: Int32
        var length: Int32
        // Max-heap order: higher score first, then smaller left index.
        static func < (a: Bigram, b: Bigram) -> Bool {
            a.score < b.score || (a.score == b.score && a.left > b.left)
        }
    }

    /// Encodes already-escaped text (spaces replaced by `▁`).
    ///
    /// A merge only ever joins two symbols whose concatenation is a token, so every final symbol is a token or a
    /// single character that is not; the latter falls back to byte tokens. (llama.cpp keeps a reverse-merge map
    /// for resegmenting, which this invariant makes unnecessary.)
    /// - Complexity: O(n log n) in the fragment length.
    func encode(_ text: [UInt8], into output: inout [Int]) {
        var symbols: [Symbol] = []
        symbols.reserveCapacity(text.count)
        var offset = 0
        while offset < text.count {
            let length = min(Self.utf8Length(text[offset]), text.count - offset)
            symbols.append(Symbol(start: offset, length: length, previous: symbols.count - 1, next: symbols.count + 1))
            offset += length
        }
        if symbols.isEmpty { return }
        symbols[symbols.count - 1].next = -1
        var heap = BinaryHeap<Bigram>()
        text.withUnsafeBufferPointer { bytes in
            func tryAdd(_ left: Int, _ right: Int) {
                if left < 0 || right < 0 { return }
                let start = symbols[left].start
                let length = symbols[left].length + symbols[right].length
                guard let id = token(UnsafeBufferPointer(rebasing: bytes[start..<(start + length)])) else { return }
                heap.push(Bigram(score: scores[Int(id)], left: Int32(left), right: Int32(right), length: Int32(length)))
            }
            for index in 1..<symbols.count { tryAdd(index - 1, index) }
            while let bigram = heap.pop() {
                let leftIndex = Int(bigram.left)
                let left = symbols[leftIndex]
                let right = symbols[Int(bigram.right)]
                // Skip entries made stale by an earlier merge.
                if left.length == 0 || right.length == 0 || left.length + right.length != Int(bigram.length) {
                    continue
                }
                symbols[leftIndex].length += right.length
                symbols[Int(bigram.right)].length = 0
                symbols[leftIndex].next = right.next
                if right.next >= 0 { symbols[right.next].previous = leftIndex }
                tryAdd(symbols[leftIndex].previous, leftIndex)
                tryAdd(leftIndex, symbols[leftIndex].next)
            }
            var index = 0
            while index >= 0 {
                let symbol = symbols[index]
                let piece = UnsafeBufferPointer(rebasing: bytes[symbol.start..<(symbol.start + symbol.length)])
                if let id = token(piece) {
                    output.append(Int(id))
                } else {
                    for byte in piece {
                        let id = byteTokens[Int(byte)]
                        output.append(id >= 0 ? Int(id) : unknown)
                    }
                }
                index = symbol.next
            }
        }
    }

    /// The length of the UTF-8 sequence a lead byte announces, from its high nibble alone (no validation, as
    /// llama.cpp splits SentencePiece input): 0x0–0xB → 1, 0xC–0xD → 2, 0xE → 3, 0xF → 4.
    static func utf8Length(_ lead: UInt8) -> Int {
        switch lead >> 4 {
        case 0xC, 0xD: return 2
        case 0xE: return 3
        case 0xF: return 4
        default: return 1
        }
    }
}

/// A binary max-heap.
struct BinaryHeap<Element: Comparable> {
    private var storage: [Element] = []

    mutating func push(_ element: Element) {
        storage.append(element)
        var child = storage.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            if !(storage[parent] < storage[child]) { break }
            storage.swapAt(parent, child)
            child = parent
        }
    }

    mutating func pop() -> Element? {
        guard let top = storage.first else { return nil }
        let last = storage.removeLast()
        if !storage.isEmpty {
            storage[0] = last
            var parent = 0
            while true {
                let left = 2 * parent + 1
                let right = left + 1
                var largest = parent
                if left < storage.count && storage[largest] < storage[left] { largest = left }
                if right < storage.count && storage[largest] < storage[right] { largest = right }
                if largest == parent { break }
                storage.swapAt(parent, largest)
                parent = largest
            }
        }
        return top
    }
}
