/// A model file opened for inference: the transformer, its tokenizer and chat template. One loaded model can serve
/// many conversations: everything per conversation (caches, a reduced output head) lives with the conversation.
public final class LoadedModel: @unchecked Sendable {
    public let file: GGUFFile
    public let transformer: Transformer
    public let tokenizer: Tokenizer
    public let template: ChatTemplate?

    /// The model at `path`; with `requantization` (for a draft), its matrices re-quantized as they are read.
    public init(path: String, requantization: Requantization? = nil) throws {
        file = try GGUFFile(path: path)
        transformer = try Transformer(file: file, requantization: requantization)
        tokenizer = try Tokenizer(gguf: file)
        template = try ChatTemplate.forModel(file)
    }

    /// A model from parts already open (a model in memory, such as a ``SyntheticModel``'s, or one whose transformer
    /// a test built); the chat template is read from the transformer's file.
    public init(transformer: Transformer, tokenizer: Tokenizer) throws {
        file = transformer.file
        self.transformer = transformer
        self.tokenizer = tokenizer
        template = try ChatTemplate.forModel(transformer.file)
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
