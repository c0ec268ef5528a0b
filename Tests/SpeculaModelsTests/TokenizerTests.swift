import Foundation
import SpeculaModels
import Testing

/// Golden ids from llama.cpp's tokenizer (scripts/make-tokenizer-golden.py) on a varied corpus, compared exactly.
@Suite("Tokenizers against llama.cpp's", .enabled(if: PinnedModels.allPresent || PinnedModels.required))
struct TokenizerTests {
    struct Case: Decodable {
        var bytes: String
        var parseSpecial: Bool
        var ids: [Int]
    }
    struct Model: Decodable {
        var file: String
        var cases: [Case]
    }
    struct Golden: Decodable { var models: [String: Model] }

    static let golden: Golden? = {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("Fixtures/tokenizer-golden.json")
        guard let data = try? Data(contentsOf: url) else { return nil }
        return try? JSONDecoder().decode(Golden.self, from: data)
    }()

    static func bytes(_ hex: String) -> [UInt8] {
        var result: [UInt8] = []
        var index = hex.startIndex
        while index < hex.endIndex {
            let next = hex.index(index, offsetBy: 2)
            result.append(UInt8(hex[index..<next], radix: 16) ?? 0)
            index = next
        }
        return result
    }

    static func tokenizer(_ name: String) throws -> Tokenizer {
        guard let path = PinnedModels.path(name) else {
            throw TokenizerError.invalid(path: name, reason: "model missing: run scripts/fetch-models")
        }
        return try Tokenizer(gguf: GGUFFile(path: path))
    }

    @Test(arguments: ["qwen2", "smollm2", "gemma3"])
    func matchesLlamaCpp(model: String) throws {
        let golden = try #require(Self.golden?.models[model])
        let tokenizer = try Self.tokenizer(model)
        var failures = 0
        for c in golden.cases {
            let input = Self.bytes(c.bytes)
            let ids = tokenizer.encode(bytes: input, addSpecial: true, parseSpecial: c.parseSpecial)
            if ids != c.ids {
                failures += 1
                if failures <= 5 {
                    Issue.record(
                        "\(model) special=\(c.parseSpecial) text \(String(decoding: input, as: UTF8.self).debugDescription.prefix(60)): ours \(ids.prefix(40)) vs \(c.ids.prefix(40))"
                    )
                }
            }
        }
        #expect(failures == 0, "\(model): \(failures) of \(golden.cases.count) cases differ")
    }

    /// Decoding what was encoded gives the text back (valid UTF-8, no special tokens involved).
    @Test(arguments: ["qwen2", "smollm2", "gemma3"])
    func roundTrip(model: String) throws {
        let tokenizer = try Self.tokenizer(model)
        let text = "def f(x):\n    return x ** 2  # 你好 🤖 naïve\n\n\tdone  "
        let ids = tokenizer.encode(text, addSpecial: false)
        #expect(tokenizer.decode(ids) == text)
    }

