/// The SentencePiece-style BPE of `tokenizer.ggml.model = llama` vocabularies (Gemma 3): spaces become `▁`, the
/// text is split into UTF-8 characters, adjacent pairs whose concatenation is a token merge highest score first
/// (leftmost among equals), and a piece that is not a token falls back to its bytes as `<0xXX>` tokens.
struct SentencePiece: Sendable {
    let scores: [Float]
    /// Token id of each `<0xXX>` byte token.
    let byteTokens: [Int32]
    let unknown: Int

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
    }

    struct Symbol {
        var start: Int
        var length: Int
        var previous: Int
        var next: Int
    }

    struct Bigram: Comparable {
        var score: Float
        var left: Int
        var right: Int
        var length: Int
        // Max-heap order: higher score first, then smaller left index.
        static func < (a: Bigram, b: Bigram) -> Bool {
            a.score < b.score || (a.score == b.score && a.left > b.left)
        }
    }

    /// Encodes already-escaped text (spaces replaced by `▁`).
    func encode(_ text: [UInt8], tokenIndex: [String: Int32], into output: inout [Int]) {
        var symbols: [Symbol] = []
        var offset = 0
        while offset < text.count {
            let length = min(Self.utf8Length(text[offset]), text.count - offset)
            symbols.append(Symbol(start: offset, length: length, previous: symbols.count - 1, next: symbols.count + 1))
            offset += length
        }
        if symbols.isEmpty { return }
        symbols[symbols.count - 1].next = -1
        var heap = BinaryHeap<Bigram>()
        var reverseMerges: [String: (Int, Int)] = [:]
        func tryAdd(_ left: Int, _ right: Int) {
            if left < 0 || right < 0 { return }
            // Invalid UTF-8 is never a token.
            guard let joined = Self.piece(text, symbols[left].start, symbols[left].length + symbols[right].length),
                let id = tokenIndex[joined]
            else { return }
            heap.push(Bigram(score: scores[Int(id)], left: left, right: right, length: joined.utf8.count))
            reverseMerges[joined] = (left, right)
        }
        for index in 1..<symbols.count { tryAdd(index - 1, index) }
        while let bigram = heap.pop() {
            let left = symbols[bigram.left]
            let right = symbols[bigram.right]
            // Skip entries made stale by an earlier merge.
            if left.length == 0 || right.length == 0 || left.length + right.length != bigram.length { continue }
            symbols[bigram.left].length += right.length
            symbols[bigram.right].length = 0
            symbols[bigram.left].next = right.next
            if right.next >= 0 { symbols[right.next].previous = bigram.left }
            tryAdd(symbols[bigram.left].previous, bigram.left)
            tryAdd(bigram.left, symbols[bigram.left].next)
        }
        var index = 0
        while index >= 0 {
            let symbol = symbols[index]
            resegment(symbol.start, symbol.length, text: text, symbols: symbols, reverseMerges: reverseMerges,
                      tokenIndex: tokenIndex, into: &output)
            index = symbol.next
        }
    }

    private func resegment(
        _ start: Int, _ length: Int, text: [UInt8], symbols: [Symbol], reverseMerges: [String: (Int, Int)],
        tokenIndex: [String: Int32], into output: inout [Int]
    ) {
        let piece = Self.piece(text, start, length)
        if let piece, let id = tokenIndex[piece] {
            output.append(Int(id))
            return
        }
        if let piece, let (left, right) = reverseMerges[piece], symbols[left].start == start,
            symbols[right].start > start, symbols[right].start < start + length
        {
            let leftStart = start
            let split = symbols[right].start
            resegment(leftStart, split - leftStart, text: text, symbols: symbols, reverseMerges: reverseMerges,
                      tokenIndex: tokenIndex, into: &output)
            resegment(split, start + length - split, text: text, symbols: symbols, reverseMerges: reverseMerges,
                      tokenIndex: tokenIndex, into: &output)
            return
        }
        for byte in text[start..<(start + length)] {
            let id = byteTokens[Int(byte)]
            output.append(id >= 0 ? Int(id) : unknown)
        }
    }

    /// The text of `text[start..<start + length]` if it is valid UTF-8.
    static func piece(_ text: [UInt8], _ start: Int, _ length: Int) -> String? {
        text[start..<(start + length)].withUnsafeBufferPointer { String(validating: $0, as: UTF8.self) }
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
