/// Gemma 3 (`general.architecture = gemma3`): embeddings scaled by sqrt(width); RMSNorm of each query and key head;
/// RMSNorm after attention and after the feed-forward, before each residual add; GELU (tanh) gated feed-forward;
/// five sliding-window layers (window `attention.sliding_window`, RoPE base 10,000) for every global one (RoPE base
/// `rope.freq_base`); attention scale 1/sqrt(key_length); tied embeddings. (GGUF files store the norm weights with
/// Gemma's +1 already added.)
enum Gemma3 {
    static func config(_ file: GGUFFile) throws -> ModelConfig {
        var config = try ModelConfig.common(file, "gemma3", style: .halves, activation: .geluTanh)
        config.embeddingScale = Float(config.embeddingLength).squareRoot()
        config.hasQKNorm = true
        config.hasPostNorms = true
        config.slidingWindow = try file.integer("gemma3.attention.sliding_window")
        config.slidingLayers = Set((0..<config.layerCount).filter { ($0 + 1) % 6 != 0 })
        config.slidingRopeBase = 10_000
        return config
    }
}
