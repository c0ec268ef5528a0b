import Foundation
import Testing

enum CLIModels {
    static let directory: String = {
        if let path = ProcessInfo.processInfo.environment["SPECULA_MODELS"], !path.isEmpty { return path }
        return FileManager.default.homeDirectoryForCurrentUser.appendingPathComponent(".cache/specula/models").path
    }()
    static let target = directory + "/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"
    static let gemma = directory + "/gemma-3-270m-q4_k_m.gguf"
    /// A file that is not GGUF (this test's own source).
    static let notGGUF = #filePath
    static var present: Bool {
        FileManager.default.fileExists(atPath: target) && FileManager.default.fileExists(atPath: gemma)
    }
    static var required: Bool { ProcessInfo.processInfo.environment["CI"] == "true" }
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
    ])
    func badInput(arguments: [String], mention: String) throws {
        let result = try runSpecula(arguments)
        #expect(result.status == 1)
        #expect(result.standardError.split(separator: "\n").count == 1, "\(result.standardError)")
        #expect(result.standardError.contains(mention), "\(result.standardError)")
    }
}
