import Foundation
import SpeculaKernels
import SpeculaModels
import SpeculaTestSupport
import Testing

/// Model files and chat templates that would make a careless loader allocate from garbage or a careless evaluator
/// trap: each is a clear error.
@Suite("Hostile model metadata and templates")
struct HostileModelInputTests {
    /// The synthetic model's file with the uint32 value of metadata `key` rewritten as an int32 or uint32 `value`.
    static func mutated(_ key: String, to value: Int64) throws -> [UInt8] {
        var bytes = SyntheticModel(seed: 3).fileBytes()
        let name = Array(key.utf8)
        let start = try #require(
            (0..<(bytes.count - name.count)).first { bytes[$0..<($0 + name.count)].elementsEqual(name) })
        let typeAt = start + name.count
        // GGUF value types: 4 = uint32, 5 = int32.
        #expect(bytes[typeAt] == 4)
        let signed = value < 0
        bytes[typeAt] = signed ? 5 : 4
        let pattern = UInt32(truncatingIfNeeded: value)
        for k in 0..<4 { bytes[typeAt + 4 + k] = UInt8((pattern >> (8 * UInt32(k))) & 0xFF) }
        return bytes
    }

    @Test(
        arguments: [
            ("llama.block_count", -3), ("llama.block_count", 0), ("llama.block_count", 4_000_000),
            ("llama.context_length", -1), ("llama.context_length", 0), ("llama.context_length", 4_000_000_000),
            ("llama.embedding_length", 0), ("llama.embedding_length", 4_000_000_000),
            ("llama.feed_forward_length", -7), ("llama.attention.head_count", -2), ("llama.attention.head_count_kv", 0),
            ("llama.attention.head_count_kv", 3),
        ] as [(String, Int64)])
    func badCountsAreErrorsBeforeAnyAllocation(key: String, value: Int64) throws {
        let bytes = try Self.mutated(key, to: value)
        let file = try GGUFFile(file: MappedFile(copying: bytes, name: "mutated"))
        #expect(throws: ModelError.self, "\(key) = \(value)") { try Transformer(file: file) }
    }

    /// A consistent file whose widths are not whole 32-value activation blocks (embedding 16, feed-forward 48) is
    /// refused when it loads; it used to load and stop the process at its first forward pass. Found by the model-file
    /// fuzz target (its input is in Fuzz/Regressions/gguf).
    @Test func widthsThatAreNotWholeBlocksAreRefused() throws {
        var model = SyntheticModel(seed: 4)
        model.embeddingLength = 16
        model.feedForwardLength = 48
        let file = try GGUFFile(file: MappedFile(copying: model.fileBytes(), name: "narrow"))
        #expect {
            try Transformer(file: file, pool: SyntheticModel.serialPool)
        } throws: { error in
            "\(error)".contains("multiple of 32")
        }
    }

    static func render(_ source: String) throws -> String {
        try ChatTemplate(source: source).render(messages: [], addGenerationPrompt: false)
    }

    @Test func integerArithmeticIsCheckedAndFloorsLikePython() throws {
        for overflow in [
            "{{ 9223372036854775807 + 1 }}", "{{ -9223372036854775807 - 2 }}", "{{ 4611686018427387904 * 2 }}",
            "{{ (-9223372036854775807 - 1) // -1 }}", "{{ -(-9223372036854775807 - 1) }}",
        ] {
            #expect(throws: TemplateError.self, "\(overflow)") { try Self.render(overflow) }
        }
        // Values jinja2 (Python) gives.
        #expect(try Self.render("{{ 7 // -2 }} {{ -7 // 2 }} {{ 7 // 2 }} {{ -7 % 3 }} {{ 7 % -3 }}") == "-4 -4 3 2 -2")
        #expect(try Self.render("{{ (-9223372036854775807 - 1) % -1 }}") == "0")
    }

    @Test func deepNestingIsAnErrorNotACrash() {
        let deep = [
            "{{ " + String(repeating: "(", count: 5000) + "1" + String(repeating: ")", count: 5000) + " }}",
            "{{ " + String(repeating: "-", count: 5000) + "1 }}",
            "{{ " + String(repeating: "not ", count: 5000) + "1 }}",
            "{{ 1" + String(repeating: " + 1", count: 50_000) + " }}",
            "{{ x" + String(repeating: ".a", count: 50_000) + " }}",
            "{{ 'a'" + String(repeating: "|trim", count: 50_000) + " }}",
            String(repeating: "{% if true %}", count: 5000) + String(repeating: "{% endif %}", count: 5000),
        ]
        for source in deep {
            #expect(throws: TemplateError.self, "\(source.prefix(20))") { try Self.render(source) }
        }
        // Ordinary nesting still renders.
        #expect((try? Self.render("{{ ((1 + 2) * (3 - 4)) }}")) == "-3")
    }
}