    /// SmolLM2's vocabulary has no token for some control bytes (0x1D among them). Such a byte is dropped, as
    /// llama.cpp's BPE drops a byte it has no token for (llama-vocab.cpp); it used to become the unknown token, which
    /// in SmolLM2 is id 0, `<|endoftext|>`, in the middle of plain text. Found by the tokenizer fuzz target.
    @Test func aByteWithNoTokenIsDroppedNotMadeSpecial() throws {
        let tokenizer = try Self.tokenizer("smollm2")
        let ids = tokenizer.encode("trailing \u{1D} end", addSpecial: false)
        #expect(ids.allSatisfy { tokenizer.types[$0] == .normal }, "\(ids)")
        #expect(tokenizer.decode(ids) == "trailing  end")
        // The bytes it lacks: 0x1D among them, and 0xF1 (the lead byte of a 4-byte character such as U+5FED0, which
        // then decodes as three replacement characters — llama.cpp's encoding drops the same byte).
        let missing = tokenizer.bytesWithoutToken
        #expect(missing.contains(0x1D) && missing.contains(0xF1), "\(missing)")
        for model in ["qwen2", "gemma3"] { #expect(try Self.tokenizer(model).bytesWithoutToken.isEmpty, "\(model)") }
    }

    /// The streaming detokenizer never emits half a character: feed an emoji's byte tokens one at a time. For
    /// Gemma's SentencePiece the rare characters come as byte-fallback pieces (`<0xF0>` …), checked to occur.
    @Test(arguments: ["qwen2", "smollm2", "gemma3"])
    func streamingNeverBreaksCharacters(model: String) throws {
        let tokenizer = try Self.tokenizer(model)
        let text = "🤖👩‍👩‍👧‍👦 héllo 东京 𓀀𓂀 \u{E000}\u{10FFFD}"
        let ids = tokenizer.encode(text, addSpecial: false)
        var detokenizer = StreamingDetokenizer(tokenizer: tokenizer)
        var output = ""
        for id in ids {
            let piece = detokenizer.append(id)
            #expect(!piece.contains("\u{FFFD}"), "broken character after token \(id)")
            output += piece
        }
        output += detokenizer.finish()
        #expect(output == text)
        if model == "gemma3" {
            #expect(ids.contains { tokenizer.tokens[$0].hasPrefix("<0x") }, "no byte-fallback piece was exercised")
        }
    }

    @Test func specialTokens() throws {
        let tokenizer = try Self.tokenizer("qwen2")
        let imStart = try #require(tokenizer.tokens.firstIndex(of: "<|im_start|>"))
        #expect(tokenizer.encode("<|im_start|>", addSpecial: false, parseSpecial: true) == [imStart])
        #expect(tokenizer.encode("<|im_start|>", addSpecial: false, parseSpecial: false) != [imStart])
        #expect(tokenizer.endOfGeneration.contains(try #require(tokenizer.tokens.firstIndex(of: "<|im_end|>"))))
        #expect(tokenizer.decode([imStart]) == "")
        #expect(tokenizer.decode([imStart], renderSpecial: true) == "<|im_start|>")
    }
}

/// One megabyte of mixed text (Spec-Bench's prompts with code, whitespace runs, numbers, ten scripts, emoji and
/// special-token text between them) against llama.cpp's ids, on all three tokenizers, with and without special-token
/// parsing. The text is rebuilt here from the recipe in the fixture (scripts/make-tokenizer-1mb-golden.py); the
/// fixture keeps llama.cpp's id count and a hash of each block of 4,096 ids, so a failure names the first block
/// that differs and shows the text there.
@Suite("Tokenizers on a megabyte against llama.cpp's", .enabled(if: PinnedModels.allPresent || PinnedModels.required))
struct TokenizerMegabyteTests {
    struct Setting: Decodable {
        var count: Int
        var blocks: [String]
    }
    struct Model: Decodable {
        var file: String
        var plain: Setting
        var special: Setting
    }
    struct Golden: Decodable {
        var source: String
        var seed: UInt64
        var bytes: Int
        var extras: [String]
        var block: Int
        var textLength: Int
        var textFNV1a64: String
        var models: [String: Model]
    }
    struct Question: Decodable { var turns: [String] }

    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    static func golden() throws -> Golden {
        let url = root.appendingPathComponent("Tests/SpeculaModelsTests/Fixtures/tokenizer-1mb-golden.json")
        return try JSONDecoder().decode(Golden.self, from: Data(contentsOf: url))
    }

    static func fnv1a64<S: Sequence>(_ bytes: S) -> String where S.Element == UInt8 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in bytes { h = (h ^ UInt64(byte)) &* 0x100_0000_01b3 }
        let hex = String(h, radix: 16)
        return String(repeating: "0", count: 16 - hex.count) + hex
    }

    /// The recipe of scripts/make-tokenizer-1mb-golden.py: splitmix64 picks a turn, then an extra; pieces are
    /// appended while the text stays within `bytes`.
    static func text(_ golden: Golden) throws -> [UInt8] {
        let lines = try String(contentsOf: root.appendingPathComponent(golden.source), encoding: .utf8)
            .split(separator: "\n", omittingEmptySubsequences: true)
        let turns = try lines.flatMap { try JSONDecoder().decode(Question.self, from: Data($0.utf8)).turns }
        var state = golden.seed
        func next() -> UInt64 {
            state &+= 0x9e37_79b9_7f4a_7c15
            var z = state
            z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
            z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
            return z ^ (z >> 31)
        }
        var text: [UInt8] = []
        while true {
            let turn = turns[Int(next() % UInt64(turns.count))]
            let extra = golden.extras[Int(next() % UInt64(golden.extras.count))]
            let piece = Array((turn + "\n" + extra).utf8)
            if text.count + piece.count > golden.bytes { return text }
            text += piece
        }
    }

