import SpeculaModels
import SpeculaTheory
import SpeculaVerify

/// Speculative sampling checked against plain sampling on one prompt: `samples` generations each way — the plain
/// ones from a seed of their own, so the two samples are independent — compared whole by the chi-square two-sample
/// test (``TwoSampleTest``). What `specula audit` and the server's audit route run.
public enum SamplingAudit {
    public struct Result: Sendable {
        public var test: TwoSampleTest.Result
        /// Distinct sequences over both samples.
        public var distinct: Int
        /// The speculative session's statistics over all its samples.
        public var speculative: GenerationStats
    }

    /// `plan` must speculate; its stop conditions bound each sequence. `isCancelled` is checked between samples
    /// (a cancelled audit throws `CancellationError`). With a `batcher`, both sessions run their passes with the
    /// batcher's other generations. `nodeVerifier` audits a verification rule of the caller's own on a tree plan
    /// (``GenerationSession/nodeVerifier``).
    public static func run(
        target: LoadedModel, draft: LoadedModel?, plan: DecodingPlan, prompt: [Int], samples: Int,
        plainSeed: UInt64, context: Int? = nil, batcher: ForwardBatcher? = nil, nodeVerifier: (any NodeVerifier)? = nil,
        isCancelled: () -> Bool = { false }
    ) throws -> Result {
        if plan.isPlain { throw EngineError.badInput(field: "plan", reason: "an audit needs a speculative plan") }
        if samples < 1 { throw EngineError.badInput(field: "samples", reason: "must be ≥ 1 (got \(samples))") }
        if nodeVerifier != nil {
            guard case .tree = plan.shape else {
                throw EngineError.badInput(field: "plan", reason: "a node verifier of one's own needs a tree plan")
            }
        }
        var plainPlan = plan.plainCounterpart
        plainPlan.seed = plainSeed
        func draw(_ session: GenerationSession) throws -> [[Int]] {
            session.batcher = batcher
            defer { session.leaveBatch() }
            try session.start(prompt: prompt)
            var sequences: [[Int]] = []
            for index in 0..<samples {
                if isCancelled() { throw CancellationError() }
                if index > 0 { try session.restart() }
                try session.run()
                sequences.append(session.generated)
            }
            return sequences
        }
        let plain = try draw(GenerationSession(target: target, plan: plainPlan, context: context))
        let session = try GenerationSession(target: target, draft: draft, plan: plan, context: context)
        session.nodeVerifier = nodeVerifier
        let speculative = try draw(session)
        var index: [[Int]: Int] = [:]
        for sequence in plain + speculative where index[sequence] == nil { index[sequence] = index.count }
        var plainCounts = [Int](repeating: 0, count: index.count)
        var speculativeCounts = plainCounts
        for sequence in plain { plainCounts[index[sequence] ?? 0] += 1 }
        for sequence in speculative { speculativeCounts[index[sequence] ?? 0] += 1 }
        return Result(
            test: TwoSampleTest.compare(speculativeCounts, plainCounts), distinct: index.count,
            speculative: session.stats)
    }
}
