import Foundation
import Testing

/// Every benchmark protocol end to end on the synthetic model pair (`specula synthetic`): seconds, no downloads.
@Suite("specula bench protocols on a synthetic model pair", .serialized)
struct BenchCLITests {
    /// A fresh directory with the pair and a small Spec-Bench-format prompt file (one malformed line).
    static func setUp() throws -> (directory: String, common: [String]) {
        let directory = NSTemporaryDirectory() + "specula-bench-cli-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let made = try runSpecula(["synthetic", "--out", directory])
        #expect(made.status == 0, "\(made.standardError)")
        let lines = [
            #"{"question_id": 1, "category": "writing", "turns": ["Write a haiku about the sea."]}"#,
            #"{"question_id": 2, "category": "qa", "turns": ["What is the capital of France?"]}"#,
            #"{"question_id": 3, "category": "qa", "turns": "#,
            #"{"question_id": 4, "category": "translation", "turns": ["Translate: Guten Morgen."]}"#,
        ]
        try lines.joined(separator: "\n").write(toFile: directory + "/prompts.jsonl", atomically: true, encoding: .utf8)
        return (
            directory,
            [
                "--target", directory + "/synthetic-target.gguf", "--draft", directory + "/synthetic-draft.gguf",
                "--dataset", directory + "/prompts.jsonl", "--prompts", "2", "--max-tokens", "8",
                "--out", directory + "/out",
            ]
        )
    }

    static func lineCount(_ path: String) throws -> Int {
        try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").count
    }

    @Test func acceptanceWritesResumesAndReports() throws {
        let (directory, common) = try Self.setUp()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let first = try runSpecula(["bench", "acceptance"] + common + ["--temperature", "0.7", "1.0"])
        #expect(first.status == 0, "\(first.standardError)")
        #expect(first.standardError.contains("prompts.jsonl:3:"), "the malformed line is reported by number")
        #expect(first.standardOutput.contains("| rrsw |"))
        let log = directory + "/out/acceptance.jsonl"
        #expect(try Self.lineCount(log) == 4)  // 2 prompts × 2 temperatures
        for suffix in [".md", ".svg"] {
            #expect(FileManager.default.fileExists(atPath: directory + "/out/acceptance" + suffix))
        }
        // A rerun finds every unit done and writes nothing new; the report is the same.
        let second = try runSpecula(["bench", "acceptance"] + common + ["--temperature", "0.7", "1.0"])
        #expect(second.status == 0, "\(second.standardError)")
        #expect(second.standardError.contains("4 already in"))
        #expect(try Self.lineCount(log) == 4)
        #expect(second.standardOutput == first.standardOutput)
        // A run over part of the same settings counts only its own units as done, not every record in the log.
        let part = try runSpecula(["bench", "acceptance"] + common + ["--temperature", "0.7"])
        #expect(part.status == 0, "\(part.standardError)")
        #expect(part.standardError.contains("2 units (2 prompts × 1 settings), 2 already in"), "\(part.standardError)")
        #expect(try Self.lineCount(log) == 4)
        // Another length is another experiment: its records are not mixed with these.
        let other = try runSpecula(
            ["bench", "acceptance"] + common.dropLast(4) + ["--max-tokens", "6", "--out", directory + "/out"])
        #expect(other.status == 0, "\(other.standardError)")
        #expect(other.standardError.contains("records of other settings ignored"))
    }

    @Test func treesBlockAndSpeedRun() throws {
        let (directory, common) = try Self.setUp()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let trees = try runSpecula(
            ["bench", "trees"] + common + [
                "--shapes", "binary:3", "drafts:3:2", "sequoia:8", "--verifiers", "rrs", "spechub", "greedy",
            ])
        #expect(trees.status == 0, "\(trees.standardError)")
        // SpecHub serves binary nodes only: 3 + 2 + (spechub on sequoia:8 if binary) settings per temperature.
        #expect(trees.standardOutput.contains("| binary:3 | 7 |"))
        #expect(trees.standardOutput.contains("| drafts:3:2 | 7 |") && trees.standardOutput.contains("| — |"))
        let block = try runSpecula(["bench", "block"] + common + ["--gammas", "2", "3"])
        #expect(block.status == 0, "\(block.standardError)")
        #expect(try Self.lineCount(directory + "/out/block.jsonl") == 2 * 2 * 2 * 2)  // prompts × T × γ × verifier
        let speed = try runSpecula(
            ["bench", "speed"] + common + ["--methods", "chain:3/token", "binary:2/rrsw", "ngram"])
        #expect(speed.status == 0, "\(speed.standardError)")
        #expect(speed.standardOutput.contains("| plain |"))
        #expect(speed.standardOutput.contains("| binary:2 rrsw |"))
        for name in ["trees", "block", "speed"] {
            #expect(FileManager.default.fileExists(atPath: directory + "/out/\(name).svg"))
        }
    }

    @Test func allRunsEveryProtocol() throws {
        let (directory, common) = try Self.setUp()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let all = try runSpecula(
            ["bench", "all"] + common.dropLast(6) + [
                "--prompts", "1", "--max-tokens", "4", "--out", directory + "/all",
            ])
        #expect(all.status == 0, "\(all.standardError)")
        let results = try String(contentsOfFile: directory + "/all/results.md", encoding: .utf8)
        for heading in ["## Acceptance", "## Trees", "## Block vs token", "## Speed"] {
            #expect(results.contains(heading), "results.md lacks \(heading)")
        }
    }