    /// The recipe itself is checked first, so that a changed text is not reported as a tokenizer difference.
    @Test func theTextIsTheOneLlamaCppTokenized() throws {
        let golden = try Self.golden()
        let text = try Self.text(golden)
        #expect(text.count == golden.textLength)
        #expect(Self.fnv1a64(text) == golden.textFNV1a64)
    }

    @Test(arguments: ["qwen2", "smollm2", "gemma3"], [false, true])
    func sameIdsAsLlamaCpp(model: String, parseSpecial: Bool) throws {
        let golden = try Self.golden()
        let expected = try #require(golden.models[model])
        let setting = parseSpecial ? expected.special : expected.plain
        let text = try Self.text(golden)
        try #require(Self.fnv1a64(text) == golden.textFNV1a64, "the text's recipe changed")
        let tokenizer = try TokenizerTests.tokenizer(model)
        let ids = tokenizer.encode(bytes: text, addSpecial: true, parseSpecial: parseSpecial)
        var blocks: [String] = []
        var start = 0
        while start < ids.count {
            let end = min(start + golden.block, ids.count)
            var bytes: [UInt8] = []
            bytes.reserveCapacity(4 * (end - start))
            for id in ids[start..<end] { withUnsafeBytes(of: Int32(id).littleEndian) { bytes += $0 } }
            blocks.append(Self.fnv1a64(bytes))
            start = end
        }
        #expect(ids.count == setting.count, "\(model): \(ids.count) ids, llama.cpp \(setting.count)")
        if let first = blocks.indices.first(where: { $0 >= setting.blocks.count || blocks[$0] != setting.blocks[$0] }) {
            let from = first * golden.block
            let shown = ids[from..<min(from + 24, ids.count)]
            Issue.record(
                "\(model) parseSpecial=\(parseSpecial): block \(first) (ids \(from)…) differs from llama.cpp's; ours begin \(Array(shown)), decoding to \(tokenizer.decode(Array(shown)).debugDescription)"
            )
        } else {
            #expect(blocks.count == setting.blocks.count)
        }
    }
}

@Suite("SentencePiece cuts", .enabled(if: PinnedModels.allPresent || PinnedModels.required))
struct SentencePieceCutTests {
    /// The encoder cuts the text between characters that no token holds side by side. Gemma 3 has one token with
    /// `▁` after another character, `>▁</`; around it there must be no cut. Expected ids: llama.cpp's tokenizer
    /// (llama-cpp-python 0.3.36, `Llama(vocab_only=True).tokenize(text, add_bos=False, special=False)`).
    @Test(arguments: [
        ("<p> </p>", [236820, 236758, 107068, 236758, 236813]),
        ("x> </y", [236781, 107068, 236762]),
        (
            "<b>bold</b> <i> </i>\n\n  a> </div>",
            [200, 15640, 209, 236743, 201, 236743, 210, 108, 138, 236746, 236813, 236743, 235]
        ),
    ])
    func noCutInsideAToken(text: String, expected: [Int]) throws {
        let gemma = try TokenizerTests.tokenizer("gemma3")
        #expect(gemma.encode(text, addSpecial: false) == expected)
    }
}

@Suite("Draft/target tokenizer comparison", .enabled(if: PinnedModels.allPresent || PinnedModels.required))
struct TokenizerComparisonTests {
    @Test func thePinnedPairShareOneTokenizer() throws {
        let target = try TokenizerTests.tokenizer("target")
        let draft = try TokenizerTests.tokenizer("draft")
        try target.requireSameVocabulary(as: draft)
    }

    @Test func differentVocabulariesNameTheFirstDifference() throws {
        let target = try TokenizerTests.tokenizer("target")
        let smol = try TokenizerTests.tokenizer("smollm2")
        do {
            try target.requireSameVocabulary(as: smol)
            Issue.record("Qwen and SmolLM2 vocabularies compared equal")
        } catch let error as TokenizerError {
            #expect(
                error.description.contains("gpt2 with pre-tokenizer qwen2 vs gpt2 with pre-tokenizer smollm"),
                "\(error)")
        }
        let gemma = try TokenizerTests.tokenizer("gemma3")
        #expect(throws: TokenizerError.self) { try target.requireSameVocabulary(as: gemma) }
    }
}

