import Foundation
import SpeculaKernels
import SpeculaModels
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
