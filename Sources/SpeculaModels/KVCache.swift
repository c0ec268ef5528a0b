#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Keys and values of every layer for the tokens a model has seen, preallocated for the context.
///
/// Rows are appended by a forward pass (a batch of tokens, possibly a tree), then either kept (`commit`: the accepted
/// root-to-node path is compacted right after the prefix) or dropped (`trim`). Rollback is an offset move.
public final class KVCache: @unchecked Sendable {
    public let capacity: Int
    public let layerCount: Int
    public let width: Int
    /// Key-value heads, and the floats of one head's row (``width`` = heads × headWidth).
    public let heads: Int
    public let headWidth: Int
    /// keys[layer]: [heads, capacity, headWidth] — head by head, each head's rows contiguous, so that a thread
    /// attending with one head streams one contiguous run of memory (``offset(head:row:)``).
    let keys: [KVRows]
    let values: [KVRows]
    /// Position id of each row.
    var positions: [Int]
    /// Rows in use.
    public private(set) var length = 0
    /// Rows below this were written by ``fillWithPlaceholders(length:)`` (or by passes before it).
    private var placeholderRows = 0
    /// A reduced output head of the model this cache belongs to (``Transformer/makeOutputHead(tokens:)``): passes
    /// over this cache compute only its tokens' logits. Per cache, so one conversation's reduced head never
    /// changes another's output. Nil: the model's own head.
    public var outputHead: OutputHead?
    /// Where the passes over this cache spend their time, part by part (nil: not measured).
    public var profile: ForwardProfile?
    /// The batching member this cache's passes go through (``ForwardBatcher``): nil runs them alone.
    public var batchMember: ForwardBatcher.Member?
    /// The last batched pass that fed rows to this cache (set by the batcher while the cache's owner waits).
    public var lastPass: ForwardBatcher.PassShare?

    public init(config: ModelConfig, capacity: Int) {
        self.capacity = capacity
        layerCount = config.layerCount
        width = config.kvWidth
        heads = config.kvHeadCount
        headWidth = config.headDimension
        let elements = capacity * config.kvWidth
        keys = (0..<config.layerCount).map { _ in KVRows(count: elements) }
        values = (0..<config.layerCount).map { _ in KVRows(count: elements) }
        positions = [Int](repeating: 0, count: capacity)
    }

    /// Where head `head` of row `row` starts in a layer's keys or values.
    @inline(__always) func offset(head: Int, row: Int) -> Int { (head * capacity + row) * headWidth }

    /// Calls `body` with the start of each layer's keys, then of its values.
    private func forEachLayerBuffer(_ body: (UnsafeMutablePointer<Float>) -> Void) {
        for layer in 0..<layerCount {
            keys[layer].withUnsafeMutableBufferPointer { if let base = $0.baseAddress { body(base) } }
            values[layer].withUnsafeMutableBufferPointer { if let base = $0.baseAddress { body(base) } }
        }
    }

    /// Bytes held by the cache.
    public var byteCount: Int { 2 * layerCount * capacity * width * 4 }

    /// Reserves `count` rows after the current length (a forward pass fills them).
    func append(count: Int) throws -> Int {
        if length + count > capacity { throw ModelError.contextOverflow(needed: length + count, capacity: capacity) }
        let start = length
        length += count
        return start
    }

    /// Sets the length to `length` with placeholder rows (zeros) at consecutive positions, for benchmarks that time a
    /// decoding step at a given context: attention costs the same whatever the rows hold, as long as they are in
    /// memory. Rows never written before are written here: an untouched row of a mapped layer reads the kernel's
    /// one shared zero page, which sits in the core's caches, so a step over such rows would time attention far
    /// faster than over a conversation's rows.
    public func fillWithPlaceholders(length newLength: Int) throws {
        if newLength > capacity { throw ModelError.contextOverflow(needed: newLength, capacity: capacity) }
        for row in length..<newLength { positions[row] = row }
        let from = max(length, placeholderRows)
        if newLength > from {
            forEachLayerBuffer { base in
                for head in 0..<heads {
                    (base + offset(head: head, row: from)).update(repeating: 0, count: (newLength - from) * headWidth)
                }
            }
            placeholderRows = newLength
        }
        length = newLength
    }

    /// Drops every row from `newLength` on.
    @discardableResult
    public func trim(to newLength: Int) -> Int {
        precondition(newLength >= 0 && newLength <= length, "trim past the end")
        let dropped = length - newLength
        length = newLength
        return dropped
    }

    /// Keeps, of the rows appended after `prefix`, those at batch indices `kept` (ascending: a root-to-node path),
    /// moving them to `prefix, prefix + 1, …`, and drops the rest. An in-place forward copy is safe because indices
    /// grow along a path.
    public func commit(prefix: Int, kept: [Int]) {
        precondition(prefix <= length)
        for (slot, index) in kept.enumerated() {
            let from = prefix + index
            let to = prefix + slot
            precondition(from < length && index >= slot, "kept rows must be ascending batch indices")
            if from == to { continue }
            forEachLayerBuffer { base in
                for head in 0..<heads {
                    (base + offset(head: head, row: to)).update(
                        from: base + offset(head: head, row: from), count: headWidth)
                }
            }
            positions[to] = positions[from]
        }
        length = prefix + kept.count
    }
}

/// One layer's keys or values for the whole context: zero pages mapped on demand, so a cache sized for 4,096 tokens
/// costs memory (and page clearing) only for the rows a conversation reaches. An array of zeros would write the
/// whole context when made — 235 MB for the pinned target's cache at 4,096 tokens, paid by the first pass of every
/// new conversation.
final class KVRows: @unchecked Sendable {
    let count: Int
    private let base: UnsafeMutablePointer<Float>
    private let mapped: Bool

    init(count: Int) {
        self.count = count
        let bytes = max(1, count) * MemoryLayout<Float>.stride
        #if canImport(Glibc)
            if bytes >= 1 << 20 {
                let memory = mmap(nil, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
                if let memory, memory != MAP_FAILED {
                    base = memory.bindMemory(to: Float.self, capacity: max(1, count))
                    mapped = true
                    return
                }
            }
        #endif
        guard let memory = calloc(max(1, count), MemoryLayout<Float>.stride) else {
            fatalError("out of memory: a cache layer of \(bytes) bytes")
        }
        base = memory.bindMemory(to: Float.self, capacity: max(1, count))
        mapped = false
    }

    deinit {
        if mapped {
            munmap(UnsafeMutableRawPointer(base), max(1, count) * MemoryLayout<Float>.stride)
        } else {
            free(base)
        }
    }

    func withUnsafeBufferPointer<R>(_ body: (UnsafeBufferPointer<Float>) throws -> R) rethrows -> R {
        try body(UnsafeBufferPointer(start: base, count: count))
    }

    func withUnsafeMutableBufferPointer<R>(_ body: (inout UnsafeMutableBufferPointer<Float>) throws -> R) rethrows
        -> R
    {
        var buffer = UnsafeMutableBufferPointer(start: base, count: count)
        return try body(&buffer)
    }
}