@Suite("Tokenizer comparison on crafted vocabularies")
struct CraftedTokenizerComparisonTests {
    /// A byte-level BPE tokenizer (`gpt2`) from a file holding only these tokens and merges.
    static func byteLevelTokenizer(tokens: [String], merges: [String]) throws -> Tokenizer {
        var b = GGUFBuilder()
        b.bytes += Array("GGUF".utf8)
        b.u32(3)
        b.u64(0)
        b.u64(3)
        b.string("tokenizer.ggml.model")
        b.u32(8)
        b.string("gpt2")
        b.string("tokenizer.ggml.tokens")
        b.u32(9)
        b.u32(8)
        b.u64(UInt64(tokens.count))
        for t in tokens { b.string(t) }
        b.string("tokenizer.ggml.merges")
        b.u32(9)
        b.u32(8)
        b.u64(UInt64(merges.count))
        for m in merges { b.string(m) }
        return try Tokenizer(gguf: GGUFFile(file: MappedFile(copying: b.bytes)))
    }

    @Test func firstDifferingTokenIsNamed() throws {
        func tokenizer(_ tokens: [String]) throws -> Tokenizer {
            try Self.byteLevelTokenizer(tokens: tokens, merges: ["a b"])
        }
        let bytes = (0..<256).map { String(Character(Unicode.Scalar(UInt8($0)))) }
        // Bytes as GPT-2 characters are not all printable; the builder only needs most single-byte tokens.
        let base = Array(Set(bytes)).sorted() + ["ab"]
        var changed = base
        changed[5] = "zz"
        let a = try tokenizer(base)
        let b = try tokenizer(changed)
        #expect(
            throws: TokenizerError.mismatch(
                reason: "token 5 is \(base[5].debugDescription) in the target, \"zz\" in the draft")
        ) {
            try a.requireSameVocabulary(as: b)
        }
        #expect(throws: TokenizerError.self) { try a.requireSameVocabulary(as: try tokenizer(base + ["extra"])) }
        try a.requireSameVocabulary(as: try tokenizer(base))
    }

    /// The merge table finds tokens by their texts' bytes: the first of two tokens with one text wins, a merge of
    /// multi-byte characters (`Ġ`, a space) applies, a merge whose result is not a token is skipped, and a merge with
    /// no space is an error that names it.
    @Test func mergesFindTokensByTheirTexts() throws {
        // GPT-2's byte characters: printable Latin-1 bytes as themselves, the others from U+0100 in byte order.
        var next: UInt32 = 256
        let byteTexts = (0..<256).map { byte -> String in
            let printable = (0x21...0x7E).contains(byte) || (0xA1...0xAC).contains(byte) || (0xAE...0xFF).contains(byte)
            if printable { return String(Character(Unicode.Scalar(UInt8(byte)))) }
            defer { next += 1 }
            return String(Character(Unicode.Scalar(next) ?? " "))
        }
        #expect(byteTexts[0x20] == "Ġ")
        let tokens = byteTexts + ["ab", "Ġa", "ab", "Ġab"]
        let bpe = try Self.byteLevelTokenizer(tokens: tokens, merges: ["a b", "Ġ a", "x y", "Ġa b"])
        let id = { (text: String) in tokens.firstIndex(of: text) ?? -1 }
        #expect(bpe.encode("ab", addSpecial: false) == [256])
        #expect(bpe.encode(" a", addSpecial: false) == [257])
        // Lowest rank first: `a b` (rank 0) merges before `Ġ a` can, and no merge joins `Ġ` with `ab`.
        #expect(bpe.encode(" ab", addSpecial: false) == [32, 256])
        #expect(bpe.encode("xy", addSpecial: false) == [id("x"), id("y")])
        #expect(throws: TokenizerError.invalid(path: "<memory>", reason: "merge 1 'ab' has no space")) {
            try Self.byteLevelTokenizer(tokens: tokens, merges: ["a b", "ab"])
        }
    }
}
