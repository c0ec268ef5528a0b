import Foundation
import SpeculaTestSupport
import Testing

enum CLIModels {
    static let directory = TestModels.directory
    static let target = directory + "/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"
    static let gemma = directory + "/gemma-3-270m-q4_k_m.gguf"
    static let smollm = directory + "/smollm2-135m-instruct-q4_1.gguf"
    static let draft = directory + "/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"
    /// A file that is not GGUF (this test's own source).
    static let notGGUF = #filePath
    static var present: Bool {
        [target, gemma, smollm, draft].allSatisfy { FileManager.default.fileExists(atPath: $0) }
    }
    static var required: Bool { TestModels.required }
}

@Suite("specula inspect and tokenize on the pinned models", .enabled(if: CLIModels.present || CLIModels.required))
struct ModelCLITests {
    @Test func inspectPrintsTheModel() throws {
        let text = try runSpecula(["inspect", CLIModels.target])
        #expect(text.status == 0, "\(text.standardError)")
        #expect(text.standardOutput.contains("architecture  qwen2"))
        #expect(text.standardOutput.contains("Q4_K"))
        let json = try runSpecula(["inspect", "--json", CLIModels.target])
        let object = try #require(
            try JSONSerialization.jsonObject(with: Data(json.standardOutput.utf8)) as? [String: Any])
        #expect(object["architecture"] as? String == "qwen2")
        #expect(object["tensorCount"] as? Int == 339)
        let hyper = try #require(object["hyperParameters"] as? [String: Any])
        #expect(hyper["block_count"] as? Int == 28)
        let tokenizer = try #require(object["tokenizer"] as? [String: Any])
        #expect(tokenizer["tokens"] as? Int == 151_936)
    }

    /// `bench kernels --streamed` times a layer tensor across every layer and from the caches, per batch size; a
    /// tensor outside the layers gets only the one-matrix timing.
    @Test func kernelsBenchTimesALayerTensorStreamed() throws {
        let run = try runSpecula([
            "bench", "kernels", "--model", CLIModels.draft, "--runs", "1", "--batch", "1", "2", "--tensors",
            "blk.0.ffn_gate.weight", "output_norm.weight", "--streamed",
        ])
        let lines = run.standardOutput.split(separator: "\n").map(String.init)
        #expect(run.status == 1, "a vector is not a matrix: \(run.standardOutput)")
        #expect(run.standardError.contains("output_norm.weight: not a matrix"), "\(run.standardError)")
        #expect(
            lines.contains { $0.contains("blk.0.ffn_gate.weight in 24 layers") && $0.contains("streamed vs cached") })
        let timed = lines.filter { $0.hasPrefix("    N=") && $0.contains("streamed") && $0.contains("cached") }
        #expect(timed.count == 2, "\(lines)")
        #expect(timed.last?.contains("×") == true)
    }

    @Test func generateAndLogits() throws {
        let plain = try runSpecula([
            "generate", "--model", CLIModels.smollm, "--prompt", "The capital of France is", "--max-tokens", "6",
            "--stats",
        ])
        #expect(plain.status == 0, "\(plain.standardError)")
        #expect(plain.standardOutput.contains("Paris"))
        let stats = try #require(
            try JSONSerialization.jsonObject(with: Data(plain.standardError.utf8)) as? [String: Any])
        #expect(stats["generatedTokens"] as? Int == 6)
        // Speculative greedy prints the same text as plain greedy.
        let speculative = try runSpecula([
            "generate", "--model", CLIModels.smollm, "--draft", CLIModels.smollm, "--prompt",
            "The capital of France is",
            "--max-tokens", "6", "--depth", "3",
        ])
        #expect(speculative.status == 0, "\(speculative.standardError)")
        #expect(speculative.standardOutput == plain.standardOutput)
        // With the lookahead and lookup rounds too; their counts are in the stats.
        let lookup = try runSpecula([
            "generate", "--model", CLIModels.smollm, "--draft", CLIModels.smollm, "--prompt",
            "The capital of France is", "--max-tokens", "6", "--depth", "3", "--lookahead", "2", "--lookup", "1",
            "--stats",
        ])
        #expect(lookup.status == 0, "\(lookup.standardError)")
        #expect(lookup.standardOutput == plain.standardOutput)
        let lookupStats = try #require(
            try JSONSerialization.jsonObject(with: Data(lookup.standardError.utf8)) as? [String: Any])
        #expect(lookupStats["lookupRounds"] is Int && lookupStats["lookaheadDrafts"] is Int)
        // A draft with layers left out drafts otherwise; the text is still plain decoding's.
        let skipping = try runSpecula([
            "generate", "--model", CLIModels.smollm, "--draft", CLIModels.smollm, "--prompt",
            "The capital of France is", "--max-tokens", "6", "--depth", "3", "--draft-skip-layers", "4,10-20",
        ])
        #expect(skipping.status == 0, "\(skipping.standardError)")
        #expect(skipping.standardOutput == plain.standardOutput)
        // A draft re-quantized to 4 bits drafts otherwise; the text is still plain decoding's.
        let requantized = try runSpecula([
            "generate", "--model", CLIModels.smollm, "--draft", CLIModels.smollm, "--prompt",
            "The capital of France is", "--max-tokens", "6", "--depth", "3", "--draft-requantize", "q4_0+output",
        ])
        #expect(requantized.status == 0, "\(requantized.standardError)")
        #expect(requantized.standardOutput == plain.standardOutput)
        // `--draft` alone is the adaptive mode: the same text, its rounds by kind in the stats, one trace line a
        // round.
        let adaptive = try runSpecula([
            "generate", "--model", CLIModels.smollm, "--draft", CLIModels.smollm, "--prompt",
            "The capital of France is", "--max-tokens", "6", "--stats", "--trace",
        ])
        #expect(adaptive.status == 0, "\(adaptive.standardError)")
        #expect(adaptive.standardOutput == plain.standardOutput)
        let lines = adaptive.standardError.split(separator: "\n").map { Data($0.utf8) }
        let rounds = try lines.dropLast().map {
            try #require(try JSONSerialization.jsonObject(with: $0) as? [String: Any])
        }
        #expect(!rounds.isEmpty && rounds.allSatisfy { $0["choice"] is String && $0["targetSeconds"] is Double })
        let adaptiveStats = try #require(try JSONSerialization.jsonObject(with: lines.last ?? Data()) as? [String: Any])
        #expect(adaptiveStats["shape"] as? String == "adaptive")
        let kinds = try #require((adaptiveStats["adaptive"] as? [String: Any])?["rounds"] as? [String: Int])
        #expect(kinds.values.reduce(0, +) == rounds.count)
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("specula-logits-\(getpid()).npy").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        let logits = try runSpecula(["logits", "--model", CLIModels.smollm, "--tokens", "1,2,3", "--output", path])
        #expect(logits.status == 0)
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        #expect(data.prefix(6) == Data([0x93] + Array("NUMPY".utf8)))
        #expect(data.count > 3 * 49_152 * 4)
    }

    @Test func tokenizeMatchesTheModelsView() throws {
        let ids = try runSpecula(["tokenize", "--model", CLIModels.target, "--text", "Hello world!", "--json"])
        #expect(ids.status == 0)
        #expect(ids.standardOutput.trimmingCharacters(in: .whitespacesAndNewlines) == "[9707,1879,0]")
        let special = try runSpecula([
            "tokenize", "--model", CLIModels.target, "--text", "<|im_start|>user", "--special",
        ])
        #expect(special.standardOutput.split(separator: "\n").first == "151644")
        // Gemma adds BOS (id 2) as its metadata asks.
        let gemma = try runSpecula(["tokenize", "--model", CLIModels.gemma, "--text", "Hello", "--json"])
        #expect(gemma.standardOutput.hasPrefix("[2,"))
        let decoded = try runSpecula(["tokenize", "--model", CLIModels.target, "--decode", "--text", "9707,1879,0"])
        #expect(decoded.standardOutput == "Hello world!")
    }

    @Test(arguments: [
        (["inspect", "/nonexistent.gguf"], "cannot open"),
        (["tokenize", "--model", CLIModels.notGGUF, "--text", "x"], "not a GGUF file"),
        (["tokenize", "--model", CLIModels.target], "exactly one of --text and --file"),
        (["tokenize", "--model", CLIModels.target, "--decode", "--text", "1,x"], "not a token id"),
        (
            ["generate", "--model", CLIModels.target, "--draft", CLIModels.smollm, "--prompt", "hi"],
            "tokenizers differ"
        ),
        (
            [
                "generate", "--model", CLIModels.smollm, "--prompt", "hello there", "--max-tokens", "5", "--context",
                "3",
            ],
            "exceed the context"
        ),
        (
            [
                "generate", "--model", CLIModels.smollm, "--prompt", "hi", "--verifier", "bogus", "--draft",
                CLIModels.smollm,
            ],
            "unknown verifier 'bogus'"
        ),
        (
            [
                "generate", "--model", CLIModels.smollm, "--prompt", "hi", "--verifier", "token", "--tree", "binary:3",
                "--draft", CLIModels.smollm,
            ],
            "token does not verify every node"
        ),
        (
            [
                "generate", "--model", CLIModels.smollm, "--prompt", "hi", "--verifier", "spechub", "--tree",
                "nary:3:2",
                "--draft", CLIModels.smollm,
            ], "spechub does not verify every node of tree 'nary:3:2'"
        ),
        (
            [
                "generate", "--model", CLIModels.smollm, "--prompt", "hi", "--tree", "wide:9", "--draft",
                CLIModels.smollm,
            ],
            "bad tree 'wide:9'"
        ),
        (["generate", "--model", CLIModels.smollm, "--prompt", "hi", "--temperature", "-1"], "temperature"),
        (["logits", "--model", CLIModels.smollm, "--tokens", "1,999999", "--top", "2"], "not a token id"),
        (["logits", "--model", CLIModels.smollm, "--tokens", "1,2"], "exactly one of --output and --top"),
        (
            [
                "generate", "--model", CLIModels.smollm, "--prompt", "hi", "--draft", CLIModels.smollm, "--draft-stop",
                "2",
            ],
            "draft-stop: must be in [0, 1]"
        ),
        (["generate", "--model", CLIModels.smollm, "--prompt", "hi", "--draft-vocabulary", "100"], "needs --draft"),
        (["generate", "--model", CLIModels.smollm, "--prompt", "hi", "--draft-skip-layers", "3"], "needs --draft"),
        (
            [
                "generate", "--model", CLIModels.smollm, "--prompt", "hi", "--draft", CLIModels.smollm,
                "--draft-skip-layers", "3,x",
            ],
            "'x' is not a layer number"
        ),
        (
            [
                "generate", "--model", CLIModels.smollm, "--prompt", "hi", "--draft", CLIModels.smollm,
                "--draft-skip-layers", "5-2",
            ],
            "'5-2' is not a layer number"
        ),
        (
            [
                "generate", "--model", CLIModels.smollm, "--prompt", "hi", "--draft", CLIModels.smollm,
                "--draft-skip-layers", "99",
            ],
            "layer 99 to skip is not one of its 30 layers"
        ),
        (
            [
                "bench", "speed", "--target", CLIModels.smollm, "--draft", CLIModels.smollm, "--draft-skip-layers",
                "0-29",
            ],
            "skipping all 30 layers leaves no model"
        ),
        (["bench", "speed", "--target", CLIModels.smollm, "--draft-skip-layers", "1"], "needs --draft"),
        (["generate", "--model", CLIModels.smollm, "--prompt", "hi", "--draft-requantize", "q4_0"], "needs --draft"),
        (
            [
                "generate", "--model", CLIModels.smollm, "--prompt", "hi", "--draft", CLIModels.smollm,
                "--draft-requantize", "q3_k",
            ],
            "'q3_k' is not a format to re-quantize to (q4_0, optionally +output)"
        ),
        (
            [
                "bench", "speed", "--target", CLIModels.smollm, "--draft", CLIModels.smollm, "--draft-requantize",
                "q4_0+head",
            ],
            "'q4_0+head' is not a format to re-quantize to"
        ),
        (
            ["bench", "model", "--model", CLIModels.smollm, "--requantize", "f16"],
            "--requantize: 'f16' is not a format"
        ),
        (["serve", "--model", CLIModels.smollm, "--draft-requantize", "q4_0"], "needs --draft"),
        (
            ["serve", "--model", CLIModels.smollm, "--draft", CLIModels.smollm, "--draft-requantize", "q8_0"],
            "'q8_0' is not a format to re-quantize to"
        ),
        (
            [
                "generate", "--model", CLIModels.smollm, "--prompt", "hi", "--drafter", "ngram", "--draft",
                CLIModels.smollm,
            ],
            "--drafter ngram takes no draft"
        ),
        (["generate", "--model", CLIModels.smollm, "--prompt", "hi", "--drafter", "magic"], "unknown drafter 'magic'"),
        (
            [
                "generate", "--model", CLIModels.smollm, "--prompt", "hi", "--drafter", "suffix", "--draft",
                CLIModels.smollm,
            ],
            "--drafter suffix takes no draft"
        ),
        (["generate", "--model", CLIModels.smollm, "--prompt", "hi", "--drafter", "suffix:0"], "suffix:N takes 1…"),
        (
            ["generate", "--model", CLIModels.smollm, "--prompt", "hi", "--drafter", "suffix:x"],
            "takes a number of nodes"
        ),
        (
            ["generate", "--model", CLIModels.smollm, "--prompt", "hi", "--drafter", "suffix", "--tree", "binary:2"],
            "the suffix drafter builds its own trees"
        ),
        (
            ["bench", "speed", "--target", CLIModels.smollm, "--methods", "suffix+lookup"],
            "suffix[:NODES] takes a number and no modifier"
        ),
        (["generate", "--model", CLIModels.smollm, "--prompt", "hi", "--lookahead", "2"], "--lookahead needs --draft"),
        (
            ["generate", "--model", CLIModels.smollm, "--prompt", "hi", "--draft", CLIModels.smollm, "--lookup=-1"],
            "lookup: must be in 0…64"
        ),
        (
            [
                "bench", "speed", "--target", CLIModels.smollm, "--draft", CLIModels.smollm, "--methods",
                "chain:3+turbo/token",
            ],
            "unknown modifier '+turbo'"
        ),
        (
            ["bench", "speed", "--target", CLIModels.smollm, "--draft", CLIModels.smollm, "--methods", "ngram+lookup"],
            "+lookahead, +lookup and +stop need the draft model"
        ),
        (
            [
                "bench", "speed", "--target", CLIModels.smollm, "--draft", CLIModels.smollm, "--methods",
                "chain:3+trees:2/token",
            ],
            "+trees:N (0…"
        ),
        (
            [
                "generate", "--model", CLIModels.smollm, "--prompt", "hi", "--draft", CLIModels.smollm, "--depth", "4",
                "--suffix-trees", "2",
            ],
            "suffix-trees: only the adaptive mode"
        ),
        (
            [
                "bench", "speed", "--target", CLIModels.smollm, "--draft", CLIModels.smollm, "--dataset",
                "/nonexistent/prompts.jsonl",
            ],
            "unknown dataset '/nonexistent/prompts.jsonl'"
        ),
        (
            [
                "bench", "speed", "--target", CLIModels.smollm, "--draft", CLIModels.smollm, "--dataset",
                "/proc/cpuinfo",
            ],
            "no usable prompts"
        ),
    ])
    func badInput(arguments: [String], mention: String) throws {
        let result = try runSpecula(arguments)
        #expect(result.status == 1)
        #expect(result.standardError.split(separator: "\n").count == 1, "\(result.standardError)")
        #expect(result.standardError.contains(mention), "\(result.standardError)")
    }

    /// `bench speed` on two prompts with SmolLM2 as its own draft at temperature 0 (outputs checked equal to plain
    /// decoding): the table, and one record per prompt with every method's time and ratio.
    @Test func benchSpeedRunsSideBySide() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("specula-speed-\(getpid())")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let prompts = folder.appendingPathComponent("prompts.jsonl")
        try """
        {"question_id": 1, "category": "writing", "turns": ["Name three colors."]}
        {"question_id": 2, "category": "writing", "turns": ["Count from one to five."]}
        """.write(to: prompts, atomically: true, encoding: .utf8)
        let result = try runSpecula([
            "bench", "speed", "--target", CLIModels.smollm, "--draft", CLIModels.smollm, "--dataset", prompts.path,
            "--prompts", "2", "--max-tokens", "8", "--temperature", "0", "--methods", "chain:3/token", "ngram",
            "chain:3+lookahead+lookup:3/token", "--out", folder.path,
        ])
        #expect(result.status == 0, "\(result.standardError)")
        #expect(result.standardOutput.contains("| chain:3 greedy |"))
        #expect(result.standardOutput.contains("| chain:3+lookahead:2+lookup:3 greedy |"))
        #expect(result.standardOutput.contains("speedup after prefill"))
        let lines = try String(contentsOf: folder.appendingPathComponent("speed.jsonl"), encoding: .utf8)
            .split(separator: "\n")
        #expect(lines.count == 2)
        let record = try #require(try JSONSerialization.jsonObject(with: Data(lines[0].utf8)) as? [String: Any])
        let metrics = try #require(record["metrics"] as? [String: [Double]])
        #expect(metrics["chain:3 greedy|speedup"]?.count == 1)
        #expect(metrics["plain|tokens"] == metrics["chain:3 greedy|tokens"])
        #expect(metrics["chain:3+lookahead:2+lookup:3 greedy|decodeSpeedup"]?.count == 1)
        let decode = try #require(metrics["plain|decodeSeconds"]?.first)
        let total = try #require(metrics["plain|seconds"]?.first)
        #expect(decode > 0 && decode < total, "the prompt pass is left out")
    }

    /// `audit` with SmolLM2 drafting for itself through a reduced head (so drafts are really rejected): passes.
    @Test func auditPassesForAnExactVerifier() throws {
        let result = try runSpecula([
            "audit", "--model", CLIModels.smollm, "--draft", CLIModels.smollm, "--draft-vocabulary", "2048", "--prompt",
            "The weather today is", "--samples", "200",
        ])
        #expect(result.status == 0, "\(result.standardOutput)\(result.standardError)")
        #expect(result.standardOutput.contains("pass: no difference beyond chance"))
        #expect(result.standardOutput.contains("chi-square"))
    }

    /// `audit --beside`: another generation shares the audit's passes (continuous batching) for its whole length,
    /// and the speculative law still equals plain sampling's.
    @Test func auditPassesWithAnotherGenerationBesideIt() throws {
        let result = try runSpecula([
            "audit", "--model", CLIModels.smollm, "--draft", CLIModels.smollm, "--draft-vocabulary", "2048", "--prompt",
            "The weather today is", "--samples", "200", "--beside", "Write a short poem about the sea.",
        ])
        #expect(result.status == 0, "\(result.standardOutput)\(result.standardError)")
        #expect(result.standardOutput.contains("pass: no difference beyond chance"))
        let line = try #require(result.standardOutput.split(separator: "\n").first { $0.hasPrefix("beside:") })
        // "beside: R generations … ran alongside; S of P passes were shared …"
        let match = try #require(line.firstMatch(of: /(\d+) of (\d+) passes were shared/), "\(line)")
        let shared = try #require(Int(match.1))
        #expect(shared > 0, "\(line)")
    }

    /// `bench acceptance` with SmolLM2 as its own draft: every acceptance and every α* is 1 (p = q at every
    /// position), in the table and the records.
    @Test func benchAcceptanceOnASelfDraft() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("specula-acceptance-\(getpid())")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let prompts = folder.appendingPathComponent("prompts.jsonl")
        try #"{"question_id": 1, "category": "writing", "turns": ["Name a color."]}"#.write(
            to: prompts, atomically: true, encoding: .utf8)
        let result = try runSpecula([
            "bench", "acceptance", "--target", CLIModels.smollm, "--draft", CLIModels.smollm, "--dataset",
            prompts.path, "--prompts", "1", "--max-tokens", "3", "--drafts", "1", "2", "--samples", "20",
            "--temperature", "0.7", "--out", folder.path,
        ])
        #expect(result.status == 0, "\(result.standardError)")
        #expect(result.standardOutput.contains("| rrsw | 1.000 (1 × 3) | 1.000 (1 × 3) |"))
        let line = try String(contentsOf: folder.appendingPathComponent("acceptance.jsonl"), encoding: .utf8)
        let record = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        let metrics = try #require(record["metrics"] as? [String: [Double]])
        let rrs = try #require(metrics["rrs@2"])
        #expect(rrs.count == 3 && rrs.allSatisfy { abs($0 - 1) < 1e-9 })
    }
}
