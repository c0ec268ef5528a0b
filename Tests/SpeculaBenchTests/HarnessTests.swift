import Foundation
import SpeculaBench
import SpeculaEngine
import SpeculaTestSupport
import SpeculaTheory
import Testing

#if canImport(FoundationXML)
    import FoundationXML
#endif

func temporaryDirectory(_ name: String) throws -> String {
    let path = NSTemporaryDirectory() + "specula-bench-\(name)-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

@Suite("Benchmark harness: datasets, resumable records, statistics, reports")
struct HarnessTests {
    static let lines = [
        #"{"question_id": 81, "category": "writing", "turns": ["Write a poem.", "Shorter."]}"#,
        #"{"task_id": "HumanEval/0", "prompt": "def f():\n"}"#,
        #"{"question_id": 82, "category": "writing", "turns": []}"#,
        "not json",
        #"{"question_id": 81, "category": "writing", "turns": ["Again."]}"#,
        #"{"something": "else"}"#,
        "",
        #"{"question_id": "q3", "category": "translation", "turns": ["Translate: Hallo."]}"#,
    ]

    /// A speedup is tokens per second over plain decoding's: with equal lengths (T = 0) the ratio of times; with
    /// different lengths (T > 0) not — 40 tokens in 1.6 s against 20 in 1 s is 1.25× faster, though it took longer.
    @Test func speedupsAreRatiosOfRates() {
        #expect(abs(speedRatio(tokens: 30, seconds: 1.5, plainTokens: 30, plainSeconds: 3) - 2) < 1e-12)
        #expect(abs(speedRatio(tokens: 40, seconds: 1.6, plainTokens: 20, plainSeconds: 1) - 1.25) < 1e-12)
        #expect(abs(speedRatio(tokens: 10, seconds: 1, plainTokens: 128, plainSeconds: 6.4) - 0.5) < 1e-12)
        // Nothing emitted by either run: the ratio of times.
        #expect(abs(speedRatio(tokens: 0, seconds: 0.2, plainTokens: 5, plainSeconds: 0.3) - 1.5) < 1e-12)
    }

    /// The α* telemetry of a tree run is timed apart and left out of its rates: 64 tokens in 4 s of which 0.8 s
    /// computed α* and 1 s was the target's prompt pass run at 64 / 3.2 = 20 tokens/s, 64 / 2.2 after prefill.
    @Test func ratesLeaveOutTheOptimumTelemetry() {
        var telemetry = SpeculativeDecoder.Telemetry()
        telemetry.optimalSeconds = 0.8
        let outcome = DecodingOutcome(
            output: Array(0..<64), seconds: 4, targetPrefillSeconds: 1, telemetry: telemetry)
        let metrics = decodingMetrics(outcome)
        #expect(metrics["seconds"] == [4])
        #expect(metrics["optimalSeconds"] == [0.8])
        #expect(abs((metrics["tokensPerSecond"]?[0] ?? 0) - 20) < 1e-9)
        #expect(abs((metrics["decodeSeconds"]?[0] ?? 0) - 2.2) < 1e-9)
        #expect(abs((metrics["decodeTokensPerSecond"]?[0] ?? 0) - 64 / 2.2) < 1e-9)
        // A run that computed no α* records none, and its rates are the timed ones.
        let plain = decodingMetrics(
            DecodingOutcome(output: Array(0..<64), seconds: 4, targetPrefillSeconds: 1, telemetry: nil))
        #expect(plain["optimalSeconds"] == nil)
        #expect(abs((plain["tokensPerSecond"]?[0] ?? 0) - 16) < 1e-9)
        #expect(abs((plain["decodeTokensPerSecond"]?[0] ?? 0) - 64 / 3.0) < 1e-9)
    }

    @Test func parsesBothFormatsAndReportsBadLinesByNumber() {
        let (prompts, warnings) = Dataset.parse(Self.lines.joined(separator: "\n"), path: "set.jsonl")
        #expect(prompts.map(\.id) == ["81", "HumanEval/0", "q3"])
        #expect(prompts[0] == BenchmarkPrompt(id: "81", category: "writing", text: "Write a poem."))
        #expect(prompts[1].category == "humaneval")
        #expect(prompts[1].text.contains("def f():"))
        #expect(warnings.count == 4)
        #expect(warnings[0].hasPrefix("set.jsonl:3:"))
        #expect(warnings[1].hasPrefix("set.jsonl:4:"))
        #expect(warnings[2].hasPrefix("set.jsonl:5:") && warnings[2].contains("duplicate"))
        #expect(warnings[3].hasPrefix("set.jsonl:6:"))
    }

    @Test func namesFilesAndErrors() throws {
        let directory = try temporaryDirectory("data")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let rows = (0..<10).map {
            #"{"question_id": \#($0), "category": "\#($0 < 5 ? "translation" : "qa")", "turns": ["p\#($0)"]}"#
        }
        try rows.joined(separator: "\n").write(
            toFile: directory + "/" + Dataset.specBenchFile, atomically: true, encoding: .utf8)
        // A name picks its categories; a count spreads over the set.
        let translation = try Dataset.load("translation", directory: directory)
        #expect(translation.prompts.map(\.id) == ["0", "1", "2", "3", "4"])
        let spread = try Dataset.load("spec-bench", directory: directory, count: 3)
        #expect(spread.prompts.map(\.id) == ["0", "3", "6"])
        let file = try Dataset.load(directory + "/" + Dataset.specBenchFile, directory: "/nonexistent", count: 2)
        #expect(file.prompts.map(\.id) == ["0", "5"])
        #expect(throws: DatasetError.self) { try Dataset.load("nope", directory: directory) }
        do {
            _ = try Dataset.load("humaneval", directory: directory)
            Issue.record("a missing named set must fail")
        } catch let error as DatasetError {
            #expect(error.description.contains("scripts/fetch-models humaneval"))
        }
        do {
            _ = try Dataset.load("alpaca", directory: directory)
            Issue.record("a missing named set must fail")
        } catch let error as DatasetError {
            #expect(error.description.contains("scripts/fetch-models alpaca"))
        }
        do {
            _ = try Dataset.load("nope", directory: directory)
        } catch let error as DatasetError {
            #expect(error.description.contains("unknown dataset 'nope'") && error.description.contains("mt-bench"))
        }
    }

    func record(_ configuration: String, _ prompt: String, _ values: [Double], signature: String = "s")
        -> BenchRecord
    {
        BenchRecord(
            benchmark: "b", configuration: configuration, prompt: prompt, category: "c", signature: signature,
            metrics: ["m": values])
    }

    /// The installed AlpacaEval set (scripts/fetch-models alpaca): its 805 instructions from five sources.
    @Test(
        .enabled(
            if: FileManager.default.fileExists(atPath: TestModels.directory + "/" + Dataset.alpacaFile)
                || TestModels.required))
    func alpacaHasItsInstructions() throws {
        let (prompts, warnings) = try Dataset.load("alpaca", directory: TestModels.directory)
        #expect(warnings.isEmpty)
        #expect(prompts.count == 805)
        #expect(prompts.first?.id == "alpaca-0" && prompts.last?.id == "alpaca-804")
        #expect(Set(prompts.map(\.category)) == ["helpful_base", "koala", "oasst", "selfinstruct", "vicuna"])
        #expect(prompts.allSatisfy { !$0.text.isEmpty })
    }

    @Test func aHalfWrittenLastLineLosesNothingAfterIt() throws {
        let directory = try temporaryDirectory("half")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let first = try ResultLog(directory: directory, benchmark: "b", signature: "s")
        try first.append(record("A", "1", [1]))
        // The process was stopped in the middle of writing the second record: no newline at the end.
        let path = directory + "/b.jsonl"
        let whole = try JSONEncoder().encode(record("A", "2", [2]))
        let handle = try #require(FileHandle(forWritingAtPath: path))
        try handle.seekToEnd()
        try handle.write(contentsOf: whole.prefix(whole.count / 2))
        try handle.close()
        let resumed = try ResultLog(directory: directory, benchmark: "b", signature: "s")
        #expect(resumed.records.map(\.prompt) == ["1"])
        #expect(resumed.warnings.contains { $0.hasPrefix(path + ":2:") })
        try resumed.append(record("A", "3", [3]))
        // The record written after the broken line is read back on the next resume.
        let again = try ResultLog(directory: directory, benchmark: "b", signature: "s")
        #expect(again.records.map(\.prompt) == ["1", "3"])
    }

    @Test func resumesFromWhatIsWrittenAndIgnoresOtherSettings() throws {
        let directory = try temporaryDirectory("log")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let first = try ResultLog(directory: directory, benchmark: "b", signature: "s")
        try first.append(record("A", "1", [1, 2, 3]))
        try first.append(record("A", "2", [5]))
        // Another run's record and a broken line in the same file.
        let path = directory + "/b.jsonl"
        let handle = try #require(FileHandle(forWritingAtPath: path))
        try handle.seekToEnd()
        let foreign = try JSONEncoder().encode(record("A", "3", [9], signature: "other"))
        try handle.write(contentsOf: foreign + Data("\n{broken\n".utf8))
        try handle.close()
        let resumed = try ResultLog(directory: directory, benchmark: "b", signature: "s")
        #expect(resumed.records == first.records)
        #expect(resumed.contains(configuration: "A", prompt: "1"))
        #expect(!resumed.contains(configuration: "A", prompt: "3"))
        #expect(resumed.warnings.contains { $0.hasSuffix("other settings ignored (not resumed, not reported)") })
        #expect(resumed.warnings.contains { $0.hasPrefix(path + ":4:") })
        try resumed.append(record("A", "4", [7, 9]))
        // Merging: the statistics of a resumed log equal those of one uninterrupted set of records.
        let merged = Summary.summarize(resumed.records)
        let direct = Summary.summarize([record("A", "1", [1, 2, 3]), record("A", "2", [5]), record("A", "4", [7, 9])])
        #expect(merged.count == 1 && merged[0].metrics[0].1 == direct[0].metrics[0].1)
    }

    @Test func anOutputPathThatIsAFileIsAnError() throws {
        let directory = try temporaryDirectory("file")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let file = directory + "/plain"
        FileManager.default.createFile(atPath: file, contents: Data("x".utf8))
        do {
            _ = try ResultLog(directory: file, benchmark: "b", signature: "s")
            Issue.record("a file as the output directory must fail")
        } catch let error as DatasetError {
            #expect(error.description.contains("is a file"))
        }
    }

    @Test func pairedByPromptByHand() throws {
        let records = [
            record("A", "1", [3, 5]), record("B", "1", [1]), record("A", "2", [2]), record("B", "2", [2, 4]),
            record("A", "3", [9]),  // no B: left out
            record("C", "1", [100]),
        ]
        let paired = try #require(Summary.pairedByPrompt(records, "A", "B", metric: "m"))
        // Prompt 1: 4 − 1 = 3; prompt 2: 2 − 3 = −1; their mean 1, standard error 2, t(0.975, 1) = 12.706.
        #expect(paired.groups == 2)
        #expect(abs(paired.meanOfGroups - 1) < 1e-12)
        #expect(abs((paired.halfWidth ?? 0) - 12.7062 * 2) < 1e-3)
        #expect(Summary.pairedByPrompt(records, "A", "D", metric: "m") == nil)
        #expect(Summary.pairedByPrompt(records, "A", "B", metric: "other") == nil)
    }

    @Test func clusteredMeansByHand() {
        let summary = Summary.summarize([record("A", "1", [1, 2, 3]), record("A", "2", [5])])
        let mean = summary[0].metrics[0].1
        #expect(abs(mean.mean - 2.75) < 1e-12)  // (1 + 2 + 3 + 5) / 4
        #expect(abs(mean.meanOfGroups - 3.5) < 1e-12)  // (2 + 5) / 2
        // Prompt means 2 and 5: sample standard deviation 3/√2, standard error 1.5, half-width t(0.975, 1) · 1.5
        // (scipy.stats.t.ppf(0.975, 1) = 12.706204736174694).
        #expect(abs((mean.halfWidth ?? 0) - 1.5 * 12.706204736174694) < 1e-9)
        #expect(Summary.cell(mean) == "3.500 ± 19.059 (2 × 4)")
        #expect(Summary.cell(ClusteredMean(groups: [[0.25]]), digits: 2) == "0.25 (1 × 1)")
        #expect(Summary.cell(nil) == "—")
    }

    @Test func markdownAndChart() throws {
        let table = MarkdownTable(header: ["a", "b|c"], rows: [["1", "2"]])
        #expect(table.rendered == "| a | b\\|c |\n| --- | --- |\n| 1 | 2 |\n")
        let chart = BarChart(
            title: "t <1>", yLabel: "y", groups: ["g1", "g2"], series: ["s1", "s2"], values: [[1, 2], [nil, 3]],
            halfWidths: [[0.1, nil], [nil, 0.5]])
        let svg = chart.svg
        #expect(svg.hasPrefix("<svg"))
        #expect(svg.contains("t &lt;1&gt;"))
        // Three bars, two whiskers.
        #expect(svg.components(separatedBy: "<rect x=").count - 1 == 3 + 2)  // bars + legend swatches
        #expect(svg.components(separatedBy: "stroke=\"black\"").count - 1 == 2)
        let parser = XMLParser(data: Data(svg.utf8))
        #expect(parser.parse(), "the SVG must be well-formed XML")
    }

    @Test func progressLines() {
        #expect(ProgressReporter.duration(42) == "42s")
        #expect(ProgressReporter.duration(125) == "2m05s")
        #expect(ProgressReporter.duration(7260) == "2h01m")
        let line = ProgressReporter.line(label: "bench x", done: 1, total: 4, elapsed: 30, detail: "p1")
        #expect(line == "bench x [#####---------------] 1/4 30s elapsed, ETA 1m30s — p1")
        var written: [String] = []
        let quiet = ProgressReporter(label: "q", total: 2, quietFor: 3600) { written.append($0) }
        quiet.advance()
        #expect(written.isEmpty, "short runs stay quiet")
        let loud = ProgressReporter(label: "l", total: 2, quietFor: 0) { written.append($0) }
        loud.advance("a")
        #expect(written.count == 1 && written[0].contains("1/2"))
    }
}
