import SpeculaKernels

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A model file opened for inference: the transformer, its tokenizer and chat template. One loaded model can serve
/// many conversations: everything per conversation (caches, a reduced output head) lives with the conversation.
public final class LoadedModel: @unchecked Sendable {
    public let file: GGUFFile
    public let transformer: Transformer
    public let tokenizer: Tokenizer
    public let template: ChatTemplate?

    /// What the load did with the weight cache (``WeightCache``).
    public let weightCacheStatus: WeightCacheStatus

    /// The model at `path`; with `requantization` (for a draft), its matrices re-quantized as they are read. Its
    /// packed weights are read from `weightCache` when a file there matches the model, else packed and written
    /// there (see ``WeightCache``; ``weightCacheStatus`` says which). A cache that cannot be read or written costs
    /// only the packing: the model is the same bit for bit either way.
    ///
    /// With `sharingTokenizerWith` (a draft loaded beside its target), the other model's tokenizer is used when the
    /// two files store the same `tokenizer.ggml.*` metadata entries in the same bytes: those entries are all a
    /// ``Tokenizer`` reads (vocabulary, types, merges or scores, special ids, flags), so they make the same tokenizer.
    /// Building one takes about 0.2 s for a 151,936-token vocabulary, and decoding its entries most of a 0.05 s open;
    /// shared, this model's entries are compared as bytes and never decoded (``GGUFFile/deferredKeys``). The chat
    /// template stays each model's own.
    public init(
        path: String, requantization: Requantization? = nil, weightCache: WeightCache = .standard,
        sharingTokenizerWith other: LoadedModel? = nil
    ) throws {
        // Beside a model whose tokenizer this one may share, its tokenizer entries are compared as bytes first.
        let tokenizerKeys = { (key: String) in key.hasPrefix("tokenizer.ggml.") }
        var shared: Tokenizer?
        if let other {
            let deferred = try GGUFFile(path: path, deferring: tokenizerKeys)
            if Self.sameRawValues(deferred, other.file, keys: tokenizerKeys) {
                file = deferred
                shared = other.tokenizer
            } else {
                file = try GGUFFile(path: path)
            }
        } else {
            file = try GGUFFile(path: path)
        }
        let packs = getenv("SPECULA_PACK").map { String(cString: $0) } != "0"
        let place: (directory: String, key: String, path: String)? =
            packs && FastDot.kernelName == "avx512-vnni"
            ? weightCache.resolvedDirectory.flatMap { directory in
                WeightCache.key(modelPath: path, requantization: requantization).map {
                    (directory, $0, WeightCache.filePath(directory: directory, modelPath: path, key: $0))
                }
            } : nil
        var cache: WeightCacheFile?
        var unusable: String?
        if let place, access(place.path, F_OK) == 0 {
            do { cache = try WeightCacheFile(path: place.path, key: place.key) } catch { unusable = "\(error)" }
        }
        transformer = try Transformer(file: file, requantization: requantization, cache: cache, configure: { _ in })
        tokenizer = try shared ?? Tokenizer(gguf: file)
        template = try ChatTemplate.forModel(file)
        weightCacheStatus = Self.settleCache(
            place: place, cache: cache, unusable: unusable, products: transformer.packedProducts)
    }

    /// Whether two files have the same metadata keys among those `keys` accepts (at least one) and store each one's
    /// type and value in the same bytes.
    package static func sameRawValues(_ a: GGUFFile, _ b: GGUFFile, keys: (String) -> Bool) -> Bool {
        let names = Set(a.allKeys.filter(keys))
        guard !names.isEmpty, names == Set(b.allKeys.filter(keys)) else { return false }
        return names.allSatisfy { key in
            guard let x = a.rawValue(of: key), let y = b.rawValue(of: key), x.count == y.count else { return false }
            guard let p = x.baseAddress, let q = y.baseAddress else { return x.count == 0 }
            return memcmp(p, q, x.count) == 0
        }
    }

