import ArgumentParser
import Foundation
import SpeculaEngine
import SpeculaKernels
import SpeculaModels
import SpeculaTheory
import SpeculaVerify

/// `specula bench tokenizer`: opening a model (mapping, metadata, tokenizer) and tokenizing throughput.
struct BenchTokenizer: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tokenizer", abstract: "Median time to open a model and build its tokenizer; tokenizing speed.")

    @Option(name: .long, help: "The GGUF model file.") var model: String
    @Option(name: .long, help: "Text to tokenize (for example 1 MB of mixed text).")
    var file: String
    @Option(name: .long, help: "Repetitions (the median is reported).") var runs: Int = 5

    func validate() throws {
        if runs < 1 { throw ValidationError("--runs must be ≥ 1") }
    }

    func run() throws {
        guard let data = FileManager.default.contents(atPath: file) else { throw CommandError("cannot read '\(file)'") }
        let bytes = Array(data)
        var openTimes: [Double] = []
        var tokenizeTimes: [Double] = []
        var tokenCount = 0
        for _ in 0..<runs {
            let start = DispatchTime.now().uptimeNanoseconds
            let tokenizer = try Tokenizer(gguf: try GGUFFile(path: model))
            let opened = DispatchTime.now().uptimeNanoseconds
            tokenCount = tokenizer.encode(bytes: bytes, addSpecial: false).count
            let done = DispatchTime.now().uptimeNanoseconds
            openTimes.append(Double(opened - start) / 1e6)
            tokenizeTimes.append(Double(done - opened) / 1e9)
        }
        openTimes.sort()
        tokenizeTimes.sort()
        let openMedian = openTimes[openTimes.count / 2]
        let seconds = tokenizeTimes[tokenizeTimes.count / 2]
        print("open + metadata + tokenizer: \(String(format: "%.1f", openMedian)) ms (median of \(runs))")
        print(
            "tokenize \(bytes.count) bytes → \(tokenCount) tokens: \(String(format: "%.3f", seconds)) s, "
                + "\(String(format: "%.2f", Double(bytes.count) / seconds / 1e6)) MB/s (one core, median)")
    }
}
