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
    /// Token lookup by the bytes of a piece, without building a String: an open-addressing table keyed by the FNV-1a
    /// hash of a token's bytes, each slot holding everything a lookup needs in 16 bytes (hash, where the text
    /// starts, id and length), so that a lookup costs one cache miss in the table and one in the text (the table
    /// of a 262,144-token vocabulary is 8 MB: most lookups miss the cache).
    let slots: [Slot]
    let slotMask: Int
    /// Every pair of adjacent characters inside some token's text (as ``bigramKey(_:_:_:)``). Where two adjacent
    /// characters of the input are not such a pair, no token can span them, so no merge ever crosses between them
    /// and the two sides can be encoded apart (see ``encode(_:memo:into:)``).
    let innerBigrams: Set<UInt64>

    struct Slot {
        var hash: UInt64 = 0
        var start: UInt32 = 0
        /// id << 12 | byte length; `UInt32.max` marks an empty slot.
        var tag: UInt32 = .max
        static let lengthBits: UInt32 = 12
    }
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
        if let long = tokens.firstIndex(where: { $0.utf8.count >= 1 << Slot.lengthBits }) {
            throw TokenizerError.invalid(path: path, reason: "token \(long) is longer than 4,095 bytes")
        }
        var slots = [Slot](repeating: Slot(), count: capacity)
        tokenText.withUnsafeBufferPointer { text in
            for id in tokens.indices {
                let bytes = UnsafeBufferPointer(rebasing: text[offsets[id]..<offsets[id + 1]])
                let key = Self.hash(bytes)
                var slot = Int(truncatingIfNeeded: key) & (capacity - 1)
                var duplicate = false
                while slots[slot].tag != .max {
                    let other = Int(slots[slot].tag >> Slot.lengthBits)
                    if slots[slot].hash == key && text[offsets[other]..<offsets[other + 1]].elementsEqual(bytes) {
                        duplicate = true  // the first token with a text wins, as in the string index
                        break
                    }
                    slot = (slot + 1) & (capacity - 1)
                }
                if !duplicate {
                    slots[slot] = Slot(
                        hash: key, start: UInt32(offsets[id]), tag: UInt32(id) << Slot.lengthBits | UInt32(bytes.count))
                }
            }
        }
        self.slots = slots
        slotMask = capacity - 1
        var bigrams = Set<UInt64>()
        tokenText.withUnsafeBufferPointer { text in
            guard let base = text.baseAddress else { return }
            for id in tokens.indices {
                var position = offsets[id]
                let end = offsets[id + 1]
                while position < end {
                    let first = min(Self.utf8Length(base[position]), end - position)
                    let second = position + first
                    if second >= end { break }
                    let size = min(Self.utf8Length(base[second]), end - second)
                    bigrams.insert(Self.bigramKey(base + position, first, size))
                    position = second
                }
            }
        }
        innerBigrams = bigrams
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
        let count = UInt32(truncatingIfNeeded: bytes.count)
        return slots.withUnsafeBufferPointer { table in
            tokenText.withUnsafeBufferPointer { text in
                guard let table = table.baseAddress, let textBase = text.baseAddress, let queryBase = bytes.baseAddress
                else { return nil }
                while true {
                    let entry = table[slot]
                    if entry.tag == .max { return nil }
                    if entry.hash == key && entry.tag & ((1 << Slot.lengthBits) - 1) == count
                        && memcmp(textBase + Int(entry.start), queryBase, bytes.count) == 0
                    {
                        return Int32(entry.tag >> Slot.lengthBits)
                    }
                    slot = (slot + 1) & slotMask
                }
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

    /// Two adjacent characters (`first` bytes at `p`, then `second` bytes) as one key: their bytes and lengths.
    @inline(__always)
    static func bigramKey(_ p: UnsafePointer<UInt8>, _ first: Int, _ second: Int) -> UInt64 {
        var key = UInt64(first) << 60 | UInt64(second) << 56
        for k in 0..<(first + second) { key ^= UInt64(p[k]) << UInt64(8 * k % 56) }
        return key &* 0x9E37_79B9_7F4A_7C15 ^ UInt64(first + second)
    }

    /// Encodes already-escaped text (spaces replaced by `▁`).
    ///
    /// A merge only ever joins two symbols whose concatenation is a token, so every final symbol is a token or a
    /// single character that is not; the latter falls back to byte tokens. (llama.cpp keeps a reverse-merge map
    /// for resegmenting, which this invariant makes unnecessary.)
    ///
    /// The text is first cut between adjacent characters that occur together in no token (for Gemma 3 mostly
    /// before each `▁` that follows a letter, and around newlines): no symbol can ever span such a cut, merges on
    /// either side never interact (each side's merges happen in the same score-then-leftmost order as in the whole
    /// text), so encoding the pieces one by one gives the same tokens — with small heaps that stay in cache.
    /// - Complexity: O(n log n) in the length of the longest piece.
    func encode(_ text: [UInt8], memo: LookupMemo, into output: inout [Int]) {
        if text.isEmpty { return }
        text.withUnsafeBufferPointer { bytes in
            guard let base = bytes.baseAddress else { return }
            var pieceStart = 0
            var position = 0
            let count = bytes.count
            while position < count {
                let first = Self.utf8Length(base[position])
                let second = position + first
                if second >= count { break }
                let size = Self.utf8Length(base[second])
                // Cut only between whole characters (a truncated sequence never), where no token has this pair.
                if second + size <= count && !innerBigrams.contains(Self.bigramKey(base + position, first, size)) {
                    encodePiece(UnsafeBufferPointer(rebasing: bytes[pieceStart..<second]), memo: memo, into: &output)
                    pieceStart = second
                }
                position = second
            }
            encodePiece(UnsafeBufferPointer(rebasing: bytes[pieceStart..<count]), memo: memo, into: &output)
        }
    }

    /// Encodes one piece with the merge loop.
    func encodePiece(_ bytes: UnsafeBufferPointer<UInt8>, memo: LookupMemo, into output: inout [Int]) {
        if bytes.isEmpty { return }
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

    /// The merge loop over flat buffers: symbols as (start, length, previous, next) and a binary max-heap of
    /// bigrams keyed by (score, then smaller left index) in one 64-bit word, with (right, length) beside it.
    struct Merger {
        let model: SentencePiece
        let bytes: UnsafeBufferPointer<UInt8>
        let start: UnsafeMutablePointer<Int32>
        let length: UnsafeMutablePointer<Int32>
        let previous: UnsafeMutablePointer<Int32>
        let next: UnsafeMutablePointer<Int32>
        /// The heap: entry i's key at `heap[2i]`, its payload beside it at `heap[2i + 1]` (one cache line per
        /// visit; the heap of a long text is tens of megabytes).
        let heap: UnsafeMutablePointer<UInt64>
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
            self.heap = h
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
                if heap[2 * (parent)] >= key { break }
                heap[2 * (child)] = heap[2 * (parent)]
                heap[2 * (child) + 1] = heap[2 * (parent) + 1]
                child = parent
            }
            heap[2 * (child)] = key
            heap[2 * (child) + 1] = payload
        }

        mutating func pop() -> (key: UInt64, payload: UInt64)? {
            if heapCount == 0 { return nil }
            let top = (heap[2 * (0)], heap[2 * (0) + 1])
            heapCount -= 1
            let lastKey = heap[2 * (heapCount)]
            let lastPayload = heap[2 * (heapCount) + 1]
            var parent = 0
            while true {
                var child = 2 * parent + 1
                if child >= heapCount { break }
                if child + 1 < heapCount && heap[2 * (child + 1)] > heap[2 * (child)] { child += 1 }
                if heap[2 * (child)] <= lastKey { break }
                heap[2 * (parent)] = heap[2 * (child)]
                heap[2 * (parent) + 1] = heap[2 * (child) + 1]
                parent = child
            }
            heap[2 * (parent)] = lastKey
            heap[2 * (parent) + 1] = lastPayload
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
