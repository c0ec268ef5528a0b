import SpeculaKernels
import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A decoder-only transformer read from a GGUF file: qwen2, llama or gemma3 (see the architecture files).
///
/// One forward pass takes a batch of tokens with any position ids and any visibility among them (a tree: each token
/// sees the committed cache, its ancestors and itself), appends their keys and values to the cache, and returns the
/// logits of the rows asked for. Every per-token computation (activation quantization, each dot product, norms,
/// RoPE, attention over the visible rows in ascending order) is done the same way whatever the batch, so a row of a
/// batched pass is bit-identical to the same token decoded alone with the same visible rows.
public final class Transformer: @unchecked Sendable {
    public let file: GGUFFile
    public let config: ModelConfig
    public let vocabularySize: Int
    let embedding: QuantizedMatrix
    private(set) var output: QuantizedMatrix
    /// A restricted output for every cache (``restrictOutput(toTokens:)``); a cache's own
    /// ``KVCache/outputHead`` takes precedence. Nil: the whole vocabulary.
    private(set) var restrictedOutput: OutputHead?
    /// The token ids whose logits are computed (all by default).
    public private(set) var outputTokenCount: Int = 0
    /// Layers every pass leaves out (``skipLayers(_:)``): their residual updates are not applied and their cache
    /// rows are not written. Empty by default.
    public private(set) var skippedLayers: Set<Int> = []
    let outputNorm: [Float]
    private(set) var layers: [Layer]
    let pool: WorkerPool
    /// Matrices re-quantized since load (``requantize(to:output:)``): tensor name → the bytes a product now reads
    /// (the packed copy's). Empty by default.
    public private(set) var requantizedBytes: [String: Int] = [:]
    /// The packed matrices of the load, by tensor name (what a weight cache file holds).
    package let packedProducts: [WeightCache.Product]
    /// Storage that forward passes reuse (``ForwardWorkspace``): one per pass running at a time, kept between passes.
    private let workspaces = Mutex<[ForwardWorkspace]>([])

    struct Layer {
        var attentionNorm: [Float]
        var query: QuantizedMatrix
        var key: QuantizedMatrix
        var value: QuantizedMatrix
        var attentionOutput: QuantizedMatrix
        var queryBias: [Float]?
        var keyBias: [Float]?
        var valueBias: [Float]?
        var queryNorm: [Float]?
        var keyNorm: [Float]?
        var postAttentionNorm: [Float]?
        var feedForwardNorm: [Float]
        var gate: QuantizedMatrix
        var up: QuantizedMatrix
        var down: QuantizedMatrix
        var postFeedForwardNorm: [Float]?
    }

    public convenience init(file: GGUFFile, pool: WorkerPool = .shared) throws {
        try self.init(file: file, pool: pool, configure: { _ in })
    }

    /// A model whose matrices are re-quantized as they are read (see ``requantize(to:output:)``): each converted
    /// matrix is packed once, from its new rows.
    public convenience init(file: GGUFFile, pool: WorkerPool = .shared, requantization: Requantization?) throws {
        try self.init(file: file, pool: pool, requantization: requantization, configure: { _ in })
    }

