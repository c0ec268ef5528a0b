import Foundation
import Testing

/// Runs the `specula` executable built beside the test bundle.
struct CommandResult {
    var status: Int32
    var standardOutput: String
    var standardError: String
}

func runSpecula(_ arguments: [String], input: String? = nil, environment: [String: String] = [:]) throws
    -> CommandResult
{
    let directory = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
    var executable = directory.appendingPathComponent("specula")
    if !FileManager.default.fileExists(atPath: executable.path) {
        // The bundle may sit one level deeper (an .xctest directory).
        executable = directory.deletingLastPathComponent().appendingPathComponent("specula")
    }
    let process = Process()
    process.executableURL = executable
    process.arguments = arguments
    if !environment.isEmpty {
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
    }
    let output = Pipe()
    let error = Pipe()
    let inputPipe = Pipe()
    process.standardOutput = output
    process.standardError = error
    process.standardInput = inputPipe
    try process.run()
    if let input { inputPipe.fileHandleForWriting.write(Data(input.utf8)) }
    try inputPipe.fileHandleForWriting.close()
    let out = output.fileHandleForReading.readDataToEndOfFile()
    let err = error.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return CommandResult(
        status: process.terminationStatus, standardOutput: String(decoding: out, as: UTF8.self),
        standardError: String(decoding: err, as: UTF8.self))
}

