import ArgumentParser
import Foundation
import SpeculaTheory
import SpeculaVerify

/// `specula bound`: the acceptance of every verifier and the optimal acceptance α* of each draft law, for one
/// target and one draft distribution.
struct Bound: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Acceptance of every verifier and the optimal acceptance α* for one target/draft pair.",
        discussion: """
            TARGET and DRAFT are JSON arrays of probabilities (or logits with --logits): inline ('[0.5,0.3,0.2]'), \
            a file path, or '-' for standard input. Probabilities are renormalised; the sampling settings are \
            applied to both, as the engine does. RRS without replacement is exact for two drafts and, by \
            enumeration, for vocabularies up to 12; otherwise it is a seeded Monte-Carlo estimate.
            """)

    @Option(name: .long, help: "Target distribution: a JSON array, a file, or '-'.")
    var target: String

    @Option(name: .long, help: "Draft distribution: a JSON array, a file, or '-'.")
    var draft: String

    @Option(name: .long, help: "Drafts per node, n ≥ 1.")
    var drafts: Int = 2

    @Flag(name: .long, help: "The arrays hold logits, not probabilities.")
    var logits = false

    @Option(name: .long, help: "Temperature (0 = greedy).") var temperature: Double = 1
    @Option(name: .customLong("top-k"), help: "Top-k (0 = off).") var topK: Int = 0
    @Option(name: .customLong("top-p"), help: "Top-p (1 = off).") var topP: Double = 1
    @Option(name: .customLong("min-p"), help: "Min-p (0 = off).") var minP: Double = 0

    @Option(name: .long, help: "Monte-Carlo draft tuples for RRS without replacement when it cannot be exact.")
    var samples: Int = 2000

    @Option(name: .long, help: "Seed for the Monte-Carlo estimate.") var seed: UInt64 = 0

    @Option(name: .long, help: "json or table.") var format: OutputFormat = .json

    enum OutputFormat: String, ExpressibleByArgument, CaseIterable { case json, table }

    /// Enumeration for RRS without replacement runs up to this vocabulary size.
    static let enumerationLimit = 12

    func validate() throws {
        if drafts < 1 { throw ValidationError("--drafts must be ≥ 1, got \(drafts)") }
        if samples < 2 { throw ValidationError("--samples must be ≥ 2, got \(samples)") }
    }

    func run() throws {
        if target.trimmingCharacters(in: .whitespaces) == "-" && draft.trimmingCharacters(in: .whitespaces) == "-" {
            throw CommandError("only one of --target and --draft can read standard input")
        }
        let settings = SamplingSettings(temperature: temperature, topK: topK, topP: topP, minP: minP)
        let rawTarget = try readVector(target, name: "target")
        let rawDraft = try readVector(draft, name: "draft")
        if rawTarget.count != rawDraft.count {
            throw VerifyError.lengthMismatch(
                what: "draft distribution", expected: rawTarget.count, actual: rawDraft.count)
        }
        let p =
            try logits
            ? settings.process(logits: rawTarget, what: "target logits")
            : settings.process(probabilities: rawTarget, what: "target probabilities")
        let q =
            try logits
            ? settings.process(logits: rawDraft, what: "draft logits")
            : settings.process(probabilities: rawDraft, what: "draft probabilities")
        let report = try BoundReport(target: p, draft: q, drafts: drafts, samples: samples, seed: seed)
        switch format {
        case .json: print(report.json.rendered())
        case .table: print(report.table)
        }
    }
}

/// The numbers `specula bound` prints, computed by the theory layer.
struct BoundReport {
    var vocabularySize: Int
    var drafts: Int
    var acceptance: [(String, Double)] = []
    var optimal: [(String, Double)] = []
    var methods: [(String, JSONValue)] = []

