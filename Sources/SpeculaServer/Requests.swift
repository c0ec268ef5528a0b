import Foundation
import SpeculaEngine
import SpeculaModels
import SpeculaVerify

/// What a chat or completion request asks for, every field checked: the prompt (not yet tokenized), the sampling and
/// stop settings, the speculation, the response's form.
struct GenerationRequest: Sendable {
    enum Kind: Sendable { case chat, completion }
    enum Prompt: Sendable {
        case messages([ChatMessage])
        case text(String)
        case tokens([Int])
    }

    var kind: Kind
    var prompt: Prompt
    /// Sampling, stop sequences, seed and speculation; `stop.maxTokens` is set once the prompt's length is known.
    var plan: DecodingPlan
    /// `max_tokens` / `max_completion_tokens` as given (nil: what the context leaves).
    var maxTokens: Int?
    var stream: Bool
    var includeUsage: Bool
    /// Log-probabilities of the emitted tokens: nil for none, else how many alternatives each (0…20).
    var logprobs: Int?

    static let maxStopSequences = 16
    static let maxTopLogprobs = 20

    /// Reads a `/v1/chat/completions` or `/v1/completions` body. `speculation` resolves the `speculative` object
    /// against what the server has loaded.
    init(kind: Kind, body: [String: JSONValue], speculation: SpeculationResolver) throws {
        let fields = FieldReader(body)
        self.kind = kind
        _ = try fields.string("model")
        switch kind {
        case .chat:
            if fields.value("prompt") != nil {
                throw APIError.invalidRequest(
                    "'prompt' belongs to /v1/completions; a chat request sends 'messages'", param: "prompt")
            }
            prompt = .messages(try Self.messages(fields))
        case .completion:
            if fields.value("messages") != nil {
                throw APIError.invalidRequest(
                    "'messages' belongs to /v1/chat/completions; a completion request sends 'prompt'",
                    param: "messages")
            }
            prompt = try Self.prompt(fields)
        }

        if let n = try fields.integer("n"), n != 1 {
            throw APIError.invalidRequest("'n' must be 1: this server returns one choice (got \(n))", param: "n")
        }
        if let bestOf = try fields.integer("best_of"), bestOf != 1 {
            throw APIError.invalidRequest("'best_of' must be 1 (got \(bestOf))", param: "best_of")
        }
        if try fields.bool("echo") == true {
            throw APIError.invalidRequest("'echo' is not supported", param: "echo")
        }
        if try fields.string("suffix") != nil {
            throw APIError.invalidRequest("'suffix' (insertion) is not supported", param: "suffix")
        }
        if let bias = fields.value("logit_bias") {
            guard case .object(let entries) = bias else {
                throw fields.typeError("logit_bias", "an object", bias)
            }
            if !entries.isEmpty {
                throw APIError.invalidRequest(
                    "'logit_bias' is not supported (it would change the target's distribution)", param: "logit_bias")
            }
        }
        if let tools = try fields.array("tools"), !tools.isEmpty {
            throw APIError.invalidRequest("'tools' (function calling) is not supported", param: "tools")
        }
        if let format = try fields.object("response_format"), let type = try format.string("type"), type != "text" {
            throw APIError.invalidRequest(
                "'response_format.type' \(type) is not supported (only text)", param: "response_format.type")
        }

        let tokenLimit: ClosedRange<Int64> = 1...Int64(Int32.max)
        let maxTokens =
            try fields.integer("max_completion_tokens", in: tokenLimit)
            ?? fields.integer(
                "max_tokens", in: tokenLimit)
        self.maxTokens = maxTokens.map { Int($0) }

        var sampling = SamplingSettings(temperature: ServerDefaults.temperature)
        if let t = try fields.double("temperature", in: 0...2) { sampling.temperature = t }
        if let p = try fields.double("top_p", in: 0...1) {
            if p == 0 { throw fields.rangeError("top_p", "must be in (0, 1] (got 0)") }
            sampling.topP = p
        }
        if let k = try fields.integer("top_k", in: -1...Int64(Int32.max)) { sampling.topK = max(0, Int(k)) }
        if let m = try fields.double("min_p", in: 0...1) { sampling.minP = m }
        if let p = try fields.double("presence_penalty", in: -2...2) { sampling.presencePenalty = p }
        if let f = try fields.double("frequency_penalty", in: -2...2) { sampling.frequencyPenalty = f }
        if let r = try fields.double("repeat_penalty", in: 0...10) {
            if r == 0 { throw fields.rangeError("repeat_penalty", "must be > 0 (1 disables it)") }
            sampling.repetitionPenalty = r
        }

        let seed: UInt64
        if let given = try fields.integer("seed") {
            seed = UInt64(bitPattern: given)
        } else {
            var generator = SystemRandomNumberGenerator()
            seed = generator.next()
        }

        var stops: [String] = []
        if let stop = fields.value("stop") {
            switch stop {
            case .string(let text): stops = [text]
            case .array(let items):
                for (index, item) in items.enumerated() {
                    guard case .string(let text) = item else {
                        throw APIError.invalidRequest(
                            "'stop[\(index)]' must be a string, not \(item.typeName)", param: "stop")
                    }
                    stops.append(text)
                }
            default: throw fields.typeError("stop", "a string or an array of strings", stop)
            }
            if stops.count > Self.maxStopSequences {
                throw fields.rangeError("stop", "has \(stops.count) sequences; at most \(Self.maxStopSequences)")
            }
            if stops.contains(where: \.isEmpty) { throw fields.rangeError("stop", "must not contain an empty string") }
        }

        stream = try fields.bool("stream") ?? false
        includeUsage = try fields.object("stream_options")?.bool("include_usage") ?? false

        switch kind {
        case .chat:
            let wanted = try fields.bool("logprobs") ?? false
            let top = try fields.integer("top_logprobs", in: 0...Int64(Self.maxTopLogprobs))
            if top != nil && !wanted {
                throw APIError.invalidRequest("'top_logprobs' needs 'logprobs': true", param: "top_logprobs")
            }
            logprobs = wanted ? Int(top ?? 0) : nil
        case .completion:
            logprobs = try fields.integer("logprobs", in: 0...Int64(Self.maxTopLogprobs)).map { Int($0) }
        }

        let base = DecodingPlan(
            sampling: sampling, stop: StopConditions(maxTokens: 1, sequences: stops), seed: seed)
        plan = try speculation.plan(fields, base: base)
    }

