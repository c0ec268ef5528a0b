import Foundation
import SpeculaEngine
import SpeculaModels

/// Response bodies. Property names are camelCase here and snake_case on the wire (the encoder converts them).
struct Usage: Encodable {
    var promptTokens: Int
    var completionTokens: Int
    var totalTokens: Int
    var promptTokensDetails: Details

    struct Details: Encodable { var cachedTokens: Int }

    init(_ stats: GenerationStats) {
        promptTokens = stats.promptTokens
        completionTokens = stats.generatedTokens
        totalTokens = stats.promptTokens + stats.generatedTokens
        promptTokensDetails = Details(cachedTokens: stats.cachedPromptTokens)
    }
}

/// What ran and how it went, in every response: the configuration, tokens per target pass, acceptance, the mean
/// optimal acceptance α* over the positions the verifier reached and the efficiency (acceptance there / α*), and
/// where the time went.
struct SpeculaReport: Encodable {
    var method: String
    var drafter: String
    var shape: String
    var verifier: String
    var rounds: Int
    var tokensPerPass: Double
    var draftedTokens: Int
    var acceptedTokens: Int
    var acceptance: Double?
    var alphaStar: Double?
    var efficiency: Double?
    var reachedPositions: Int
    var roundKinds: [String: Int]?
    var queuedSeconds: Double
    var promptSeconds: Double
    var firstTokenSeconds: Double
    var seconds: Double
    var draftSeconds: Double
    var targetPassSeconds: Double
    var verificationSeconds: Double
    var cachedPromptTokens: Int
    var timedOut: Bool

    init(plan: DecodingPlan, stats: GenerationStats, queued: Double, timedOut: Bool) {
        method = plan.spelling
        drafter = stats.drafter
        shape = stats.shape
        verifier = stats.verifier
        rounds = stats.rounds
        tokensPerPass = stats.tokensPerStep
        let t = stats.telemetry
        draftedTokens = t?.draftedTokens ?? 0
        acceptedTokens = t?.acceptedTokens ?? 0
        acceptance = draftedTokens > 0 ? stats.acceptanceRate : nil
        reachedPositions = t?.reachedNodes ?? 0
        alphaStar = reachedPositions > 0 ? stats.optimalAcceptance : nil
        efficiency = (t?.optimalSum ?? 0) > 0 ? stats.efficiency : nil
        roundKinds = stats.adaptive?.rounds
        queuedSeconds = queued
        promptSeconds = stats.prefillSeconds
        firstTokenSeconds = stats.firstTokenSeconds
        seconds = stats.seconds
        draftSeconds = stats.draftSeconds
        targetPassSeconds = stats.targetPassSeconds
        verificationSeconds = stats.verificationSeconds
        cachedPromptTokens = stats.cachedPromptTokens
        self.timedOut = timedOut
    }
}

/// llama-server's `timings` object, so that tools reading it read ours.
struct Timings: Encodable {
    var promptN: Int
    var promptMs: Double
    var promptPerSecond: Double
    var predictedN: Int
    var predictedMs: Double
    var predictedPerTokenMs: Double
    var predictedPerSecond: Double
    var draftN: Int
    var draftNAccepted: Int

    init(_ stats: GenerationStats) {
        promptN = stats.promptTokens - stats.cachedPromptTokens
        promptMs = stats.prefillSeconds * 1000
        promptPerSecond = stats.prefillSeconds > 0 ? Double(promptN) / stats.prefillSeconds : 0
        predictedN = stats.generatedTokens
        let decoding = max(0, stats.seconds - stats.prefillSeconds)
        predictedMs = decoding * 1000
        predictedPerTokenMs = predictedN > 0 ? predictedMs / Double(predictedN) : 0
        predictedPerSecond = decoding > 0 ? Double(predictedN) / decoding : 0
        draftN = stats.telemetry?.draftedTokens ?? 0
        draftNAccepted = stats.telemetry?.acceptedTokens ?? 0
    }
}

/// Chat log-probabilities: `{"content": [{token, logprob, bytes, top_logprobs}]}`.
struct ChatLogprobs: Encodable {
    var content: [Entry]