/// Random mutations of a whole model file (the synthetic llama model: metadata, tokenizer, template, tensors), each
/// taken through parsing, loading the model, its tokenizer and template, and one forward pass: every step either
/// succeeds or throws; none crashes.
@Suite("Mutated model files load or fail cleanly")
struct MutatedModelTests {
    @Test func randomMutationsLoadOrFail() throws {
        let valid = SyntheticModel(seed: 5).fileBytes()
        var random = MutationRandom(state: 0x5EED_CAFE)
        func next() -> UInt64 { random.next() }
        // Where the metadata and tensor table end (everything before the first tensor's data).
        let header = try GGUFFile(file: MappedFile(copying: valid, name: "valid")).dataOffset
        var stages = [0, 0, 0]  // rejected by the parser, rejected by the loader, loaded (and ran a pass)
        var textRejected = 0  // loaded, but the tokenizer or the template was refused
        let rounds = 5000
        for _ in 0..<rounds {
            var bytes = valid
            for _ in 0..<(1 + Int(next() % 3)) {
                // Mostly in the metadata and the tensor table, where a bad value sizes things.
                let span = next() % 4 == 0 ? bytes.count : header
                let position = Int(next() % UInt64(span))
                switch next() % 4 {
                case 0: bytes[position] = UInt8(truncatingIfNeeded: next())
                case 1: bytes[position] ^= UInt8(1 << (next() % 8))
                case 2: bytes[position] = [0x00, 0xFF, 0x7F, 0x80][Int(next() % 4)]
                default:
                    // A whole 4-byte field set to an extreme (a count, a length, a type, a dimension).
                    let value: UInt32 = [0, 1, 0x7FFF_FFFF, 0xFFFF_FFFF, 0x8000_0000, 65536][Int(next() % 6)]
                    for k in 0..<4 where position + k < bytes.count {
                        bytes[position + k] = UInt8((value >> (8 * UInt32(k))) & 0xFF)
                    }
                }
            }
            let file: GGUFFile
            do { file = try GGUFFile(file: MappedFile(copying: bytes, name: "mutated")) } catch {
                stages[0] += 1
                continue
            }
            let model: Transformer
            do { model = try Transformer(file: file, pool: SyntheticModel.serialPool) } catch {
                stages[1] += 1
                continue
            }
            do {
                let tokenizer = try Tokenizer(gguf: file)
                _ = tokenizer.encode("hello <|im_start|> world", parseSpecial: true)
                _ = tokenizer.decode([0, 1, 2, 255, 256])
                _ = try ChatTemplate.forModel(file)?.render(
                    messages: [ChatMessage(role: "user", content: "hi")], addGenerationPrompt: true)
            } catch {
                textRejected += 1
            }
            let cache = model.makeCache(capacity: 8)
            _ = try? model.forward(tokens: [1, 2], cache: cache, logitRows: [0, 1])
            stages[2] += 1
        }
        #expect(stages.reduce(0, +) == rounds)
        // Every stage is reached by some mutations.
        #expect(stages.allSatisfy { $0 > 0 } && textRejected > 0, "\(stages), \(textRejected)")
    }
}