    /// `messages`: a non-empty array of `{role, content}`; content a string, null, or an array of text parts.
    static func messages(_ fields: FieldReader) throws -> [ChatMessage] {
        guard let items = try fields.array("messages") else {
            throw APIError.invalidRequest("'messages' is required", param: "messages")
        }
        if items.isEmpty { throw APIError.invalidRequest("'messages' must not be empty", param: "messages") }
        var messages: [ChatMessage] = []
        for (index, item) in items.enumerated() {
            let path = "messages[\(index)]"
            guard case .object(let object) = item else {
                throw APIError.invalidRequest("'\(path)' must be an object, not \(item.typeName)", param: path)
            }
            let message = FieldReader(object, path: path)
            guard let role = try message.string("role") else {
                throw APIError.invalidRequest("'\(path).role' is required", param: path + ".role")
            }
            let roles = ["system", "developer", "user", "assistant", "tool"]
            if !roles.contains(role) {
                throw APIError.invalidRequest(
                    "'\(path).role' must be one of \(roles.joined(separator: ", ")) (got '\(role)')",
                    param: path + ".role")
            }
            var content = ""
            switch message.value("content") {
            case nil: content = ""
            case .string(let text)?: content = text
            case .array(let parts)?:
                for (partIndex, part) in parts.enumerated() {
                    let partPath = "\(path).content[\(partIndex)]"
                    guard case .object(let partObject) = part else {
                        throw APIError.invalidRequest(
                            "'\(partPath)' must be an object, not \(part.typeName)", param: partPath)
                    }
                    let fields = FieldReader(partObject, path: partPath)
                    let type = try fields.string("type")
                    guard type == "text", let text = try fields.string("text") else {
                        throw APIError.invalidRequest(
                            "'\(partPath)': only text parts are supported (type \"text\" with \"text\")",
                            param: partPath)
                    }
                    content += text
                }
            case let other?:
                throw message.typeError("content", "a string or an array of text parts", other)
            }
            messages.append(ChatMessage(role: role == "developer" ? "system" : role, content: content))
        }
        return messages
    }