    /// `bench lone` runs on the synthetic target and prints both medians and the paired ratio; a bad count is an
    /// error naming its flag.
    @Test func loneRunsAndChecksItsFlags() throws {
        let (directory, _) = try Self.setUp()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let model = directory + "/synthetic-target.gguf"
        let lone = try runSpecula(["bench", "lone", "--model", model, "--max-tokens", "4", "--pairs", "2"])
        #expect(lone.status == 0, "\(lone.standardError)")
        #expect(lone.standardOutput.contains("through the batcher, alone in it:"))
        #expect(lone.standardOutput.contains("(mean of 2 paired ratios, Student-t 95 %)"), "\(lone.standardOutput)")
        for (flag, value) in [("--pairs", "1"), ("--max-tokens", "1"), ("--max-tokens", "5000")] {
            let bad = try runSpecula(["bench", "lone", "--model", model, flag, value])
            #expect(bad.status != 0 && bad.standardError.contains(flag), "\(flag) \(value): \(bad.standardError)")
        }
        let missing = try runSpecula(["bench", "lone", "--model", directory + "/none.gguf"])
        #expect(missing.status == 1 && missing.standardError.contains("none.gguf"), "\(missing.standardError)")
    }

    /// `bench batch` runs its prompts alone and together on the synthetic pair, checks that each together output
    /// equals its lone one (greedy), and writes a record per repetition; bad flags are errors naming the flag.
    @Test func batchRunsTogetherAndAloneAndChecksItsFlags() throws {
        let (directory, _) = try Self.setUp()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let target = directory + "/synthetic-target.gguf"
        let draft = directory + "/synthetic-draft.gguf"
        let prompts = directory + "/prompts.jsonl"
        let records = directory + "/batch.jsonl"
        for method in ["plain", "adaptive"] {
            let run = try runSpecula([
                "bench", "batch", "--model", target, "--draft", draft, "--dataset", prompts, "--sequences", "3",
                "--max-tokens", "6", "--repeats", "2", "--method", method, "--context", "256", "--phases", "--out",
                records,
            ])
            #expect(run.status == 0, "\(method): \(run.standardError)")
            #expect(run.standardOutput.contains("repeat 2: alone"), "\(run.standardOutput)")
            #expect(run.standardOutput.contains("(mean of 2 repetitions, Student-t 95 %)"), "\(run.standardOutput)")
            #expect(run.standardOutput.contains("together, ms per pass over"), "\(run.standardOutput)")
        }
        let lines = try String(contentsOfFile: records, encoding: .utf8).split(separator: "\n")
        #expect(lines.count == 4)
        for line in lines {
            let record = try #require(
                try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            // Greedy: the same tokens together as alone, three sequences of at most 6 tokens.
            let lone = try #require(record["loneTokens"] as? Double)
            #expect(lone == (record["batchedTokens"] as? Double) && lone >= 3 && lone <= 18, "\(record)")
            #expect((record["passes"] as? Double ?? 0) >= 1)
            // The adaptive generations' rounds by kind; plain decoding has none.
            let rounds = try #require(record["rounds"] as? [String: Int])
            let total = rounds.values.reduce(0, +)
            if record["method"] as? String == "adaptive" {
                #expect(total >= 3, "\(record)")
            } else {
                #expect(total == 0, "\(record)")
            }
        }
        for (flags, named) in [
            (["--sequences", "0"], "--sequences"), (["--repeats", "0"], "--repeats"),
            (["--max-tokens", "1"], "--max-tokens"), (["--method", "chain:0/token"], "method"),
        ] {
            let bad = try runSpecula(["bench", "batch", "--model", target, "--dataset", prompts] + flags)
            #expect(bad.status != 0 && bad.standardError.contains(named), "\(flags): \(bad.standardError)")
        }
        let noDraft = try runSpecula([
            "bench", "batch", "--model", target, "--dataset", prompts, "--method", "adaptive", "--max-tokens", "4",
        ])
        #expect(noDraft.status != 0 && noDraft.standardError.contains("--draft"), "\(noDraft.standardError)")
        let small = try runSpecula([
            "bench", "batch", "--model", target, "--dataset", prompts, "--context", "64", "--max-tokens", "60",
        ])
        #expect(small.status != 0 && small.standardError.contains("--context 64"), "\(small.standardError)")
        let unwritable = directory + "/no-such-directory/batch.jsonl"
        let noOut = try runSpecula(["bench", "batch", "--model", target, "--dataset", prompts, "--out", unwritable])
        #expect(noOut.status != 0 && noOut.standardError.contains(unwritable), "\(noOut.standardError)")
    }

    @Test func badInputIsAClearError() throws {
        let (directory, common) = try Self.setUp()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let unknown = try runSpecula(["bench", "acceptance"] + common + ["--dataset", "no-such-set"])
        #expect(unknown.status == 1)
        #expect(unknown.standardError.contains("unknown dataset 'no-such-set'"))
        for factor in ["0", "-1", "nan"] {
            let bad = try runSpecula(["bench", "acceptance"] + common + ["--draft-temperature-factor", factor])
            #expect(bad.status != 0, "factor \(factor)")
            #expect(bad.standardError.contains("--draft-temperature-factor"), "factor \(factor): \(bad.standardError)")
        }
        FileManager.default.createFile(atPath: directory + "/file", contents: Data())
        let notDirectory = try runSpecula(["bench", "block"] + common + ["--out", directory + "/file"])
        #expect(notDirectory.status == 1)
        #expect(notDirectory.standardError.contains("is a file"))
        let badShape = try runSpecula(["bench", "trees"] + common + ["--shapes", "hexagon:3"])
        #expect(badShape.status != 0)
        #expect(badShape.standardError.contains("hexagon:3"))
        let noDraft = try runSpecula(
            ["bench", "trees"] + common.dropFirst(4) + ["--target", directory + "/synthetic-target.gguf"])
        #expect(noDraft.status == 1)
        #expect(noDraft.standardError.contains("needs --draft"))
    }
}