    /// A model whose configuration `configure` changes after it is read from the file (and before it is
    /// validated): for tests that need an architecture's rule at a size the file does not have — a sliding window
    /// short enough to see its edge.
    package init(
        file: GGUFFile, pool: WorkerPool = .shared, requantization: Requantization? = nil,
        cache: WeightCacheFile? = nil, configure: (inout ModelConfig) -> Void
    ) throws {
        if let requantization, !Requantize.targets.contains(requantization.type) {
            let names = Requantize.targets.map(\.description).sorted().joined(separator: ", ")
            throw ModelError.invalid(
                path: file.path, reason: "cannot re-quantize to \(requantization.type) (formats: \(names))")
        }
        self.file = file
        self.pool = pool
        var config = try ModelConfig.from(file)
        configure(&config)
        try config.validate(path: file.path)
        self.config = config
        let path = file.path
        func tensor(_ name: String) throws -> GGUFTensorInfo {
            guard let info = file.tensor(named: name) else { throw ModelError.missingTensor(path: path, name: name) }
            return info
        }
        func matrix(_ name: String, rows: Int, columns: Int) throws -> QuantizedMatrix {
            let info = try tensor(name)
            if info.dimensions != [columns, rows] {
                throw ModelError.tensorShape(
                    path: path, name: name, expected: [columns, rows], actual: info.dimensions)
            }
            // Activations are quantized in whole 32-value blocks, so every matrix a product reads is as wide.
            if columns % 32 != 0 {
                throw ModelError.invalid(
                    path: path, reason: "tensor '\(name)' has \(columns) columns; the kernels need a multiple of 32")
            }
            guard let base = file.data(of: info).baseAddress else {
                throw ModelError.invalid(path: path, reason: "tensor '\(name)' has no data")
            }
            return QuantizedMatrix(type: info.type, rowCount: rows, columnCount: columns, data: base)
        }
        // Matrices used in products are repacked for batched products (PackedMatrix); the embedding is only read
        // a row at a time and stays as stored.
        // SPECULA_PACK=0 keeps the stored layout (for side-by-side measurements).
        let packs = getenv("SPECULA_PACK").map { String(cString: $0) } != "0"
        var requantized: [String: Int] = [:]
        var products: [WeightCache.Product] = []
        // The type a matrix's products read: `requantization`'s for a matrix it converts, else the stored one.
        func productType(_ plain: QuantizedMatrix, _ name: String) -> TensorType {
            guard let requantization, name.hasPrefix("blk.") || requantization.output,
                Requantize.bitsPerWeight(plain.type) > Requantize.bitsPerWeight(requantization.type)
            else { return plain.type }
            return requantization.type
        }
        // The matrix from the weight cache, when it has it as this load makes it.
        func cached(_ plain: QuantizedMatrix, _ name: String) -> QuantizedMatrix? {
            guard packs, let cache else { return nil }
            let type = productType(plain, name)
            guard let matrix = cache.matrix(name, stored: plain, type: type) else { return nil }
            if type != plain.type { requantized[name] = matrix.rowBytes * matrix.rowCount }
            products.append(WeightCache.Product(name: name, storedType: plain.type, matrix: matrix))
            return matrix
        }
        // A packed matrix made by this load, for the cache file written after it.
        func made(_ matrix: QuantizedMatrix, _ name: String, storedType: TensorType) -> QuantizedMatrix {
            if matrix.packed != nil {
                products.append(WeightCache.Product(name: name, storedType: storedType, matrix: matrix))
            }
            return matrix
        }
        // A matrix to re-quantize (a layer's, or the output's when asked) is converted from its stored rows and
        // packed once.
        func leaner(_ plain: QuantizedMatrix, _ name: String) throws -> QuantizedMatrix? {
            guard let requantization, productType(plain, name) != plain.type else { return nil }
            guard let converted = plain.requantized(to: requantization.type, pool: pool) else {
                throw ModelError.invalid(
                    path: path,
                    reason: "tensor '\(name)' (\(plain.type)) cannot be re-quantized to \(requantization.type)")
            }
            requantized[name] = converted.rowBytes * converted.rowCount
            return converted
        }
        func product(_ name: String, rows: Int, columns: Int) throws -> QuantizedMatrix {
            var plain = try matrix(name, rows: rows, columns: columns)
            let storedType = plain.type
            if let matrix = cached(plain, name) { return matrix }
            if let converted = try leaner(plain, name) {
                plain = converted
                if let info = file.tensor(named: name) { file.release(info) }
            }
            guard packs else { return plain }
            let packed = plain.packed(pool: pool)
            // The stored bytes are not read again for products: resident memory stays about one model's size.
            if packed.packed != nil, let info = file.tensor(named: name), name != "token_embd.weight" {
                file.release(info)
            }
            return made(packed, name, storedType: storedType)
        }
        func vector(_ name: String, count: Int) throws -> [Float] {
            let info = try tensor(name)
            if info.elementCount != count {
                throw ModelError.tensorShape(path: path, name: name, expected: [count], actual: info.dimensions)
            }
            guard let base = file.data(of: info).baseAddress else {
                throw ModelError.invalid(path: path, reason: "tensor '\(name)' has no data")
            }
            return Dequantize.row(info.type, base, elementCount: count)
        }
        // Tied embeddings: the packed copy serves the output product; the stored pages are dropped too, and the
        // few rows an embedding lookup reads are paged in again from the file.
        func tiedOutput(_ embedding: QuantizedMatrix) throws -> QuantizedMatrix {
            let name = "token_embd.weight"
            if let matrix = cached(embedding, name) { return matrix }
            if let converted = try leaner(embedding, name) {
                return packs ? made(converted.packed(pool: pool), name, storedType: embedding.type) : converted
            }
            guard packs else { return embedding }
            let packed = embedding.packed(pool: pool)
            if packed.packed != nil, let info = file.tensor(named: name) { file.release(info) }
            return made(packed, name, storedType: embedding.type)
        }
        let embeddingInfo = try tensor("token_embd.weight")
        guard embeddingInfo.dimensions.count == 2, embeddingInfo.dimensions[0] == config.embeddingLength else {
            throw ModelError.tensorShape(
                path: path, name: "token_embd.weight", expected: [config.embeddingLength, -1],
                actual: embeddingInfo.dimensions)
        }
        vocabularySize = embeddingInfo.dimensions[1]
        let d = config.embeddingLength
        let embeddingMatrix = try matrix("token_embd.weight", rows: vocabularySize, columns: d)
        embedding = embeddingMatrix
        output =
            file.tensor(named: "output.weight") != nil
            ? try product("output.weight", rows: vocabularySize, columns: d)
            : try tiedOutput(embeddingMatrix)
        outputNorm = try vector("output_norm.weight", count: d)
        var layers: [Layer] = []
        for i in 0..<config.layerCount {
            let p = "blk.\(i)."
            let q = config.queryWidth
            let kv = config.kvWidth
            let hd = config.headDimension
            layers.append(
                Layer(
                    attentionNorm: try vector(p + "attn_norm.weight", count: d),
                    query: try product(p + "attn_q.weight", rows: q, columns: d),
                    key: try product(p + "attn_k.weight", rows: kv, columns: d),
                    value: try product(p + "attn_v.weight", rows: kv, columns: d),
                    attentionOutput: try product(p + "attn_output.weight", rows: d, columns: q),
                    queryBias: config.hasQKVBias ? try vector(p + "attn_q.bias", count: q) : nil,
                    keyBias: config.hasQKVBias ? try vector(p + "attn_k.bias", count: kv) : nil,
                    valueBias: config.hasQKVBias ? try vector(p + "attn_v.bias", count: kv) : nil,
                    queryNorm: config.hasQKNorm ? try vector(p + "attn_q_norm.weight", count: hd) : nil,
                    keyNorm: config.hasQKNorm ? try vector(p + "attn_k_norm.weight", count: hd) : nil,
                    postAttentionNorm: config.hasPostNorms
                        ? try vector(p + "post_attention_norm.weight", count: d) : nil,
                    feedForwardNorm: try vector(p + "ffn_norm.weight", count: d),
                    gate: try product(p + "ffn_gate.weight", rows: config.feedForwardLength, columns: d),
                    up: try product(p + "ffn_up.weight", rows: config.feedForwardLength, columns: d),
                    down: try product(p + "ffn_down.weight", rows: d, columns: config.feedForwardLength),
                    postFeedForwardNorm: config.hasPostNorms ? try vector(p + "post_ffw_norm.weight", count: d) : nil))
        }
        self.layers = layers
        outputTokenCount = vocabularySize
        requantizedBytes = requantized
        packedProducts = products
    }