    /// `prompt`: a string, an array of token ids, or a one-element array of either.
    static func prompt(_ fields: FieldReader) throws -> Prompt {
        guard let value = fields.value("prompt") else {
            throw APIError.invalidRequest("'prompt' is required", param: "prompt")
        }
        switch value {
        case .string(let text):
            return .text(text)
        case .array(let items):
            if items.count == 1, case .string(let text) = items[0] { return .text(text) }
            if items.count == 1, case .array(let inner) = items[0] { return .tokens(try tokenIDs(inner)) }
            if items.count > 1, case .string = items[0] {
                throw APIError.invalidRequest(
                    "'prompt' has \(items.count) prompts; this server completes one per request", param: "prompt")
            }
            return .tokens(try tokenIDs(items))
        default:
            throw fields.typeError("prompt", "a string or an array of token ids", value)
        }
    }

    static func tokenIDs(_ items: [JSONValue]) throws -> [Int] {
        try items.enumerated().map { index, item in
            guard case .integer(let id) = item, id >= 0, id <= Int64(Int32.max) else {
                throw APIError.invalidRequest(
                    "'prompt[\(index)]' must be a token id (an integer ≥ 0), not \(item)", param: "prompt")
            }
            return Int(id)
        }
    }
}

/// The server's sampling default where a request gives none (OpenAI's).
public enum ServerDefaults {
    public static let temperature = 1.0
}

/// A chat or completion request as the server queues it: every field checked, the prompt tokenized with the target's
/// tokenizer and chat template, the token limit set from what the context leaves. The route handlers build one per
/// request; the request fuzz target builds them from arbitrary bodies (`PreparedGeneration.check`).
public struct PreparedGeneration {
    var request: GenerationRequest
    var prompt: [Int]
    /// The request's plan with `stop.maxTokens` set.
    var plan: DecodingPlan

    init(kind: GenerationRequest.Kind, body: [String: JSONValue], target: LoadedModel, hasDraft: Bool, context: Int)
        throws
    {
        request = try GenerationRequest(kind: kind, body: body, speculation: SpeculationResolver(hasDraft: hasDraft))
        prompt = try Self.tokens(of: request.prompt, target: target)
        let room = context - prompt.count
        if room < 1 || (request.maxTokens ?? 1) > room {
            throw APIError.contextLengthExceeded(
                promptTokens: prompt.count, maxTokens: request.maxTokens ?? 1, context: context)
        }
        plan = request.plan
        plan.stop.maxTokens = request.maxTokens ?? room
    }

    /// The prompt's tokens: messages through the chat template, text with special tokens parsed, token ids checked
    /// against the vocabulary. An empty prompt is refused.
    static func tokens(of prompt: GenerationRequest.Prompt, target: LoadedModel) throws -> [Int] {
        let tokens: [Int]
        switch prompt {
        case .messages(let messages):
            do { tokens = try target.promptTokens(messages: messages) } catch {
                throw APIError.invalidRequest("'messages': \(error)", param: "messages")
            }
        case .text(let text):
            tokens = target.promptTokens(text: text, special: true)
        case .tokens(let ids):
            let vocabulary = target.transformer.vocabularySize
            if let bad = ids.first(where: { $0 >= vocabulary }) {
                throw APIError.invalidRequest(
                    "'prompt': token \(bad) is outside the vocabulary 0..<\(vocabulary)", param: "prompt")
            }
            tokens = ids
        }
        if tokens.isEmpty {
            throw APIError.invalidRequest("'prompt': the prompt is empty (it encodes to no token)", param: "prompt")
        }
        return tokens
    }

    /// What the server makes of a request body sent to `/v1/chat/completions` (`chat`) or `/v1/completions`, before
    /// anything is queued: the prompt's tokens and the plan, or the error the server would answer with (an
    /// `APIError`: a 400 with the field's name, or a context-length error). For tests and fuzzing: the same code the
    /// routes run.
    public static func check(chat: Bool, body: Data, target: LoadedModel, hasDraft: Bool, context: Int) throws -> (
        prompt: [Int], plan: DecodingPlan
    ) {
        let object = try JSONValue.parseObject(body)
        let prepared = try PreparedGeneration(
            kind: chat ? .chat : .completion, body: object, target: target, hasDraft: hasDraft, context: context)
        return (prepared.prompt, prepared.plan)
    }
}

/// Turns a request's `speculative` object (and llama-server's flat `speculative.n_max`) into the plan's drafter,
/// shape and verifier, against what the server has: a draft model it can use or not.
struct SpeculationResolver: Sendable {
    /// A draft model is loaded and shares the target's vocabulary.
    var hasDraft: Bool

    static let modes = ["auto", "off", "draft", "ngram", "suffix"]
    /// The longest chain a request may ask for (`n_max`).
    static let longestChain: Int64 = 64
    /// The largest tree a request may ask for (root included): four times the longest chain, eight times the largest
    /// tree `auto` plans. It also bounds a `sequoia:B` budget before the tree is planned (planning is quadratic in B).
    static let largestTree = 256

