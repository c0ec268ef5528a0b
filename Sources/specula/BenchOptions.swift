import ArgumentParser
import Foundation
import SpeculaBench
import SpeculaEngine
import SpeculaModels
import SpeculaTheory
import SpeculaVerify

/// Options shared by the paper-reproduction benchmarks (`bench acceptance|trees|block|speed|all`).
struct BenchOptions: ParsableArguments {
    @Option(name: [.customLong("target"), .customLong("model")], help: "The target model (GGUF).")
    var target: String
    @Option(name: .long, help: "The draft model (GGUF, same tokenizer).") var draft: String?
    @Option(
        name: .long,
        help: "Leave these draft layers out of every draft pass (0-based, e.g. 18-21 or 5,9): a cheaper, weaker draft.")
    var draftSkipLayers: String?
    @Option(
        name: .long,
        help:
            "Re-quantize the draft's layer matrices stored with more bits per weight to this format at load (q4_0; q4_0+output: the output matrix too): a cheaper, less precise draft."
    )
    var draftRequantize: String?
    @Option(
        name: .long, parsing: .upToNextOption,
        help:
            "Prompt sets: names (spec-bench, mt-bench, translation, summarization, qa, math, rag, humaneval/code, alpaca; installed by scripts/fetch-models) or Spec-Bench-format JSON-lines files. Default: per benchmark."
    )
    var dataset: [String] = []
    @Option(name: .long, help: "Where named datasets live (default: the models directory).") var dataDir: String?
    @Option(name: .long, help: "Prompts per dataset, spread evenly over it (default: per benchmark).")
    var prompts: Int?
    @Option(name: .long, help: "Tokens per prompt at most (default: per benchmark).") var maxTokens: Int?
    @Option(
        name: .long, parsing: .upToNextOption, help: "Temperatures (default: per benchmark; 0 = greedy).")
    var temperature: [Double] = []
    @Option(name: .long, help: "Seed.") var seed: UInt64 = 0
    @Option(name: .long, help: "Output directory: <benchmark>.jsonl (resumable), .md, .svg.")
    var out: String = "bench-results"

    func validate() throws {
        if let prompts, prompts < 1 { throw ValidationError("--prompts must be ≥ 1") }
        if let maxTokens, maxTokens < 1 { throw ValidationError("--max-tokens must be ≥ 1") }
        if let draftSkipLayers {
            if draft == nil { throw ValidationError("--draft-skip-layers needs --draft") }
            _ = try parseLayerList(draftSkipLayers)
        }
        if let draftRequantize {
            if draft == nil { throw ValidationError("--draft-requantize needs --draft") }
            _ = try RequantizeRequest(parsing: draftRequantize)
        }
        if temperature.contains(where: { !($0 >= 0) || !$0.isFinite }) {
            throw ValidationError("--temperature values must be finite and ≥ 0")
        }
    }
}

extension BenchOptions {
    /// The library's run options.
    var runOptions: BenchRun.Options {
        var run = BenchRun.Options(target: target, draft: draft)
        run.datasets = dataset
        run.dataDirectory = dataDir
        run.prompts = prompts
        run.maxTokens = maxTokens
        run.temperatures = temperature
        run.seed = seed
        run.out = out
        run.draftSkippedLayers = (try? draftSkipLayers.map { try parseLayerList($0) }) ?? []
        run.draftRequantization = try? draftRequantize.map { try RequantizeRequest(parsing: $0).requantization }
        return run
    }
}

extension BenchRun {
    /// Writes the report files and prints the Markdown and where it went.
    func report(markdown: String, chart: BarChart?) throws {
        let files = try write(markdown: markdown, chart: chart)
        print(markdown)
        print("wrote " + files.joined(separator: ", "))
    }
}

/// Whether `verifier` serves every branching node of the tree spelled `shape`.
func serves(_ verifier: String, _ shape: String) -> Bool {
    guard let kind = VerifierKind(rawValue: verifier), let parsed = try? DraftShape(spelling: shape) else {
        return false
    }
    switch parsed {
    case .tree(let topology, _): return kind != .token && kind != .block && kind.serves(topology)
    case .chain: return kind != .block
    case .auto, .adaptive: return false
    }
}

/// The rows of a tree spelling (root included).
func nodeCount(_ shape: String) throws -> Int {
    do { return try DraftShape(spelling: shape).nodeCount } catch let error as EngineError {
        throw CommandError(error.description)
    }
}
