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
        switch architecture {
        case "qwen2": return try Qwen2.config(file)
        case "llama": return try Llama.config(file)
        case "gemma3": return try Gemma3.config(file)
        default:
            throw ModelError.unsupportedArchitecture(path: file.path, architecture: architecture)
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
        guard heads > 0, kvHeads > 0, heads % kvHeads == 0, headDimension % 2 == 0 else {
            throw ModelError.invalid(path: file.path, reason: "head counts \(heads)/\(kvHeads) do not fit")
        }
        return ModelConfig(
            architecture: arch, embeddingLength: embedding, layerCount: try file.integer("\(arch).block_count"),
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
