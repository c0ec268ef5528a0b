import ArgumentParser
import Foundation
import SpeculaEngine
import SpeculaModels
import SpeculaTheory
import SpeculaVerify

/// `specula audit`: a user-runnable exactness check. Many short generations from one prompt with the chosen
/// drafter and verifier, as many with plain sampling, same settings; the two distributions of token sequences are
/// compared by a chi-square test of homogeneity (and their total-variation distance is printed). Exit code 1 when
/// the p-value is below `--alpha`: speculative decoding would then not be sampling the target's distribution.
struct Audit: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check that speculative sampling gives the target's distribution (chi-square against plain sampling)."
    )

    @Option(name: .long, help: "The target model (GGUF).") var model: String
    @Option(name: .long, help: "The draft model (GGUF); or --drafter ngram.") var draft: String?
    @Option(name: .long, help: "Drafter: model (with --draft), ngram or suffix[:NODES].") var drafter: String?
    @Option(name: .long, help: "With --drafter ngram or suffix: the longest n-gram looked up.") var ngram: Int = 3
    @Option(name: .long, help: "The prompt text.") var prompt: String
    @Flag(name: .long, help: "Wrap the prompt in the model's chat template.") var chat = false
    @Option(name: .long, help: "Tokens per generation (the sequences compared).") var tokens: Int = 2
    @Option(name: .long, help: "Generations per method.") var samples: Int = 400
    // The defaults concentrate the distribution on a few dozen sequences, so that the test has cells to compare.
    @Option(name: .long, help: "Temperature (> 0).") var temperature: Double = 0.8
    @Option(name: .customLong("top-k"), help: "Top-k (0 = off).") var topK: Int = 8
    @Option(name: .customLong("top-p"), help: "Top-p (1 = off).") var topP: Double = 1
    @Option(name: .customLong("min-p"), help: "Min-p (0 = off).") var minP: Double = 0
    @Option(name: .long, help: "Draft tokens per round (a chain).") var depth: Int = 3
    @Option(name: .long, help: "Draft tree (as in `specula generate --tree`).") var tree: String?
    @Option(name: .long, help: "Verifier (as in `specula generate --verifier`).") var verifier: String = "token"
    @Option(
        name: .long, help: "Reduced draft head: first N token ids, control tokens and the prompt's tokens (0 = all).")
    var draftVocabulary: Int = 0
    @Option(name: .long, help: "Fail when the chi-square p-value is below this.") var alpha: Double = 1e-3
    @Option(name: .long, help: "Seed.") var seed: UInt64 = 1
    @Option(
        name: .long,
        help:
            "Run another generation from this prompt beside the audit for its whole length, in the same batched passes (continuous batching), to check that sharing passes leaves the law unchanged."
    )
    var beside: String?

    func validate() throws {
        if !(temperature > 0) { throw ValidationError("--temperature must be > 0 (at 0 both methods are greedy)") }
        if tokens < 1 || tokens > 64 {
            throw ValidationError("--tokens must be in 1…64 (sequences are compared whole)")
        }
        if samples < 10 || samples > 1_000_000 { throw ValidationError("--samples must be in 10…1000000") }
        if !(alpha > 0 && alpha < 1) { throw ValidationError("--alpha must be in (0, 1)") }
        if drafter == "model" && draft == nil { throw ValidationError("--drafter model needs --draft") }
        if let beside, beside.isEmpty { throw ValidationError("--beside needs a non-empty prompt") }
        _ = try plan(hasDraftModel: draft != nil)
    }

    /// The speculative plan; its plain counterpart samples the same way without drafts. Every generation is exactly
    /// `--tokens` tokens (end-of-generation tokens are sampled like any other).
    func plan(hasDraftModel: Bool) throws -> DecodingPlan {
        let base = DecodingPlan(
            sampling: SamplingSettings(temperature: temperature, topK: topK, topP: topP, minP: minP),
            stop: StopConditions(maxTokens: tokens, atEndOfGeneration: false), seed: seed &+ 0x5EED,
            draftVocabulary: draftVocabulary)
        do {
            let plan = try DecodingPlan(
                hasDraftModel: hasDraftModel, drafter: drafter, ngram: ngram, depth: depth, drafts: 1, tree: tree,
                verifier: verifier, base: base)
            if plan.isPlain { throw EngineError.badInput(field: "draft", reason: "give --draft or --drafter ngram") }
            if plan.shape == .auto { throw EngineError.badInput(field: "verifier", reason: "audit takes a fixed tree") }
            return plan
        } catch let error as EngineError {
            throw ValidationError(error.description)
        }
    }

    func run() throws {
        let plan = try plan(hasDraftModel: draft != nil)
        let target = try LoadedModel(path: model)
        let draftModel = try draft.map { try LoadedModel(path: $0, sharingTokenizerWith: target) }
        let promptTokens = chat ? try target.promptTokens(chat: prompt) : target.promptTokens(text: prompt)
        // Each sample: `tokens` tokens after the prompt (its pass run once per method, the caches rewound).
        var batcher: ForwardBatcher?
        var companion: Companion?
        if let beside {
            let shared = ForwardBatcher(
                priority: [draftModel?.transformer, target.transformer].compactMap { $0 }, prefillChunk: 64)
            let besideTokens = chat ? try target.promptTokens(chat: beside) : target.promptTokens(text: beside)
            var besidePlan = plan
            besidePlan.seed = seed &+ 0xB351DE
            besidePlan.stop = StopConditions(maxTokens: 64, atEndOfGeneration: false)
            companion = try Companion(
                session: GenerationSession(target: target, draft: draftModel, plan: besidePlan),
                prompt: besideTokens, batcher: shared)
            batcher = shared
        }
        let audited = Result {
            try SamplingAudit.run(
                target: target, draft: draftModel, plan: plan, prompt: promptTokens, samples: samples,
                plainSeed: seed, batcher: batcher)
        }
        let besideRuns = try companion?.stop()
        let audit = try audited.get()
        let result = audit.test
        let t = audit.speculative
        let drafterName = draftModel == nil ? "\(plan.variant), n-grams up to \(ngram)" : plan.shape.spelling
        print(
            "audit: \(samples) speculative (\(drafterName), \(verifier)) and \(samples) plain samples of \(tokens) tokens, temperature \(temperature)"
        )
        print(
            String(
                format:
                    "%d distinct sequences, %d cells; total variation %.4f; chi-square %.2f on %d df, p = %.4g (fail below %.3g); acceptance %.3f, %.2f tokens/round",
                audit.distinct, result.cells, result.totalVariation, result.statistic, result.degreesOfFreedom,
                result.pValue, alpha, t.acceptanceRate, t.tokensPerStep))
        if let batcher, let besideRuns {
            let stats = batcher.statistics
            print(
                "beside: \(besideRuns) generations of up to 64 tokens ran alongside; \(stats.sharedPasses) of \(stats.passes) passes were shared (\(stats.segments) segments, \(stats.rows) rows)"
            )
        }
        if result.pValue < alpha {
            print("FAIL: the speculative and plain samples differ beyond chance")
            throw ExitCode(1)
        }
        print("pass: no difference beyond chance")
    }
}

/// A generation run over and over on its own thread (each run restarts from its prompt) until ``stop()``, its
/// passes batched with the audit's through `batcher`.
final class Companion: @unchecked Sendable {
    private let session: GenerationSession
    private let done = DispatchSemaphore(value: 0)
    private let lock = NSLock()
    private var stopping = false
    private var runs = 0
    private var failure: Error?

    init(session: GenerationSession, prompt: [Int], batcher: ForwardBatcher) throws {
        self.session = session
        session.batcher = batcher
        let thread = Thread { [self] in
            do {
                try session.start(prompt: prompt)
                while true {
                    try session.run()
                    lock.lock()
                    runs += 1
                    let stop = stopping
                    lock.unlock()
                    if stop { break }
                    try session.restart()
                }
            } catch {
                lock.lock()
                failure = error
                lock.unlock()
            }
            session.leaveBatch()
            done.signal()
        }
        thread.stackSize = 8 << 20
        thread.start()
    }

    /// Waits for the current run to end; returns how many runs completed (rethrows the companion's error).
    func stop() throws -> Int {
        lock.lock()
        stopping = true
        lock.unlock()
        done.wait()
        lock.lock()
        defer { lock.unlock() }
        if let failure { throw failure }
        return runs
    }
}
