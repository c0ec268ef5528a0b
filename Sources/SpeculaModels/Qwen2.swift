/// Qwen2 (`general.architecture = qwen2`): pre-norm decoder, RMSNorm, biases on the q/k/v projections, grouped-query
/// attention, RoPE on halves (NeoX style), SwiGLU feed-forward; the output matrix may be tied to the embedding.
enum Qwen2 {
    static func config(_ file: GGUFFile) throws -> ModelConfig {
        var config = try ModelConfig.common(file, "qwen2", style: .halves, activation: .silu)
        config.hasQKVBias = true
        return config
    }
}