    /// Computes logits only for the tokens in `ranges` (ascending, disjoint); see ``restrictOutput(toTokens:)``.
    public func restrictOutput(to ranges: [Range<Int>]) throws {
        var previous = 0
        for range in ranges where !range.isEmpty {
            guard range.lowerBound >= previous, range.upperBound <= vocabularySize else {
                throw ModelError.invalid(
                    path: file.path,
                    reason: "output token ranges must be ascending, disjoint and within 0..<\(vocabularySize)")
            }
            previous = range.upperBound
        }
        try restrictOutput(toTokens: ranges.flatMap { Array($0) })
    }

    /// Computes logits only for `tokens` (any order, repeats ignored); every other logit is −∞, so the model never
    /// proposes those tokens. Meant for a draft model: its output matrix is a large part of each step (for the
    /// pinned draft, 146 MB of 468), and a draft's distribution may be anything the verifier is told — the
    /// target's distribution is kept whatever the draft proposes. The rows are copied into one matrix (packed for
    /// batches), so scattered ids cost what a range of the same size does. Not thread-safe with a running forward
    /// pass.
    public func restrictOutput(toTokens tokens: [Int]) throws {
        restrictedOutput = try makeOutputHead(tokens: tokens)
        outputTokenCount = restrictedOutput?.tokens.count ?? vocabularySize
    }

