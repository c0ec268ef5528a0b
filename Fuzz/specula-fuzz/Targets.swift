import Foundation
import SpeculaEngine
import SpeculaModels
import SpeculaServer
import SpeculaTheory
import SpeculaVerify

/// A model file from arbitrary bytes, taken as far as it goes: the GGUF header, metadata and tensor table (also
/// with every value deferred, which must read the same bytes), the
/// model configuration and every allocation sized from them, the tokenizer, the chat template, and one forward
/// pass of two tokens. Seeds: the synthetic model's file (`scripts/fuzz seeds`).
enum ModelFileFuzz {
    static func run(_ input: UnsafeRawBufferPointer) {
        // Deferring every value (a draft's tokenizer entries are opened so) checks the same structure: a file that
        // decodes is read the same with every value deferred, byte for byte.
        let deferred = try? GGUFFile(file: MappedFile(copying: Array(input), name: "fuzz"), deferring: { _ in true })
        guard let file = try? GGUFFile(file: MappedFile(copying: Array(input), name: "fuzz")) else { return }
        require(deferred != nil, "a file that decodes fails with its values deferred")
        for key in file.allKeys {
            require(
                deferred?.rawValue(of: key).map(Array.init) == file.rawValue(of: key).map(Array.init),
                "the deferred bytes of \(key) differ")
        }
        _ = try? ModelConfig.from(file)
        if let tokenizer = try? Tokenizer(gguf: file) {
            _ = tokenizer.encode("hello <|im_start|> world", parseSpecial: true)
            _ = tokenizer.decode([0, 1, 2, 255, 256, tokenizer.vocabularySize - 1, tokenizer.vocabularySize])
        }
        _ = try? ChatTemplate.forModel(file)?.render(
            messages: [ChatMessage(role: "user", content: "hi")], addGenerationPrompt: true)
        guard let model = try? Transformer(file: file, pool: SyntheticModel.serialPool) else { return }
        let cache = model.makeCache(capacity: 8)
        _ = try? model.forward(tokens: [1, 2], cache: cache, logitRows: [0, 1])
    }
}

/// The three pinned tokenizers (Qwen's and SmolLM2's byte-level BPE, Gemma's SentencePiece with byte fallback) on
/// arbitrary text and arbitrary token ids. The first byte picks the tokenizer and the operation; the properties:
/// - plain text (valid UTF-8, special tokens not parsed, no BOS) decodes back to itself, less the bytes the
///   vocabulary has no token for (SmolLM2 lacks a few control bytes; they are dropped, as llama.cpp drops them);
/// - streaming detokenization, token by token, gives exactly the text `decode` gives.
enum TokenizerFuzz {
    nonisolated(unsafe) static var tokenizers: [Tokenizer] = []
    /// Per tokenizer, the bytes it has no token for (`Tokenizer.bytesWithoutToken`).
    nonisolated(unsafe) static var dropped: [Set<UInt8>] = []

    static func prepare() throws {
        for name in [
            "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf", "smollm2-135m-instruct-q4_1.gguf", "gemma-3-270m-q4_k_m.gguf",
        ] {
            let tokenizer = try Tokenizer(gguf: GGUFFile(path: pinnedModelPath(name)))
            tokenizers.append(tokenizer)
            dropped.append(Set(tokenizer.bytesWithoutToken))
        }
    }

    static func run(_ input: UnsafeRawBufferPointer) {
        guard let selector = input.first else { return }
        let which = Int(selector) % tokenizers.count
        let tokenizer = tokenizers[which]
        let body = Array(input.dropFirst())
        switch (Int(selector) / tokenizers.count) % 4 {
        case 0:
            // Round trip of plain text.
            guard let text = String(validating: body, as: UTF8.self) else { return }
            let tokens = tokenizer.encode(text, addSpecial: false, parseSpecial: false)
            require(tokens.allSatisfy { $0 >= 0 && $0 < tokenizer.vocabularySize }, "a token outside the vocabulary")
            let back = tokenizer.decode(tokens)
            let kept = String(decoding: text.utf8.filter { !dropped[which].contains($0) }, as: UTF8.self)
            require(back == kept, "\(tokenizer.model.name): \(Array(text.utf8)) decodes back as \(Array(back.utf8))")
        case 1:
            // Arbitrary bytes, special tokens parsed, BOS added.
            let tokens = tokenizer.encode(bytes: body, addSpecial: true, parseSpecial: true)
            require(tokens.allSatisfy { $0 >= 0 && $0 < tokenizer.vocabularySize }, "a token outside the vocabulary")
        default:
            // Arbitrary ids (some past the vocabulary, some negative), decoded whole and streamed.
            var ids: [Int] = []
            var index = 0
            while index + 1 < body.count {
                let raw = Int(Int16(bitPattern: UInt16(body[index]) | UInt16(body[index + 1]) << 8))
                ids.append(raw < 0 ? raw : raw * tokenizer.vocabularySize / Int(Int16.max) + raw % 7)
                index += 2
            }
            let renderSpecial = selector & 0x80 != 0
            let whole = tokenizer.decode(ids, renderSpecial: renderSpecial)
            var stream = StreamingDetokenizer(tokenizer: tokenizer, renderSpecial: renderSpecial)
            var streamed = ""
            for id in ids { streamed += stream.append(id) }
            streamed += stream.finish()
            require(streamed == whole, "\(tokenizer.model.name): streaming \(ids) gives a different text")
        }
    }
}

