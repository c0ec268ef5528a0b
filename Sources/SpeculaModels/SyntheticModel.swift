import SpeculaKernels

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A tiny random `llama` model written as a real GGUF file: for exact tests of the whole engine (every forward
/// pass, cache commit and verification walk runs on it), for end-to-end runs of the benchmark protocols in
/// seconds, and for users who want to try a command without the pinned models (`specula synthetic`).
///
/// Weights are float32, drawn from a seeded generator; a draft is the same model plus `perturbation` times a second
/// random model, so its distributions are close to the target's without being equal. With
/// `vocabularySize == SyntheticModel.byteVocabularySize` the file also carries a byte-level tokenizer (one token
/// per byte, no merges, `<|endoftext|>`, `<|im_start|>`, `<|im_end|>`) and a ChatML chat template, so the CLI can
/// run on it; smaller vocabularies have no tokenizer and serve token-level tests.
public struct SyntheticModel: Sendable {
    public var vocabularySize: Int
    public var embeddingLength = 32
    public var layerCount = 2
    public var headCount = 2
    public var kvHeadCount = 1
    public var feedForwardLength = 64
    public var contextLength = 16384
    /// Standard deviation of a logit, roughly: larger makes the next-token distributions peakier.
    public var logitScale: Float = 3
    public var seed: UInt64
    /// 0 for a target; a draft adds this times a second random model drawn from `perturbationSeed`.
    public var perturbation: Float = 0
    public var perturbationSeed: UInt64 = 0x5EED

    /// 256 byte tokens and three special tokens.
    public static let byteVocabularySize = 259
    public static let specialTokens = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    public static let chatTemplate =
        "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + "
        + "'<|im_end|>' + '\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}"
        + "{% endif %}"

    public init(vocabularySize: Int = SyntheticModel.byteVocabularySize, seed: UInt64 = 1) {
        self.vocabularySize = vocabularySize
        self.seed = seed
    }

    /// A draft for this model: the same weights plus `perturbation` times a second random model.
    public func draft(perturbation: Float, seed: UInt64 = 0x5EED) -> SyntheticModel {
        var model = self
        model.perturbation = perturbation
        model.perturbationSeed = seed
        return model
    }

    public var hasTokenizer: Bool { vocabularySize == Self.byteVocabularySize }

    /// The GGUF file's bytes.
    public func fileBytes() -> [UInt8] {
        var writer = Writer()
        let tensors = tensorList()
        var metadata: [(String, Writer.Value)] = [
            ("general.architecture", .string("llama")),
            ("general.name", .string("specula-synthetic")),
            ("llama.embedding_length", .uint32(UInt32(embeddingLength))),
            ("llama.block_count", .uint32(UInt32(layerCount))),
            ("llama.feed_forward_length", .uint32(UInt32(feedForwardLength))),
            ("llama.attention.head_count", .uint32(UInt32(headCount))),
            ("llama.attention.head_count_kv", .uint32(UInt32(kvHeadCount))),
            ("llama.context_length", .uint32(UInt32(contextLength))),
            ("llama.attention.layer_norm_rms_epsilon", .float32(1e-5)),
            ("llama.rope.freq_base", .float32(10_000)),
        ]
        if hasTokenizer {
            let bytes = BytePairEncoding.byteCharacters.map { String(Character($0)) }
            metadata += [
                ("tokenizer.ggml.model", .string("gpt2")),
                ("tokenizer.ggml.pre", .string("qwen2")),
                ("tokenizer.ggml.tokens", .strings(bytes + Self.specialTokens)),
                ("tokenizer.ggml.token_type", .int32s([Int32](repeating: 1, count: 256) + [3, 3, 3])),
                ("tokenizer.ggml.merges", .strings([])),
                ("tokenizer.ggml.bos_token_id", .uint32(256)),
                ("tokenizer.ggml.eos_token_id", .uint32(258)),
                ("tokenizer.ggml.add_bos_token", .bool(false)),
                ("tokenizer.chat_template", .string(Self.chatTemplate)),
            ]
        }
        writer.header(tensorCount: tensors.count, metadata: metadata)
        var offset = 0
        for tensor in tensors {
            writer.tensorInfo(name: tensor.name, dimensions: tensor.dimensions, offset: offset)
            offset += (tensor.values.count * 4 + 31) / 32 * 32
        }
        writer.pad(to: 32)
        for tensor in tensors {
            for value in tensor.values { writer.u32(value.bitPattern) }
            writer.pad(to: 32)
        }
        return writer.bytes
    }

    /// Writes the GGUF file.
    public func write(to path: String) throws {
        let bytes = fileBytes()
        guard let handle = fopen(path, "wb") else {
            throw MappedFile.OpenError(path: path, reason: "cannot write: \(String(cString: strerror(errno)))")
        }
        let written = bytes.withUnsafeBytes { fwrite($0.baseAddress, 1, $0.count, handle) }
        let closed = fclose(handle)
        if written != bytes.count || closed != 0 {
            throw MappedFile.OpenError(path: path, reason: "cannot write: \(String(cString: strerror(errno)))")
        }
    }

    /// The model loaded from memory (no file). A tiny model gains nothing from threads: by default it runs on the
    /// calling thread alone (tests running in parallel then do not queue for the shared pool).
    public func load(pool: WorkerPool = SyntheticModel.serialPool) throws -> Transformer {
        try Transformer(
            file: GGUFFile(file: MappedFile(copying: fileBytes(), name: "<synthetic seed \(seed)>")), pool: pool)
    }

    public static let serialPool = WorkerPool(threadCount: 1)

    struct Tensor {
        var name: String
        var dimensions: [Int]
        var values: [Float]
    }

    /// Every tensor, weights of the target plus the perturbation.
    func tensorList() -> [Tensor] {
        var base = Noise(seed: seed)
        var extra = Noise(seed: perturbationSeed ^ 0x9E37_79B9_7F4A_7C15)
        let d = embeddingLength
        let headDimension = d / headCount
        let q = headCount * headDimension
        let kv = kvHeadCount * headDimension
        func matrix(_ name: String, columns: Int, rows: Int, scale: Float) -> Tensor {
            let count = columns * rows
            let values = (0..<count).map { _ in
                let a = base.next(scale: scale)
                let b = extra.next(scale: scale)
                return a + perturbation * b
            }
            return Tensor(name: name, dimensions: [columns, rows], values: values)
        }
        func norm(_ name: String) -> Tensor {
            let values = (0..<d).map { _ in 1 + base.next(scale: 0.1) + perturbation * extra.next(scale: 0.1) }
            return Tensor(name: name, dimensions: [d], values: values)
        }
        let unit = 1 / Float(d).squareRoot()
        var tensors = [matrix("token_embd.weight", columns: d, rows: vocabularySize, scale: 1)]
        for layer in 0..<layerCount {
            let p = "blk.\(layer)."
            tensors += [
                norm(p + "attn_norm.weight"),
                matrix(p + "attn_q.weight", columns: d, rows: q, scale: 2 * unit),
                matrix(p + "attn_k.weight", columns: d, rows: kv, scale: 2 * unit),
                matrix(p + "attn_v.weight", columns: d, rows: kv, scale: unit),
                matrix(p + "attn_output.weight", columns: q, rows: d, scale: unit),
                norm(p + "ffn_norm.weight"),
                matrix(p + "ffn_gate.weight", columns: d, rows: feedForwardLength, scale: unit),
                matrix(p + "ffn_up.weight", columns: d, rows: feedForwardLength, scale: unit),
                matrix(p + "ffn_down.weight", columns: feedForwardLength, rows: d, scale: unit),
            ]
        }
        tensors.append(norm("output_norm.weight"))
        tensors.append(matrix("output.weight", columns: d, rows: vocabularySize, scale: logitScale * unit))
        return tensors
    }

    /// Uniform noise with a given standard deviation (SplitMix64 underneath).
    struct Noise {
        var state: UInt64
        init(seed: UInt64) { state = seed }
        mutating func next(scale: Float) -> Float {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            z ^= z >> 31
            let uniform = Float(z >> 40) * 0x1p-24  // [0, 1)
            return (uniform * 2 - 1) * 1.732_050_8 * scale
        }
    }

    /// GGUF version 3, little-endian, alignment 32.
    struct Writer {
        enum Value {
            case string(String)
            case uint32(UInt32)
            case float32(Float)
            case bool(Bool)
            case strings([String])
            case int32s([Int32])
        }

        var bytes: [UInt8] = []

        mutating func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }
        mutating func u64(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }
        mutating func string(_ s: String) {
            u64(UInt64(s.utf8.count))
            bytes.append(contentsOf: Array(s.utf8))
        }
        mutating func pad(to alignment: Int) {
            while bytes.count % alignment != 0 { bytes.append(0) }
        }

        mutating func header(tensorCount: Int, metadata: [(String, Value)]) {
            bytes += Array("GGUF".utf8)
            u32(3)
            u64(UInt64(tensorCount))
            u64(UInt64(metadata.count))
            for (key, value) in metadata {
                string(key)
                switch value {
                case .string(let s):
                    u32(8)
                    string(s)
                case .uint32(let v):
                    u32(4)
                    u32(v)
                case .float32(let v):
                    u32(6)
                    u32(v.bitPattern)
                case .bool(let v):
                    u32(7)
                    bytes.append(v ? 1 : 0)
                case .strings(let values):
                    u32(9)
                    u32(8)
                    u64(UInt64(values.count))
                    for s in values { string(s) }
                case .int32s(let values):
                    u32(9)
                    u32(5)
                    u64(UInt64(values.count))
                    for v in values { u32(UInt32(bitPattern: v)) }
                }
            }
        }

        mutating func tensorInfo(name: String, dimensions: [Int], offset: Int) {
            string(name)
            u32(UInt32(dimensions.count))
            for d in dimensions { u64(UInt64(d)) }
            u32(TensorType.f32.rawValue)
            u64(UInt64(offset))
        }
    }
}