    /// Leaves `indices` (0-based layer numbers) out of every pass: the residual stream goes from the layer before
    /// to the layer after unchanged. Meant for a draft model, as ``restrictOutput(toTokens:)`` is: a cheaper draft
    /// with a different distribution, which the verifier is told (it sees the logits this model computes), so the
    /// target's distribution is kept. At least one layer must stay. An empty set restores the whole model. Not
    /// thread-safe with a running forward pass.
    public func skipLayers(_ indices: Set<Int>) throws {
        if let bad = indices.filter({ $0 < 0 || $0 >= layers.count }).min() {
            throw ModelError.invalid(
                path: file.path,
                reason: "layer \(bad) to skip is not one of its \(layers.count) layers (0…\(layers.count - 1))")
        }
        if indices.count >= layers.count {
            throw ModelError.invalid(path: file.path, reason: "skipping all \(layers.count) layers leaves no model")
        }
        skippedLayers = indices
    }

    /// Re-quantizes to `type` (one of ``Requantize/targets``) every layer matrix stored with more bits per weight
    /// than `type` has, and with `output` the output matrix too. Meant for a draft model, as ``skipLayers(_:)`` is:
    /// each step then reads fewer bytes, the verifier sees the logits this model computes, so the target's
    /// distribution is kept; the draft's acceptance may change. Output heads made before keep the old matrix.
    /// Returns the number of matrices converted. Not thread-safe with a running forward pass.
    @discardableResult
    public func requantize(to type: TensorType, output includingOutput: Bool) throws -> Int {
        // (The same conversion as a load with `requantization`, applied to a model already packed.)
        guard Requantize.targets.contains(type) else {
            let names = Requantize.targets.map(\.description).sorted().joined(separator: ", ")
            throw ModelError.invalid(path: file.path, reason: "cannot re-quantize to \(type) (formats: \(names))")
        }
        let bits = Requantize.bitsPerWeight(type)
        var converted = 0
        func convert(_ matrix: inout QuantizedMatrix, _ name: String) throws {
            guard Requantize.bitsPerWeight(matrix.type) > bits else { return }
            guard let leaner = matrix.requantized(to: type, pool: pool) else {
                throw ModelError.invalid(
                    path: file.path, reason: "tensor '\(name)' (\(matrix.type)) cannot be re-quantized to \(type)")
            }
            let packed = leaner.packed(pool: pool)
            matrix = packed
            requantizedBytes[name] = leaner.rowBytes * leaner.rowCount
            // The stored pages were read once more to re-quantize; products no longer read them.
            if name != "token_embd.weight", let info = file.tensor(named: name) { file.release(info) }
            converted += 1
        }
        for index in layers.indices {
            let p = "blk.\(index)."
            try convert(&layers[index].query, p + "attn_q.weight")
            try convert(&layers[index].key, p + "attn_k.weight")
            try convert(&layers[index].value, p + "attn_v.weight")
            try convert(&layers[index].attentionOutput, p + "attn_output.weight")
            try convert(&layers[index].gate, p + "ffn_gate.weight")
            try convert(&layers[index].up, p + "ffn_up.weight")
            try convert(&layers[index].down, p + "ffn_down.weight")
        }
        if includingOutput {
            let name = file.tensor(named: "output.weight") != nil ? "output.weight" : "token_embd.weight"
            try convert(&output, name)
            if let restricted = restrictedOutput { restrictedOutput = try makeOutputHead(tokens: restricted.tokens) }
        }
        return converted
    }

    /// A reduced output head for `tokens` (any order, repeats ignored), to be set on one cache
    /// (``KVCache/outputHead``): passes over that cache compute only those logits (the rest −∞), while the model and
    /// every other cache keep the whole vocabulary. Nil when `tokens` is the whole vocabulary.
    public func makeOutputHead(tokens: [Int]) throws -> OutputHead? {
        let ids = Array(Set(tokens)).sorted()
        guard let first = ids.first, let last = ids.last else {
            throw ModelError.invalid(path: file.path, reason: "the output must keep at least one token")
        }
        guard first >= 0, last < vocabularySize else {
            throw ModelError.invalid(
                path: file.path, reason: "output token \(first < 0 ? first : last) outside 0..<\(vocabularySize)")
        }
        if ids.count == vocabularySize { return nil }
        // A prefix of the ids (all ids below some multiple of 16) is a view of the output matrix, no copy; the rest
        // are gathered.
        var leading = 0
        while leading < ids.count && ids[leading] == leading { leading += 1 }
        leading -= leading % PackedMatrix.groupRows
        if leading > 0, let prefix = output.prefix(rows: leading) {
            let rest = Array(ids[leading...])
            let gathered = rest.isEmpty ? nil : gather(rest)
            return OutputHead(
                model: ObjectIdentifier(self), tokens: ids, prefix: prefix, matrix: gathered?.matrix,
                rows: gathered?.rows)
        }
        let gathered = gather(ids)
        return OutputHead(
            model: ObjectIdentifier(self), tokens: ids, prefix: nil, matrix: gathered.matrix, rows: gathered.rows)
    }

