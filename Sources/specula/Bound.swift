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
    var bounds: NodeBounds

    init(target p: [Double], draft q: [Double], drafts n: Int, samples: Int, seed: UInt64) throws {
        bounds = try NodeBounds(target: p, draft: q, drafts: n, samples: samples, seed: seed)
    }

    var vocabularySize: Int { bounds.vocabularySize }
    var drafts: Int { bounds.drafts }
    var acceptance: [(String, Double)] { bounds.acceptance.map { ($0.name, $0.value) } }
    var optimal: [(String, Double)] { bounds.optimal.map { ($0.name, $0.value) } }

    /// How each number was obtained: RRSw's method (closed form, enumeration, or Monte Carlo with its standard
    /// error), K-SEQ's ρ* (a closed form at ρ*), and α* without replacement's exact method.
    var methods: [(String, JSONValue)] {
        var methods: [(String, JSONValue)] = []
        if let rrsw = bounds.acceptance.first(where: { $0.name == "rrsw" }) {
            switch rrsw.method {
            case .closedForm: methods.append(("rrsw", .string("closedForm")))
            case .enumeration: methods.append(("rrsw", .string("enumeration")))
            case .monteCarlo(let samples, let standardError):
                methods.append(
                    (
                        "rrsw",
                        .object([
                            ("method", .string("monteCarlo")), ("samples", .integer(samples)),
                            ("standardError", .number(standardError)),
                        ])
                    ))
            }
        }
        methods.append(("kseqRho", .number(bounds.kseqRho)))
        methods.append(("withoutReplacement", .string(bounds.withoutReplacementMethod)))
        return methods
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

    static let lawOfVerifier = NodeBounds.lawOfVerifier

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
