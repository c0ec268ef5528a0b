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

    /// A direct-mapped memo of lookups of short pieces (≤ 7 bytes, packed exactly into the key with their length,
    /// so a hit is never a collision): natural text asks for the same bigrams again and again, and the 262,144-token
    /// table does not fit in cache. One memo serves one `encode` call.
    struct LookupMemo {
        static let size = 1 << 14
        let keys: UnsafeMutablePointer<UInt64>
        let ids: UnsafeMutablePointer<Int32>

        /// Runs `body` with a fresh memo whose storage lives for the call.
        static func with<R>(_ body: (LookupMemo) -> R) -> R {
            withUnsafeTemporaryAllocation(of: UInt64.self, capacity: size) { keys in
                withUnsafeTemporaryAllocation(of: Int32.self, capacity: size) { ids in
                    guard let k = keys.baseAddress, let i = ids.baseAddress else { preconditionFailure("no storage") }
                    k.initialize(repeating: UInt64.max, count: size)
                    return body(LookupMemo(keys: k, ids: i))
                }
            }
        }

        @inline(__always)
        func token(_ bytes: UnsafeBufferPointer<UInt8>, _ model: SentencePiece) -> Int32? {
            let count = bytes.count
            if count > 7 { return model.token(bytes) }
            var key = UInt64(count) << 56
            for k in 0..<count { key |= UInt64(bytes[k]) << UInt64(8 * k) }
            let slot = Int(truncatingIfNeeded: (key &* 0x9E37_79B9_7F4A_7C15) >> 50)
            if keys[slot] == key {
                let id = ids[slot]
                return id >= 0 ? id : nil
            }
            let found = model.token(bytes)
            keys[slot] = key
            ids[slot] = found ?? -1
            return found
        }
    }

    /// Encodes already-escaped text (spaces replaced by `▁`).
    ///
    /// A merge only ever joins two symbols whose concatenation is a token, so every final symbol is a token or a
    /// single character that is not; the latter falls back to byte tokens. (llama.cpp keeps a reverse-merge map
    /// for resegmenting, which this invariant makes unnecessary.)
    /// - Complexity: O(n log n) in the fragment length.
    func encode(_ text: [UInt8], memo: LookupMemo, into output: inout [Int]) {
        if text.isEmpty { return }
        text.withUnsafeBufferPointer { bytes in
            withUnsafeTemporaryAllocation(of: Int32.self, capacity: 4 * bytes.count) { symbolStorage in
                // At most one bigram per adjacent pair initially and two per merge: 3n entries.
                withUnsafeTemporaryAllocation(of: UInt64.self, capacity: 6 * bytes.count + 2) { heapStorage in
                    var merger = Merger(
                        model: self, bytes: bytes, symbols: symbolStorage, heap: heapStorage,
                        capacity: 3 * bytes.count + 1, memo: memo)
                    merger.run(into: &output)
                }
            }
        }
    }

    /// The merge loop over flat buffers: symbols as (start, length, previous, next) and a binary max-heap of
    /// bigrams keyed by (score, then smaller left index) in one 64-bit word, with (right, length) beside it.
    struct Merger {
        let model: SentencePiece
        let bytes: UnsafeBufferPointer<UInt8>
        let start: UnsafeMutablePointer<Int32>
        let length: UnsafeMutablePointer<Int32>
        let previous: UnsafeMutablePointer<Int32>
        let next: UnsafeMutablePointer<Int32>
        let keys: UnsafeMutablePointer<UInt64>
        let payloads: UnsafeMutablePointer<UInt64>
        let capacity: Int
        let memo: LookupMemo
        var heapCount = 0
        var symbolCount = 0

        init(
            model: SentencePiece, bytes: UnsafeBufferPointer<UInt8>, symbols: UnsafeMutableBufferPointer<Int32>,
            heap: UnsafeMutableBufferPointer<UInt64>, capacity: Int, memo: LookupMemo
        ) {
            self.model = model
            self.memo = memo
            self.bytes = bytes
            let n = bytes.count
            // Temporary allocations of a positive capacity always have a base address.
            let s = symbols.baseAddress ?? UnsafeMutablePointer<Int32>.allocate(capacity: 4 * n)
            start = s
            length = s + n
            previous = s + 2 * n
            next = s + 3 * n
            let h = heap.baseAddress ?? UnsafeMutablePointer<UInt64>.allocate(capacity: 2 * capacity)
            keys = h
            payloads = h + capacity
            self.capacity = capacity
        }

        @inline(__always)
        static func orderedBits(_ score: Float) -> UInt64 {
            let bits = score.bitPattern
            return UInt64(bits & 0x8000_0000 != 0 ? ~bits : bits | 0x8000_0000)
        }

        mutating func push(key: UInt64, payload: UInt64) {
            precondition(heapCount < capacity, "bigram heap overflow")
            var child = heapCount
            heapCount += 1
            while child > 0 {
                let parent = (child - 1) / 2
                if keys[parent] >= key { break }
                keys[child] = keys[parent]
                payloads[child] = payloads[parent]
                child = parent
            }
            keys[child] = key
            payloads[child] = payload
        }

        mutating func pop() -> (key: UInt64, payload: UInt64)? {
            if heapCount == 0 { return nil }
            let top = (keys[0], payloads[0])
            heapCount -= 1
            let lastKey = keys[heapCount]
            let lastPayload = payloads[heapCount]
            var parent = 0
            while true {
                var child = 2 * parent + 1
                if child >= heapCount { break }
                if child + 1 < heapCount && keys[child + 1] > keys[child] { child += 1 }
                if keys[child] <= lastKey { break }
                keys[parent] = keys[child]
                payloads[parent] = payloads[child]
                parent = child
            }
            keys[parent] = lastKey
            payloads[parent] = lastPayload
            return top
        }

        mutating func tryAdd(_ left: Int32, _ right: Int32) {
            if left < 0 || right < 0 { return }
            let from = Int(start[Int(left)])
            let size = Int(length[Int(left)] + length[Int(right)])
            guard let id = memo.token(UnsafeBufferPointer(rebasing: bytes[from..<(from + size)]), model) else {
                return
            }
            let key = Self.orderedBits(model.scores[Int(id)]) << 32 | UInt64(UInt32.max - UInt32(left))
            push(key: key, payload: UInt64(UInt32(right)) << 32 | UInt64(size))
        }

        mutating func run(into output: inout [Int]) {
            var offset = 0
            while offset < bytes.count {
                let size = min(SentencePiece.utf8Length(bytes[offset]), bytes.count - offset)
                start[symbolCount] = Int32(offset)
                length[symbolCount] = Int32(size)
                previous[symbolCount] = Int32(symbolCount - 1)
                next[symbolCount] = Int32(symbolCount + 1)
                symbolCount += 1
                offset += size
            }
            next[symbolCount - 1] = -1
            for index in 1..<max(symbolCount, 1) { tryAdd(Int32(index - 1), Int32(index)) }
            while let (key, payload) = pop() {
                let left = Int(UInt32.max - UInt32(truncatingIfNeeded: key))
                let right = Int(payload >> 32)
                let size = Int32(truncatingIfNeeded: payload & 0xFFFF_FFFF)
                // Skip entries made stale by an earlier merge.
                if length[left] == 0 || length[right] == 0 || length[left] + length[right] != size { continue }
                length[left] += length[right]
                length[right] = 0
                next[left] = next[right]
                if next[right] >= 0 { previous[Int(next[right])] = Int32(left) }
                tryAdd(previous[left], Int32(left))
                tryAdd(Int32(left), next[left])
            }
            var index = 0
            while index >= 0 {
                let from = Int(start[index])
                let piece = UnsafeBufferPointer(rebasing: bytes[from..<(from + Int(length[index]))])
                if let id = memo.token(piece, model) {
                    output.append(Int(id))
                } else {
                    for byte in piece {
                        let id = model.byteTokens[Int(byte)]
                        output.append(id >= 0 ? Int(id) : model.unknown)
                    }
                }
                index = Int(next[index])
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