@Suite("specula CLI")
struct CLITests {
    @Test func boundPrintsTheDocumentedJSON() throws {
        let result = try runSpecula([
            "bound", "--target", "[0.5, 0.3, 0.2]", "--draft", "[0.2, 0.3, 0.5]", "--drafts", "2",
        ])
        #expect(result.status == 0, "\(result.standardError)")
        let object = try #require(
            try JSONSerialization.jsonObject(with: Data(result.standardOutput.utf8)) as? [String: Any])
        #expect(object["vocabularySize"] as? Int == 3)
        #expect(object["drafts"] as? Int == 2)
        let acceptance = try #require(object["acceptance"] as? [String: Double])
        let optimal = try #require(object["optimal"] as? [String: Double])
        #expect(Set(acceptance.keys) == ["token", "rrs", "rrsw", "kseq", "spechub", "greedy"])
        #expect(Set(optimal.keys) == ["withReplacement", "withoutReplacement", "greedy"])
        // ALGORITHMS.md §8, case A, n = 2.
        #expect(abs((acceptance["rrs"] ?? 0) - 0.76) < 1e-9)
        #expect(abs((acceptance["rrsw"] ?? 0) - 0.82) < 1e-9)
        #expect(abs((acceptance["spechub"] ?? 0) - 0.9) < 1e-9)
        #expect(abs((optimal["withoutReplacement"] ?? 0) - 69.0 / 70) < 1e-9)
        // Keys in the documented order.
        let text = result.standardOutput
        let positions = ["\"vocabularySize\"", "\"drafts\"", "\"acceptance\"", "\"optimal\""].map {
            text.range(of: $0)?.lowerBound ?? text.endIndex
        }
        #expect(positions == positions.sorted())
    }

    @Test func boundOmitsWhatIsUndefined() throws {
        let three = try runSpecula([
            "bound", "--target", "[0.1,0.2,0.3,0.4]", "--draft", "[0.4,0.3,0.2,0.1]", "--drafts", "3",
        ])
        #expect(three.status == 0)
        #expect(!three.standardOutput.contains("spechub"))
        #expect(three.standardOutput.contains("\"greedy\""))
        let one = try runSpecula(["bound", "--target", "[0.1,0.9]", "--draft", "[0.4,0.6]", "--drafts", "1"])
        #expect(one.status == 0)
        #expect(!one.standardOutput.contains("greedy"))
        #expect(!one.standardOutput.contains("spechub"))
    }

    @Test func boundReadsLogitsFilesAndStandardInput() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("specula-cli-\(getpid())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let file = directory.appendingPathComponent("target.json")
        try Data("[0, 0, 0, 0]".utf8).write(to: file)
        let result = try runSpecula(
            ["bound", "--logits", "--target", file.path, "--draft", "-", "--drafts", "2", "--format", "table"],
            input: "[0, 0, 0, 0]")
        #expect(result.status == 0, "\(result.standardError)")
        #expect(result.standardOutput.contains("α* withReplacement"))
        #expect(result.standardOutput.contains("1.000000"))
        // Greedy settings make both one-hot on token 0: everything accepts.
        let greedy = try runSpecula([
            "bound", "--target", "[0.5,0.3,0.2]", "--draft", "[0.6,0.3,0.1]", "--temperature", "0",
        ])
        #expect(greedy.standardOutput.contains("\"token\":1.0"))
        // Large vocabularies fall back to the seeded Monte-Carlo estimate for RRSw with 3 drafts.
        let size = 40
        let vector = "[" + (0..<size).map { _ in "1" }.joined(separator: ",") + "]"
        let skewed = "[" + (0..<size).map { "\($0 + 1)" }.joined(separator: ",") + "]"
        let monteCarlo = try runSpecula([
            "bound", "--target", vector, "--draft", skewed, "--drafts", "3", "--samples", "50",
        ])
        #expect(monteCarlo.status == 0)
        #expect(monteCarlo.standardOutput.contains("monteCarlo"))
    }

    @Test(arguments: [
        (["bound", "--target", "[0.5, NaN]", "--draft", "[0.5, 0.5]"], "entry 1"),
        (["bound", "--target", "[0.5, -0.5]", "--draft", "[0.5, 0.5]"], "negative"),
        (["bound", "--target", "[0, 0]", "--draft", "[0.5, 0.5]"], "zero"),
        (["bound", "--target", "[0.5, 0.5]", "--draft", "[0.2, 0.3, 0.5]"], "expected 2 entries"),
        (["bound", "--target", "[]", "--draft", "[]"], "empty"),
        (["bound", "--target", "[0.5, 0.5]", "--draft", "[0.5, 0.5]", "--drafts", "0"], "--drafts"),
        (["bound", "--target", "[0.5, zero]", "--draft", "[0.5, 0.5]"], "not a number"),
        (["bound", "--target", "/nonexistent/target.json", "--draft", "[0.5, 0.5]"], "cannot read"),
        (["bound", "--target", "[0.5, 0.5]", "--draft", "[0.5, 0.5]", "--top-p", "2"], "top-p"),
        (["bound", "--target", "[0.5, 0.5]", "--draft", "[0.5, 0.5]", "--frobnicate"], "frobnicate"),
        (["bound", "--target", "-", "--draft", "-"], "standard input"),
        (["bench", "verify", "--runs", "1"], "--runs"),
    ])
    func badInputGivesOneLineAndExitCodeOne(arguments: [String], mention: String) throws {
        let result = try runSpecula(arguments)
        #expect(result.status == 1)
        let lines = result.standardError.split(separator: "\n")
        #expect(lines.count == 1, "\(result.standardError)")
        #expect(result.standardError.hasPrefix("error: "))
        #expect(result.standardError.contains(mention), "\(result.standardError)")
        #expect(result.standardOutput.isEmpty)
    }

    /// `specula cache list` and `prune` on a directory: a file that is not a cache file of this format is stale and
    /// pruned, other files stay; with the cache off and no directory, a clear error.
    @Test func cacheListsAndPrunesADirectory() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("specula-cache-\(getpid())").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try Data("not a cache".utf8).write(to: URL(fileURLWithPath: directory + "/old-0123456789abcdef.weights"))
        try Data("notes".utf8).write(to: URL(fileURLWithPath: directory + "/notes.txt"))
        let list = try runSpecula(["cache", "list", "--directory", directory])
        #expect(list.status == 0, "\(list.standardError)")
        #expect(list.standardOutput.contains("1 files"))
        #expect(list.standardOutput.contains("old-0123456789abcdef.weights"))
        #expect(list.standardOutput.contains("stale: not a weight cache file"))
        let prune = try runSpecula(["cache", "prune", "--directory", directory, "--json"])
        #expect(prune.status == 0, "\(prune.standardError)")
        let object = try #require(
            try JSONSerialization.jsonObject(with: Data(prune.standardOutput.utf8)) as? [String: Any])
        let removed = try #require(object["removed"] as? [[String: Any]])
        #expect(removed.count == 1 && removed.first?["state"] as? String == "stale")
        #expect(!FileManager.default.fileExists(atPath: directory + "/old-0123456789abcdef.weights"))
        #expect(FileManager.default.fileExists(atPath: directory + "/notes.txt"))
        #expect(try runSpecula(["cache", "list", "--directory", directory]).standardOutput.contains("0 files"))
        let off = try runSpecula(["cache", "list"], environment: ["SPECULA_WEIGHT_CACHE": "off"])
        #expect(off.status == 1)
        #expect(off.standardError.contains("the weight cache is off"))
    }

    @Test func benchVerifyRunsAndWritesJSON() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("specula-bench-\(getpid()).json").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        let result = try runSpecula(["bench", "verify", "--vocabulary-size", "2000", "--runs", "3", "--json", path])
        #expect(result.status == 0, "\(result.standardError)")
        #expect(result.standardOutput.contains("verify kseq"))
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        let object = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        #expect((object["results"] as? [Any])?.count ?? 0 > 10)
    }
}