    /// The rows of `ids` (ascending) copied into one packed matrix, padded to whole groups of 16 rows (repeats of
    /// the last row, whose logits are not read) so that the packed kernels serve it: the kept logits are then
    /// exactly the full head's.
    private func gather(_ ids: [Int]) -> (matrix: QuantizedMatrix, rows: GatheredRows) {
        let last = ids[ids.count - 1]
        let padded = (ids.count + 15) / 16 * 16
        let rows = GatheredRows(output, ids + [Int](repeating: last, count: padded - ids.count))
        let matrix = QuantizedMatrix(
            type: output.type, rowCount: padded, columnCount: output.columnCount, data: rows.base)
        return (matrix.packed(pool: pool), rows)
    }

    /// A cache for this model holding `capacity` positions (at most the trained context).
    public func makeCache(capacity: Int? = nil) -> KVCache {
        KVCache(config: config, capacity: min(capacity ?? config.contextLength, config.contextLength))
    }
}

/// Re-quantization of a draft model's matrices (``Transformer/requantize(to:output:)``): every layer matrix stored
/// with more bits per weight than `type` is converted to `type`, and with `output` the output matrix too.
public struct Requantization: Sendable, Equatable {
    public var type: TensorType
    public var output: Bool

    public init(type: TensorType, output: Bool) {
        self.type = type
        self.output = output
    }
}

/// A reduced output head (``Transformer/makeOutputHead(tokens:)``): the token ids computed, ascending, and a matrix
/// of their rows gathered from the model's output matrix (then padded and packed).
public final class OutputHead: @unchecked Sendable {
    let model: ObjectIdentifier
    public let tokens: [Int]
    /// Ids `0..<prefix.rowCount`: a view of the model's output matrix.
    let prefix: QuantizedMatrix?
    /// The other ids (`tokens` after the prefix), gathered.
    let matrix: QuantizedMatrix?
    let rows: GatheredRows?

    init(
        model: ObjectIdentifier, tokens: [Int], prefix: QuantizedMatrix?, matrix: QuantizedMatrix?, rows: GatheredRows?
    ) {
        self.model = model
        self.tokens = tokens
        self.prefix = prefix
        self.matrix = matrix
        self.rows = rows
    }

    /// Ids served by the prefix view.
    var prefixCount: Int { prefix?.rowCount ?? 0 }
}

/// Rows copied out of a quantized matrix into memory this object owns (a restricted output head).
final class GatheredRows: @unchecked Sendable {
    let base: UnsafeMutableRawPointer

    init(_ matrix: QuantizedMatrix, _ rows: [Int]) {
        base = UnsafeMutableRawPointer.allocate(byteCount: max(1, rows.count * matrix.rowBytes), alignment: 64)
        for (index, row) in rows.enumerated() {
            (base + index * matrix.rowBytes).copyMemory(from: matrix.row(row), byteCount: matrix.rowBytes)
        }
    }

    deinit { base.deallocate() }
}

/// The quantized activations of a forward pass, kept from one pass to the next so that their arrays are allocated
/// once per shape, not four times a layer. Held by one pass at a time (``Transformer/takeWorkspace()``); its
/// contents never outlive the product they feed, so no result depends on which workspace a pass gets.
final class ForwardWorkspace: @unchecked Sendable {
    /// Rows as wide as the residual stream: the input of the q, k, v products, of the feed-forward products and of
    /// the output matrix, in turn.
    var residualWidth = QuantizedActivations.empty
    /// The attention output rows (the output projection's input).
    var attentionWidth = QuantizedActivations.empty
    /// The gated activation rows (the down product's input).
    var feedForwardWidth = QuantizedActivations.empty
}

extension Transformer {
    /// A workspace for one pass: a kept one if any is free, otherwise a new one.
    func takeWorkspace() -> ForwardWorkspace {
        workspaces.withLock { $0.popLast() } ?? ForwardWorkspace()
    }

    /// Returns a pass's workspace for the next pass.
    func giveBack(_ workspace: ForwardWorkspace) {
        workspaces.withLock { $0.append(workspace) }
    }
}