    init(target p: [Double], draft q: [Double], drafts n: Int, samples: Int, seed: UInt64) throws {
        vocabularySize = p.count
        drafts = n
        acceptance.append(("token", try AcceptanceRate.token(target: p, draft: q)))
        acceptance.append(("rrs", try AcceptanceRate.rrs(target: p, draft: q, count: n)))
        let support = q.filter { $0 > 0 }.count
        var enumerationSize = 1.0
        for _ in 0..<min(n, support) { enumerationSize *= Double(support) }
        if n == 1 {
            acceptance.append(("rrsw", try AcceptanceRate.token(target: p, draft: q)))
            methods.append(("rrsw", .string("closedForm")))
        } else if n == 2 && p.count <= 4096 {
            acceptance.append(("rrsw", try AcceptanceRate.rrswTwoDrafts(target: p, draft: q)))
            methods.append(("rrsw", .string("closedForm")))
        } else if p.count <= Bound.enumerationLimit && enumerationSize <= Double(ExactNode.tupleLimit) {
            let value = try AcceptanceRate.exact(
                verifier: RRSWithoutReplacementVerifier(), target: p, draft: q, count: n)
            acceptance.append(("rrsw", value))
            methods.append(("rrsw", .string("enumeration")))
        } else {
            let estimate = try AcceptanceRate.monteCarlo(
                verifier: RRSWithoutReplacementVerifier(), target: p, draft: q, count: n, samples: samples, seed: seed)
            acceptance.append(("rrsw", estimate.mean))
            methods.append(
                (
                    "rrsw",
                    .object([
                        ("method", .string("monteCarlo")), ("samples", .integer(samples)),
                        ("standardError", .number(estimate.standardError)),
                    ])
                ))
        }
        let kseq = try AcceptanceRate.kseq(target: p, draft: q, count: n)
        acceptance.append(("kseq", kseq.acceptance))
        methods.append(("kseqRho", .number(kseq.rho)))
        if n == 2 && p.count >= 2 { acceptance.append(("spechub", try AcceptanceRate.specHub(target: p, draft: q))) }
        let greedyDefined = n >= 2 && n <= p.count
        if greedyDefined { acceptance.append(("greedy", try AcceptanceRate.greedy(target: p, draft: q, count: n))) }
        optimal.append(("withReplacement", try OptimalAcceptance.withReplacement(target: p, draft: q, count: n)))
        do {
            let without = try OptimalAcceptance.withoutReplacement(target: p, draft: q, count: n)
            optimal.append(("withoutReplacement", without.value))
            methods.append(("withoutReplacement", .string(without.method.rawValue)))
        } catch VerifyError.tooLarge(let what, _, _) {
            methods.append(("withoutReplacement", .string("undefined: no exact method for n = \(n) (\(what))")))
        }
        if greedyDefined { optimal.append(("greedy", try OptimalAcceptance.greedy(target: p, draft: q, count: n))) }
    }

    var json: JSONValue {
        .object([
            ("vocabularySize", .integer(vocabularySize)),
            ("drafts", .integer(drafts)),
            ("acceptance", .object(acceptance.map { ($0.0, .number($0.1)) })),
            ("optimal", .object(optimal.map { ($0.0, .number($0.1)) })),
            ("methods", .object(methods)),
        ])
    }

    /// The law each verifier's drafts follow, and so the α* it is measured against.
    static let lawOfVerifier = [
        "token": "withReplacement", "rrs": "withReplacement", "kseq": "withReplacement",
        "rrsw": "withoutReplacement", "greedy": "greedy", "spechub": "greedy",
    ]

    var table: String {
        var lines = ["vocabulary \(vocabularySize), \(drafts) draft\(drafts == 1 ? "" : "s") per node", ""]
        lines.append("verifier   acceptance   draft law            α* of law    efficiency")
        let optimalByLaw = Dictionary(optimal, uniquingKeysWith: { a, _ in a })
        for (name, value) in acceptance {
            // Token verification uses one draft: its law is a single draw, whose α* is itself.
            let law = name == "token" ? "single draft" : Self.lawOfVerifier[name] ?? "?"
            let bound = name == "token" ? value : (optimalByLaw[law] ?? .nan)
            let lawName = name == "spechub" ? "hub pair" : law
            lines.append(
                name.padding(toLength: 11, withPad: " ", startingAt: 0)
                    + String(format: "%-13.6f", value) + lawName.padding(toLength: 21, withPad: " ", startingAt: 0)
                    + String(format: "%-13.6f", bound) + String(format: "%.4f", bound > 0 ? value / bound : .nan))
        }
        lines.append("")
        for (law, value) in optimal {
            lines.append("α* \(law)".padding(toLength: 26, withPad: " ", startingAt: 0) + String(format: "%.6f", value))
        }
        return lines.joined(separator: "\n")
    }
}
