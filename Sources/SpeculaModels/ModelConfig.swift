import SpeculaKernels

/// What differs between the supported architectures; each architecture file (`Qwen2.swift`, `Llama.swift`,
/// `Gemma3.swift`) builds one from its GGUF metadata.
public struct ModelConfig: Sendable {
    public typealias Activation = Ops.GateActivation

    public var architecture: String
    public var embeddingLength: Int
    public var layerCount: Int
    public var feedForwardLength: Int
    public var headCount: Int
    public var kvHeadCount: Int
    public var headDimension: Int
    public var contextLength: Int
    public var normEpsilon: Float
    public var ropeBase: Double
    public var ropeStyle: Ops.RopeStyle
    public var activation: Activation
    /// Multiply the token embedding by this (Gemma: sqrt(embeddingLength)).
    public var embeddingScale: Float = 1
    /// Scale of q·k (1/sqrt(headDimension) unless the architecture says otherwise).
    public var attentionScale: Float
    /// Biases on the q, k, v projections (qwen2).
    public var hasQKVBias = false
    /// RMSNorm of each query and key head before RoPE (gemma3).
    public var hasQKNorm = false
    /// RMSNorm of the attention and feed-forward outputs before the residual add (gemma3).
    public var hasPostNorms = false
    /// Sliding-window attention: the window, and which layers use it (the others are global).
    public var slidingWindow: Int? = nil
    public var slidingLayers: Set<Int> = []
    /// RoPE base of the sliding layers (gemma3 uses 10,000 there).
    public var slidingRopeBase: Double? = nil

    public var queryWidth: Int { headCount * headDimension }
    public var kvWidth: Int { kvHeadCount * headDimension }

    /// The configuration of a GGUF model, or an error naming the unsupported architecture or the missing key.
    public static func from(_ file: GGUFFile) throws -> ModelConfig {
        let architecture = try file.string("general.architecture")
        let config: ModelConfig
        switch architecture {
        case "qwen2": config = try Qwen2.config(file)
        case "llama": config = try Llama.config(file)
        case "gemma3": config = try Gemma3.config(file)
        default:
            throw ModelError.unsupportedArchitecture(path: file.path, architecture: architecture)
        }
        try config.validate(path: file.path)
        return config
    }

    /// The largest values a configuration may hold: each sizes an allocation (a layer array, a KV cache row, a
    /// buffer per token), so a file's metadata is checked against them before anything is allocated from it.
    public static let limits = (
        width: 1 << 16, layers: 1 << 10, feedForward: 1 << 20, heads: 1 << 10, headDimension: 1 << 12,
        context: 1 << 24
    )

    /// Checks every count and size against ``limits`` and against each other; an error names the key.
    func validate(path: String) throws {
        func check(_ key: String, _ value: Int, _ range: ClosedRange<Int>) throws {
            if !range.contains(value) {
                throw ModelError.invalid(
                    path: path, reason: "metadata \(architecture).\(key) = \(value) is outside \(range)")
            }
        }
        let limits = Self.limits
        try check("embedding_length", embeddingLength, 1...limits.width)
        try check("block_count", layerCount, 1...limits.layers)
        try check("feed_forward_length", feedForwardLength, 1...limits.feedForward)
        try check("attention.head_count", headCount, 1...limits.heads)
        try check("attention.head_count_kv", kvHeadCount, 1...headCount)
        try check("attention.key_length", headDimension, 2...limits.headDimension)
        try check("context_length", contextLength, 1...limits.context)
        if let slidingWindow { try check("attention.sliding_window", slidingWindow, 1...limits.context) }
        if !(normEpsilon.isFinite && normEpsilon > 0) {
            throw ModelError.invalid(path: path, reason: "metadata layer_norm_rms_epsilon = \(normEpsilon) is not > 0")
        }
        for (name, base) in [("rope.freq_base", ropeBase), ("sliding rope base", slidingRopeBase ?? 1)]
        where !(base.isFinite && base > 0) {
            throw ModelError.invalid(path: path, reason: "metadata \(name) = \(base) is not a positive number")
        }
    }

    /// The common keys: `{arch}.embedding_length`, `block_count`, `feed_forward_length`, `attention.head_count`,
    /// `attention.head_count_kv`, `attention.layer_norm_rms_epsilon`, `rope.freq_base`, `context_length`.
    static func common(_ file: GGUFFile, _ arch: String, style: Ops.RopeStyle, activation: Activation) throws
        -> ModelConfig
    {
        let embedding = try file.integer("\(arch).embedding_length")
        let heads = try file.integer("\(arch).attention.head_count")
        let kvHeads = (try? file.integer("\(arch).attention.head_count_kv")) ?? heads
        let headDimension = (try? file.integer("\(arch).attention.key_length")) ?? embedding / max(heads, 1)
        // The counts are checked before a configuration is built from them (they size arrays and ranges).
        let blocks = try file.integer("\(arch).block_count")
        if !(1...Self.limits.layers).contains(blocks) {
            throw ModelError.invalid(
                path: file.path, reason: "metadata \(arch).block_count = \(blocks) is outside 1...\(Self.limits.layers)"
            )
        }
        guard heads > 0, kvHeads > 0, heads % kvHeads == 0, headDimension % 2 == 0 else {
            throw ModelError.invalid(path: file.path, reason: "head counts \(heads)/\(kvHeads) do not fit")
        }
        return ModelConfig(
            architecture: arch, embeddingLength: embedding, layerCount: blocks,
            feedForwardLength: try file.integer("\(arch).feed_forward_length"), headCount: heads, kvHeadCount: kvHeads,
            headDimension: headDimension, contextLength: try file.integer("\(arch).context_length"),
            normEpsilon: Float(try file.double("\(arch).attention.layer_norm_rms_epsilon")),
            ropeBase: (try? file.double("\(arch).rope.freq_base")) ?? 10_000, ropeStyle: style, activation: activation,
            attentionScale: 1 / Float(headDimension).squareRoot())
    }
}

/// A model that cannot be loaded or run.
public enum ModelError: Error, Sendable, Equatable, CustomStringConvertible {
    case unsupportedArchitecture(path: String, architecture: String)
    case missingTensor(path: String, name: String)
    case tensorShape(path: String, name: String, expected: [Int], actual: [Int])
    case invalid(path: String, reason: String)
    case contextOverflow(needed: Int, capacity: Int)
    case tokenOutOfRange(token: Int, vocabularySize: Int)

    public var description: String {
        switch self {
        case .unsupportedArchitecture(let path, let architecture):
            return "\(path): architecture '\(architecture)' is not supported (supported: qwen2, llama, gemma3)"
        case .missingTensor(let path, let name): return "\(path): tensor '\(name)' is missing"
        case .tensorShape(let path, let name, let expected, let actual):
            return "\(path): tensor '\(name)' has shape \(actual), expected \(expected)"
        case .invalid(let path, let reason): return "\(path): \(reason)"
        case .contextOverflow(let needed, let capacity):
            return "context overflow: \(needed) positions needed, the cache holds \(capacity)"
        case .tokenOutOfRange(let token, let size): return "token \(token) is outside the vocabulary 0..<\(size)"
        }
    }
}