    /// Writes the cache file when the load did not read a whole one.
    private static func settleCache(
        place: (directory: String, key: String, path: String)?, cache: WeightCacheFile?, unusable: String?,
        products: [WeightCache.Product]
    ) -> WeightCacheStatus {
        guard let place, !products.isEmpty else { return .off }
        if let cache, cache.misses == 0, cache.entries.count == products.count { return .read(path: place.path) }
        let reason =
            unusable
            ?? cache.map {
                $0.misses > 0
                    ? "\($0.misses) of \(products.count) matrices missing or not as this load makes them"
                    : "\($0.entries.count) entries for \(products.count) matrices"
            }
        do {
            try WeightCache.write(products, key: place.key, to: place.path)
        } catch {
            return .notWritten(reason: "\(error)")
        }
        // A new file is written when a model file is new or changed: the files of changed or removed ones go.
        WeightCache.prune(directory: place.directory, keeping: place.path)
        return reason.map { .rewritten(path: place.path, reason: $0) } ?? .written(path: place.path)
    }

    /// A model from parts already open (a model in memory, such as a ``SyntheticModel``'s, or one whose transformer
    /// a test built); the chat template is read from the transformer's file.
    public init(transformer: Transformer, tokenizer: Tokenizer) throws {
        file = transformer.file
        self.transformer = transformer
        self.tokenizer = tokenizer
        template = try ChatTemplate.forModel(transformer.file)
        weightCacheStatus = .off
    }

    public var path: String { file.path }

    /// The weight bytes a one-token decoding step reads: every tensor but the token embedding table (one row of it
    /// is read), which counts when the output head shares it.
    public var stepBytes: Int {
        let tied = !file.tensors.contains { $0.name == "output.weight" }
        // Tensors of skipped layers (`blk.N.`) are not read; re-quantized ones are read at their new size.
        let skipped = Set(transformer.skippedLayers.map { "blk.\($0)." })
        let requantized = transformer.requantizedBytes
        return file.tensors.reduce(0) { sum, tensor in
            let read = !(tensor.name == "token_embd.weight" && !tied) && !skipped.contains { tensor.name.hasPrefix($0) }
            return sum + (read ? requantized[tensor.name] ?? tensor.byteCount : 0)
        }
    }

    /// The bytes of the output matrix (the token embedding table when the head shares it).
    public var outputBytes: Int {
        let output =
            file.tensors.first { $0.name == "output.weight" } ?? file.tensors.first { $0.name == "token_embd.weight" }
        guard let output else { return 0 }
        return transformer.requantizedBytes[output.name] ?? output.byteCount
    }

    /// The tokens of raw text: BOS as the metadata asks; with `special`, text such as `<|im_start|>` is read as the
    /// special token it spells (as `specula tokenize --special` and llama.cpp do).
    public func promptTokens(text: String, special: Bool = false) -> [Int] {
        tokenizer.encode(text, addSpecial: true, parseSpecial: special)
    }

    /// The tokens of a conversation rendered by the model's chat template with the generation prompt (special tokens
    /// parsed, no extra BOS: the template writes it when the model wants one).
    public func promptTokens(messages: [ChatMessage]) throws -> [Int] {
        try Self.promptTokens(messages: messages, template: template, tokenizer: tokenizer, path: file.path)
    }

    /// ``promptTokens(messages:)`` from a template and tokenizer alone (no transformer loaded); `path` names the
    /// model in errors.
    public static func promptTokens(
        messages: [ChatMessage], template: ChatTemplate?, tokenizer: Tokenizer, path: String
    ) throws -> [Int] {
        guard let template else { throw ModelError.invalid(path: path, reason: "the model has no chat template") }
        if messages.isEmpty { throw ModelError.invalid(path: "messages", reason: "the conversation has no message") }
        let bos = tokenizer.bos.map { tokenizer.tokens[$0] } ?? ""
        let eos = tokenizer.eos.map { tokenizer.tokens[$0] } ?? ""
        let rendered = try template.render(messages: messages, addGenerationPrompt: true, bosToken: bos, eosToken: eos)
        return tokenizer.encode(rendered, addSpecial: false, parseSpecial: true)
    }

    /// One user turn (after an optional system message) in the chat template.
    public func promptTokens(chat text: String, system: String? = nil) throws -> [Int] {
        var messages: [ChatMessage] = []
        if let system { messages.append(ChatMessage(role: "system", content: system)) }
        messages.append(ChatMessage(role: "user", content: text))
        return try promptTokens(messages: messages)
    }

    /// The token ids a reduced draft head keeps: the first `count` ids, the control tokens, and `keeping` (a
    /// prompt's own tokens: answers reuse the prompt's names, which the first ids often miss).
    public func draftVocabulary(first count: Int, keeping: [Int]) -> [Int] {
        tokenizer.draftVocabulary(first: count).flatMap { Array($0) } + keeping
    }
}
