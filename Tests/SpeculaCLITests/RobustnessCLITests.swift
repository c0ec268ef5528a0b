import Foundation
import Testing

/// Bad command lines and bad files, each run through the built `specula`: exit code 1, one `error:` line on standard
/// error, no signal, nothing half-written.
@Suite("specula robustness: bad flags and files", .serialized)
struct RobustnessCLITests {
    static func setUp() throws -> String {
        let directory = NSTemporaryDirectory() + "specula-robustness-\(UUID().uuidString)"
        let made = try runSpecula(["synthetic", "--out", directory])
        try #require(made.status == 0, "\(made.standardError)")
        try Data().write(to: URL(fileURLWithPath: directory + "/empty.txt"))
        // A model file cut in half, and one whose tensor data is garbage after a valid header.
        let model = try Data(contentsOf: URL(fileURLWithPath: directory + "/synthetic-target.gguf"))
        try model.prefix(model.count / 2).write(to: URL(fileURLWithPath: directory + "/truncated.gguf"))
        try Data("GGUF not really".utf8).write(to: URL(fileURLWithPath: directory + "/garbage.gguf"))
        try Data("[[0],[2]]".utf8).write(to: URL(fileURLWithPath: directory + "/bad-tree.json"))
        return directory
    }

    @Test func everyBadInputIsOneErrorLine() throws {
        let directory = try Self.setUp()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let target = ["--model", directory + "/synthetic-target.gguf"]
        let draft = target + ["--draft", directory + "/synthetic-draft.gguf"]
        let generate = ["generate"] + target
        let speculative = ["generate"] + draft
        let big = "9223372036854775807"
        let cases: [(String, [String])] = [
            ("empty prompt", generate + ["--prompt", ""]),
            ("empty prompt, speculative", speculative + ["--prompt", ""]),
            ("empty prompt, compare", speculative + ["--prompt", "", "--compare"]),
            ("empty prompt file", generate + ["--prompt-file", directory + "/empty.txt"]),
            ("missing prompt file", generate + ["--prompt-file", directory + "/none.txt"]),
            ("max tokens near Int.max", generate + ["--prompt", "hi", "--max-tokens", big]),
            ("max tokens past the context", generate + ["--prompt", "hi", "--max-tokens", "20000"]),
            ("depth near Int.max", speculative + ["--prompt", "hi", "--depth", big]),
            ("drafts near Int.max", speculative + ["--prompt", "hi", "--drafts", big]),
            ("drafts:N:D overflow", speculative + ["--prompt", "hi", "--tree", "drafts:\(big):2"]),
            ("nary overflow", speculative + ["--prompt", "hi", "--tree", "nary:3037000500:3037000500"]),
            ("long chain", speculative + ["--prompt", "hi", "--tree", "chain:100000"]),
            ("bad tree spelling", speculative + ["--prompt", "hi", "--tree", "ternary:3"]),
            (
                "bad tree file",
                speculative + ["--prompt", "hi", "--tree", directory + "/bad-tree.json", "--verifier", "rrs"]
            ),
            ("a device as the tree file", speculative + ["--prompt", "hi", "--tree", "/dev/zero"]),
            ("negative context", generate + ["--prompt", "hi", "--context", "-1"]),
            ("context too small", generate + ["--prompt", "hello there", "--context", "4"]),
            ("unknown verifier", speculative + ["--prompt", "hi", "--verifier", "nope"]),
            ("block on a tree", speculative + ["--prompt", "hi", "--tree", "binary:3", "--verifier", "block"]),
            (
                "spechub on three drafts",
                speculative + ["--prompt", "hi", "--tree", "drafts:3:2", "--verifier", "spechub"]
            ),
            ("negative lookahead", speculative + ["--prompt", "hi", "--lookahead", "-1"]),
            ("huge lookahead", speculative + ["--prompt", "hi", "--lookahead", big]),
            ("empty stop sequence", generate + ["--prompt", "hi", "--stop", ""]),
            ("NaN temperature", generate + ["--prompt", "hi", "--temperature", "nan"]),
            ("tree without a draft", generate + ["--prompt", "hi", "--tree", "binary:3"]),
            ("missing model", ["generate", "--model", directory + "/none.gguf", "--prompt", "hi"]),
            ("truncated model", ["generate", "--model", directory + "/truncated.gguf", "--prompt", "hi"]),
            ("garbage model", ["generate", "--model", directory + "/garbage.gguf", "--prompt", "hi"]),
            ("truncated draft", generate + ["--draft", directory + "/truncated.gguf", "--prompt", "hi"]),
            ("audit, empty prompt", ["audit"] + draft + ["--prompt", ""]),
            ("audit, no drafter", ["audit"] + target + ["--prompt", "hi"]),
            ("audit, empty prompt beside", ["audit"] + draft + ["--prompt", "hi", "--beside", ""]),
            ("audit, tokens near Int.max", ["audit"] + draft + ["--prompt", "hi", "--tokens", big]),
            ("bench model, negative context", ["bench", "model"] + target + ["--contexts", "-5"]),
            ("bench model, context past the model's", ["bench", "model"] + target + ["--contexts", "100000"]),
            ("bench model, no sequences", ["bench", "model"] + target + ["--sequences", "0"]),
            ("bench model, 65 sequences", ["bench", "model"] + target + ["--sequences", "65"]),
            ("bench model, a layer list that is not one", ["bench", "model"] + target + ["--skip-layers", "1,,2"]),
            ("bench model, skipping every layer", ["bench", "model"] + target + ["--skip-layers", "0-9999"]),
            (
                "logits, empty prompt file",
                ["logits"] + target + ["--prompt-file", directory + "/empty.txt", "--top", "3"]
            ),
            ("logits, token out of range", ["logits"] + target + ["--tokens", "1,\(big)", "--top", "3"]),
            ("serve, missing model", ["serve", "-m", directory + "/none.gguf"]),
            ("serve, missing draft", ["serve"] + target + ["-md", directory + "/none.gguf"]),
            ("serve, port 0", ["serve"] + target + ["--port", "0"]),
            ("serve, port past 65535", ["serve"] + target + ["--port", "70000"]),
            ("serve, context of 1", ["serve"] + target + ["-c", "1"]),
            ("serve, negative queue", ["serve"] + target + ["--queue", "-1"]),
            ("serve, NaN timeout", ["serve"] + target + ["--timeout", "nan"]),
            ("serve, empty API key", ["serve"] + target + ["--api-key", ""]),
            ("serve, no slots", ["serve"] + target + ["-np", "0"]),
            ("serve, 65 slots", ["serve"] + target + ["--parallel", "65"]),
            ("serve, negative prompt pass bound", ["serve"] + target + ["--prefill-pass-ms=-5"]),
            ("serve, infinite prompt pass bound", ["serve"] + target + ["--prefill-pass-ms", "inf"]),
        ]
        for (name, arguments) in cases {
            let result = try runSpecula(arguments)
            let lines = result.standardError.split(separator: "\n")
            #expect(result.status == 1, "\(name): exit \(result.status), \(result.standardError)")
            #expect(lines.count == 1 && lines.first?.hasPrefix("error: ") == true, "\(name): \(result.standardError)")
        }
    }

    @Test func aChainIsAChainHoweverItIsSpelled() throws {
        let directory = try Self.setUp()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var outputs: [String] = []
        for spelling in [["--tree", "chain:4", "--verifier", "block"], ["--depth", "4", "--verifier", "block"]] {
            let result = try runSpecula(
                [
                    "generate", "--model", directory + "/synthetic-target.gguf", "--draft",
                    directory + "/synthetic-draft.gguf", "--prompt", "hello", "--max-tokens", "12", "--temperature",
                    "0.8",
                    "--seed", "5",
                ] + spelling)
            #expect(result.status == 0, "\(result.standardError)")
            outputs.append(result.standardOutput)
        }
        #expect(outputs[0] == outputs[1])
    }
}
