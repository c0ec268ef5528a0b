/// Llama (`general.architecture = llama`, SmolLM2): pre-norm decoder, RMSNorm, grouped-query attention, RoPE on
/// adjacent pairs (GGUF llama files store q/k permuted for it), SwiGLU; tied embeddings when `output.weight` is absent.
enum Llama {
    static func config(_ file: GGUFFile) throws -> ModelConfig {
        var config = try ModelConfig.common(file, "llama", style: .interleaved, activation: .silu)
        if let dimensions = try? file.integer("llama.rope.dimension_count"), dimensions != config.headDimension {
            throw ModelError.invalid(
                path: file.path,
                reason: "partial rotary embeddings (\(dimensions) of \(config.headDimension)) are not supported")
        }
        config.hasQKVBias = false
        return config
    }
}