/// A chat template from arbitrary text (before the first NUL byte), rendered with a conversation whose last user
/// message is the text after it: parsing and rendering either succeed or throw.
enum TemplateFuzz {
    static func run(_ input: UnsafeRawBufferPointer) {
        let parts = input.split(separator: 0, maxSplits: 1, omittingEmptySubsequences: false)
        let source = String(decoding: parts[0], as: UTF8.self)
        let content = parts.count > 1 ? String(decoding: parts[1], as: UTF8.self) : "hello"
        guard let template = try? ChatTemplate(source: source) else { return }
        let messages = [
            ChatMessage(role: "system", content: "You are brief."), ChatMessage(role: "user", content: "Hi"),
            ChatMessage(role: "assistant", content: "Hello."), ChatMessage(role: "user", content: content),
        ]
        _ = try? template.render(
            messages: messages, addGenerationPrompt: input.count % 2 == 0, bosToken: "<s>", eosToken: "</s>",
            tools: input.count % 3 == 0 ? [.object([("name", .string("f"))])] : nil)
    }
}

/// `specula bound`'s inputs: two vector texts separated by a NUL byte, then option bytes (drafts, logits or
/// probabilities, temperature, top-k, top-p). Every accepted pair is taken through the sampling settings and every
/// verifier's acceptance and α*; the property: no exact acceptance exceeds the α* of its own draft law.
enum BoundFuzz {
    static func run(_ input: UnsafeRawBufferPointer) {
        let parts = input.split(separator: 0, maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count >= 2 else { return }
        let options = parts.count > 2 ? Array(parts[2]) : []
        func option(_ index: Int) -> Int { index < options.count ? Int(options[index]) : 0 }
        guard
            let target = try? VectorText.parse(
                String(decoding: parts[0], as: UTF8.self), name: "target", source: "fuzz"),
            let draft = try? VectorText.parse(String(decoding: parts[1], as: UTF8.self), name: "draft", source: "fuzz"),
            target.count == draft.count, target.count <= 64
        else { return }
        let settings = SamplingSettings(
            temperature: [1, 0, 0.7, 1.5][option(1) % 4], topK: option(2) % 5, topP: [1, 0.9, 0.5][option(3) % 3])
        let logits = option(4) % 2 == 1
        guard
            let p = try? logits
                ? settings.process(logits: target, what: "target") : settings.process(probabilities: target),
            let q = try? logits
                ? settings.process(logits: draft, what: "draft") : settings.process(probabilities: draft),
            let bounds = try? NodeBounds(target: p, draft: q, drafts: 1 + option(0) % 4, samples: 64, seed: 1)
        else { return }
        for violation in bounds.violations {
            let method = bounds.acceptance.first { $0.name == violation.verifier }?.method
            if case .monteCarlo = method { continue }
            require(
                false,
                "\(violation.verifier) accepts \(violation.acceptance) > α* \(violation.optimum) at p \(p), q \(q)")
        }
    }
}

/// A draft tree from arbitrary JSON (what `--tree FILE` reads) or from a spelling read as the server reads a
/// request's `speculative.tree` (no files, at most 256 nodes; the CLI allows 4,096, and a big Sequoia budget there
/// is slow to plan because the user asked for it). An accepted tree must be well formed: parents before children,
/// depths one more than the parent's, the attention mask its ancestor relation.
enum TreeFuzz {
    static func run(_ input: UnsafeRawBufferPointer) {
        let topology: TreeTopology
        if input.first == UInt8(ascii: "[") || input.first == UInt8(ascii: "{") {
            guard let parsed = try? TreeTopology.json(Data(input)) else { return }
            topology = parsed
        } else {
            let spelling = String(decoding: input, as: UTF8.self)
            guard let shape = try? DraftShape(spelling: spelling, readingFiles: false, maxNodes: 256) else { return }
            guard case .tree(let parsed, _) = shape else { return }
            topology = parsed
        }
        for node in 1..<topology.nodeCount {
            let parent = topology.parents[node]
            require(parent >= 0 && parent < node, "node \(node)'s parent \(parent) does not come before it")
            require(topology.depth(of: node) == topology.depth(of: parent) + 1, "node \(node)'s depth")
        }
        if topology.nodeCount <= 256 {
            let mask = topology.attentionMask
            for node in 0..<topology.nodeCount {
                let parent = topology.parents[node]
                for other in 0..<topology.nodeCount where other != node {
                    require(mask[node][other] == (parent >= 0 && mask[parent][other]), "mask row \(node)")
                }
            }
        }
        _ = try? topology.pruned { $0 % 2 == 0 }
    }
}

/// A request body for `/v1/chat/completions` or `/v1/completions` (the first byte's low bit picks the route, the
/// next whether a draft model is loaded), read exactly as the server reads it, against SmolLM2 (its chat template
/// and tokenizer): accepted with a prompt and a plan, or refused with the error the server would send.
enum RequestFuzz {
    nonisolated(unsafe) static var target: LoadedModel!

    static func prepare() throws {
        target = try LoadedModel(path: pinnedModelPath("smollm2-135m-instruct-q4_1.gguf"))
    }

    static func run(_ input: UnsafeRawBufferPointer) {
        guard let flags = input.first else { return }
        guard
            let (prompt, plan) = try? PreparedGeneration.check(
                chat: flags & 1 == 0, body: Data(input.dropFirst()), target: target, hasDraft: flags & 2 == 0,
                context: 2048)
        else { return }
        require(!prompt.isEmpty && prompt.allSatisfy { $0 >= 0 && $0 < target.transformer.vocabularySize }, "prompt")
        require(plan.stop.maxTokens >= 1 && prompt.count + plan.stop.maxTokens <= 2048, "token limit")
    }
}
