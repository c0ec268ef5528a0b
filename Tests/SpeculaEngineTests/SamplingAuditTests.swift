import SpeculaEngine
import SpeculaModels
import SpeculaVerify
import Testing

/// `SamplingAudit` (what `specula audit` and the server's audit route run) on a tiny synthetic pair: it passes an
/// exact verifier and fails a wrong one — the fail path, with a real verification bug planted in the tree walk.
@Suite("Sampling audit: passes an exact verifier, fails a wrong one")
struct SamplingAuditTests {
    /// RRS, except that its first draft's test accepts `factor` times as often as it should (capped at certainty):
    /// too much of the draft's law leaks into the output.
    struct LeakyRRS: NodeVerifier {
        var factor: Double
        var name: String { "leaky-rrs" }
        var draftLaw: DraftLaw { .independent }
        func supports(draftCount count: Int) -> Bool { count >= 1 }
        func decide(target: [Double], draft: [Double], drafts: [Int], into decision: inout NodeDecision) throws {
            try RRSVerifier().decide(target: target, draft: draft, drafts: drafts, into: &decision)
            if let first = decision.tests.first {
                decision.tests[0].numerator = min(first.denominator, first.numerator * factor)
            }
        }
    }

    static func models() throws -> (target: LoadedModel, draft: LoadedModel) {
        let model = SyntheticModel(vocabularySize: SyntheticModel.byteVocabularySize, seed: 21)
        func loaded(_ model: SyntheticModel) throws -> LoadedModel {
            let transformer = try model.load()
            return try LoadedModel(transformer: transformer, tokenizer: Tokenizer(gguf: transformer.file))
        }
        return (try loaded(model), try loaded(model.draft(perturbation: 0.3)))
    }

    static func audit(_ verifier: (any NodeVerifier)?) throws -> SamplingAudit.Result {
        let (target, draft) = try models()
        // Two tokens per sequence at top-k 3: at most 9 sequences, so 1,500 samples a side fill every cell.
        let plan = try DecodingPlan(
            method: "drafts:2:2/rrs",
            base: DecodingPlan(
                sampling: SamplingSettings(temperature: 1, topK: 3),
                stop: StopConditions(maxTokens: 2, atEndOfGeneration: false), seed: 5))
        return try SamplingAudit.run(
            target: target, draft: draft, plan: plan, prompt: Array("the cat".utf8).map(Int.init), samples: 1500,
            plainSeed: 99, nodeVerifier: verifier)
    }

    @Test func passesTheExactVerifierAndFailsALeakyOne() throws {
        let exact = try Self.audit(nil)
        #expect(exact.test.pValue >= 1e-3, "exact RRS failed the audit: p = \(exact.test.pValue)")
        let custom = try Self.audit(RRSVerifier())
        #expect(custom.test.pValue >= 1e-3, "RRS given as a verifier of one's own failed: p = \(custom.test.pValue)")
        let leaky = try Self.audit(LeakyRRS(factor: 1.5))
        #expect(leaky.test.pValue < 1e-6, "a leaking verifier passed the audit: p = \(leaky.test.pValue)")
        // The leak really changed the walk: the leaky verifier accepted more drafts than the exact one.
        let accepted = (
            exact.speculative.telemetry?.acceptanceRate ?? 0, leaky.speculative.telemetry?.acceptanceRate ?? 0
        )
        #expect(accepted.1 > accepted.0, "acceptance \(accepted)")
    }

    @Test func aVerifierOfOnesOwnNeedsATreePlan() throws {
        let (target, draft) = try Self.models()
        let plan = try DecodingPlan(
            method: "chain:3/token", base: DecodingPlan(sampling: SamplingSettings(temperature: 1)))
        #expect(throws: EngineError.self) {
            try SamplingAudit.run(
                target: target, draft: draft, plan: plan, prompt: [1, 2, 3], samples: 10, plainSeed: 1,
                nodeVerifier: RRSVerifier())
        }
    }
}