    struct Entry: Encodable {
        var token: String
        var logprob: Double
        var bytes: [UInt8]
        var topLogprobs: [Alternative]
    }

    struct Alternative: Encodable {
        var token: String
        var logprob: Double
        var bytes: [UInt8]
    }

    init(_ logprobs: [TokenLogprob], tokenizer: Tokenizer) {
        func text(_ token: Int) -> ([UInt8], String) {
            let bytes = tokenizer.bytes(of: token, renderSpecial: true)
            return (bytes, String(decoding: bytes, as: UTF8.self))
        }
        content = logprobs.map { entry in
            let (bytes, token) = text(entry.token)
            return Entry(
                token: token, logprob: entry.logprob, bytes: bytes,
                topLogprobs: entry.top.map {
                    let (bytes, token) = text($0.token)
                    return Alternative(token: token, logprob: $0.logprob, bytes: bytes)
                })
        }
    }
}

/// Completion log-probabilities, the legacy shape: parallel arrays and a map per position.
struct CompletionLogprobs: Encodable {
    var tokens: [String]
    var tokenLogprobs: [Double]
    var topLogprobs: [[String: Double]]
    var textOffset: [Int]

    init(_ logprobs: [TokenLogprob], tokenizer: Tokenizer, offset: Int) {
        var offset = offset
        tokens = []
        tokenLogprobs = []
        topLogprobs = []
        textOffset = []
        for entry in logprobs {
            let text = String(decoding: tokenizer.bytes(of: entry.token, renderSpecial: true), as: UTF8.self)
            tokens.append(text)
            tokenLogprobs.append(entry.logprob)
            var top: [String: Double] = [:]
            for alternative in entry.top {
                let key = String(decoding: tokenizer.bytes(of: alternative.token, renderSpecial: true), as: UTF8.self)
                top[key] = max(top[key] ?? -.infinity, alternative.logprob)
            }
            topLogprobs.append(top)
            textOffset.append(offset)
            offset += text.utf8.count
        }
    }
}

/// One choice of a response or a chunk.
struct Choice: Encodable {
    var index = 0
    /// Chat, whole response.
    var message: Message?
    /// Chat, a streamed chunk.
    var delta: Delta?
    /// Completions.
    var text: String?
    var logprobs: AnyLogprobs?
    var finishReason: String?

    struct Message: Encodable {
        var role = "assistant"
        var content: String
    }

    struct Delta: Encodable {
        var role: String?
        var content: String?
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(index, forKey: .index)
        try container.encodeIfPresent(message, forKey: .message)
        try container.encodeIfPresent(delta, forKey: .delta)
        try container.encodeIfPresent(text, forKey: .text)
        try container.encode(logprobs, forKey: .logprobs)
        try container.encode(finishReason, forKey: .finishReason)
    }

    enum CodingKeys: String, CodingKey { case index, message, delta, text, logprobs, finishReason }
}

enum AnyLogprobs: Encodable {
    case chat(ChatLogprobs)
    case completion(CompletionLogprobs)

    func encode(to encoder: any Encoder) throws {
        switch self {
        case .chat(let value): try value.encode(to: encoder)
        case .completion(let value): try value.encode(to: encoder)
        }
    }
}

/// A whole response or one streamed chunk.
struct CompletionBody: Encodable {
    var id: String
    var object: String
    var created: Int
    var model: String
    var systemFingerprint: String
    var choices: [Choice]
    var usage: Usage?
    var timings: Timings?
    var specula: SpeculaReport?
}

enum WireJSON {
    static func encoder() -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.outputFormatting = [.withoutEscapingSlashes]
        encoder.nonConformingFloatEncodingStrategy = .convertToString(
            positiveInfinity: "Infinity", negativeInfinity: "-Infinity", nan: "NaN")
        return encoder
    }

    static func data(_ value: some Encodable) throws -> Data { try encoder().encode(value) }
}

extension FinishReason {
    /// OpenAI's finish reasons: a stop token or a stop sequence is `stop`, the token limit `length`.
    var openAI: String {
        switch self {
        case .stop, .stopSequence, .cancelled: return "stop"
        case .length: return "length"
        }
    }
}
