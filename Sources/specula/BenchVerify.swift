import ArgumentParser
import Foundation
import SpeculaEngine
import SpeculaKernels
import SpeculaModels
import SpeculaTheory
import SpeculaVerify

/// `specula bench verify`: the time of one node verification for every verifier, and of α*, at a full LLM
/// vocabulary with LLM-like distributions. Prints medians; `--json` writes them for tables.
struct BenchVerify: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Median time per node verification and per α* at a full vocabulary.")

    @Option(name: .long, help: "Vocabulary size (Qwen2.5: 151936).") var vocabularySize: Int = 151_936
    @Option(name: .long, help: "Timed calls per measurement (the median is reported).") var runs: Int = 101
    @Option(name: .long, help: "Seed of the synthetic distributions and the drafts.") var seed: UInt64 = 1
    @Option(name: .long, help: "Noise of the draft's logits around the target's.") var draftNoise: Double = 1
    @Option(name: .long, help: "Write the results as JSON to this file.") var json: String?

    func validate() throws {
        if vocabularySize < 4 { throw ValidationError("--vocabulary-size must be ≥ 4") }
        if runs < 3 { throw ValidationError("--runs must be ≥ 3") }
    }

    func run() throws {
        let (target, draft) = try SyntheticPair.make(vocabularySize: vocabularySize, seed: seed, draftNoise: draftNoise)
        #if DEBUG
            FileHandle.standardError.write(Data("warning: debug build; time with `swift build -c release`\n".utf8))
        #endif
        print(
            "vocabulary \(vocabularySize), single-draft acceptance \(String(format: "%.3f", Probability.overlap(target, draft))), \(runs) runs, medians"
        )
        var records: [JSONValue] = []
        func report(_ name: String, _ n: Int, _ milliseconds: Double, _ extra: String = "") {
            print(
                name.padding(toLength: 34, withPad: " ", startingAt: 0) + "n=\(n)  "
                    + String(format: "%9.4f ms", milliseconds) + (extra.isEmpty ? "" : "  " + extra))
            records.append(
                .object([
                    ("name", .string(name)), ("drafts", .integer(n)), ("medianMilliseconds", .number(milliseconds)),
                ]))
        }
        let cases: [(any NodeVerifier, Int)] = [
            (TokenVerifier(), 1), (RRSVerifier(), 2), (RRSVerifier(), 3), (RRSWithoutReplacementVerifier(), 2),
            (RRSWithoutReplacementVerifier(), 3), (KSEQVerifier(), 2), (KSEQVerifier(), 3), (SpecHubVerifier(), 2),
            (GreedyVerifier(), 2), (GreedyVerifier(), 3),
        ]
        print("-- per-node verification (decide + sample), drafts drawn beforehand")
        var generator = SplitMix64(seed: seed)
        var decision = NodeDecision()
        for (verifier, n) in cases {
            let law = n == 1 ? DraftLaw.independent : verifier.draftLaw
            let tuples = try (0..<16).map { _ in try law.sample(draft: draft, count: n, using: &generator) }
            var index = 0
            let time = try median(runs) {
                _ = try verifier.verify(
                    target: target, draft: draft, drafts: tuples[index % tuples.count], decision: &decision,
                    using: &generator)
                index += 1
            }
            report("verify \(verifier.name)", n, time)
        }
        print("-- drafting one node (draft law sampling)")
        for (law, n) in [(DraftLaw.independent, 3), (.withoutReplacement, 3), (.hubPair, 2), (.greedy, 3)] {
            let time = try median(runs) { _ = try law.sample(draft: draft, count: n, using: &generator) }
            report("draft \(law.rawValue)", n, time)
        }
        print("-- optimal acceptance α*")
        for n in [2, 3] {
            var value = 0.0
            let with = try median(max(runs / 10, 3)) {
                value = try OptimalAcceptance.withReplacement(target: target, draft: draft, count: n)
            }
            report("α* with replacement", n, with, String(format: "α* = %.6f", value))
            var method = OptimalAcceptance.Method.closedForm
            let without = try median(max(runs / 10, 3)) {
                (value, method) = try OptimalAcceptance.withoutReplacement(target: target, draft: draft, count: n)
            }
            report("α* without replacement", n, without, String(format: "α* = %.6f (%@)", value, method.rawValue))
            let greedy = try median(max(runs / 10, 3)) {
                value = try OptimalAcceptance.greedy(target: target, draft: draft, count: n)
            }
            report("α* greedy law", n, greedy, String(format: "α* = %.6f", value))
        }
        print("-- exact acceptance (closed forms)")
        for n in [2, 3] {
            report(
                "α rrs", n,
                try median(max(runs / 10, 3)) { _ = try AcceptanceRate.rrs(target: target, draft: draft, count: n) })
            report(
                "α kseq", n,
                try median(max(runs / 10, 3)) { _ = try AcceptanceRate.kseq(target: target, draft: draft, count: n) })
        }
        if let json {
            let document = JSONValue.object([
                ("benchmark", .string("verify")), ("vocabularySize", .integer(vocabularySize)),
                ("runs", .integer(runs)),
                ("seed", .integer(Int(seed))), ("results", .array(records)),
            ])
            do {
                try Data((document.rendered(indent: 2) + "\n").utf8).write(to: URL(fileURLWithPath: json))
            } catch {
                throw CommandError("cannot write '\(json)': \(error.localizedDescription)")
            }
        }
    }

    /// Median wall time of `body` in milliseconds over `count` calls, after two warm-up calls.
    func median(_ count: Int, _ body: () throws -> Void) throws -> Double {
        try body()
        try body()
        var samples: [Double] = []
        samples.reserveCapacity(count)
        for _ in 0..<count {
            let start = DispatchTime.now().uptimeNanoseconds
            try body()
            samples.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6)
        }
        samples.sort()
        return samples[samples.count / 2]
    }
}