    func plan(_ fields: FieldReader, base: DecodingPlan) throws -> DecodingPlan {
        let spec = try fields.object("speculative")
        let flatMax = try fields.integer("speculative.n_max", in: 0...Self.longestChain)
        let mode = try spec?.string("mode") ?? "auto"
        if !Self.modes.contains(mode) {
            throw APIError.invalidRequest(
                "'speculative.mode' must be one of \(Self.modes.joined(separator: ", ")) (got '\(mode)')",
                param: "speculative.mode")
        }
        let nMax =
            try spec?.integer("n_max", in: 0...Self.longestChain).map { Int($0) }
            ?? flatMax.map {
                Int($0)
            }
        let treeSpelling = try spec?.string("tree")
        let verifierSpelling = try spec?.string("verifier")
        var plan = base
        if mode == "off" || nMax == 0 {
            if treeSpelling != nil || verifierSpelling != nil {
                throw APIError.invalidRequest(
                    "'speculative': a tree or verifier needs speculation on (mode is off or n_max is 0)",
                    param: treeSpelling != nil ? "speculative.tree" : "speculative.verifier")
            }
            plan.drafter = .none
            return plan
        }
        let useDraft: Bool
        switch mode {
        case "draft":
            if !hasDraft {
                throw APIError.invalidRequest(
                    "'speculative.mode' draft needs a draft model, and this server has none it can use "
                        + "(start it with --draft D.gguf)", param: "speculative.mode")
            }
            useDraft = true
        case "ngram", "suffix":
            useDraft = false
        default:
            useDraft = hasDraft
        }
        if !useDraft && treeSpelling != nil {
            throw APIError.invalidRequest(
                mode == "suffix"
                    ? "'speculative.tree': the suffix drafter builds its own trees (give 'n_max' nodes)"
                    : "'speculative.tree' needs the draft model (the n-gram drafter drafts chains)",
                param: "speculative.tree")
        }
        if let verifierSpelling {
            if verifierSpelling == "auto" {
                plan.verifier = .greedy
            } else {
                do { plan.verifier = try VerifierKind(spelling: verifierSpelling) } catch {
                    throw APIError.invalidRequest(
                        "'speculative.verifier': \(Self.reason(error))", param: "speculative.verifier")
                }
            }
        }
        if useDraft {
            plan.drafter = .model
            if verifierSpelling == "auto" {
                if treeSpelling != nil || nMax != nil {
                    throw APIError.invalidRequest(
                        "'speculative.verifier' auto chooses the tree: drop 'tree' and 'n_max'",
                        param: "speculative.verifier")
                }
                plan.shape = .auto
            } else if let treeSpelling {
                if nMax != nil {
                    throw APIError.invalidRequest(
                        "'speculative': give 'tree' or 'n_max', not both", param: "speculative.n_max")
                }
                do {
                    plan.shape = try DraftShape(spelling: treeSpelling, readingFiles: false, maxNodes: Self.largestTree)
                } catch {
                    throw APIError.invalidRequest(
                        "'speculative.tree': \(Self.reason(error))", param: "speculative.tree")
                }
            } else if let nMax {
                plan.shape = .chain(nMax)
            } else {
                plan.shape = .adaptive
            }
        } else {
            if verifierSpelling == "auto" {
                throw APIError.invalidRequest(
                    "'speculative.verifier' auto plans draft-model trees: it needs the draft model",
                    param: "speculative.verifier")
            }
            if mode == "suffix" {
                // Trees of `n_max` nodes (8 when not given), 5 levels, as the `suffix` method.
                plan.drafter = .suffix(longest: 3, nodes: nMax ?? DecodingPlan.suffixNodesDefault)
                plan.shape = .chain(5)
            } else {
                plan.drafter = .ngram(longest: 3)
                plan.shape = nMax.map { .chain($0) } ?? .adaptive
            }
        }
        do {
            try plan.validate(hasDraftModel: hasDraft)
        } catch let EngineError.badInput(field, reason) {
            let param = ["sampling", "max-tokens", "stop"].contains(field) ? field : "speculative.\(field)"
            throw APIError.invalidRequest("'\(param)': \(reason)", param: param)
        }
        return plan
    }

    static func reason(_ error: any Error) -> String {
        if case EngineError.badInput(_, let reason) = error { return reason }
        return "\(error)"
    }
}
