import Foundation
import SpeculaEngine
import SpeculaModels
import SpeculaTheory

/// `POST /v1/specula/audit`: a request's own prompt decoded with speculation off and on. At temperature 0 the token
/// sequences must be identical (else the first divergence and the target's logit margin there); at T > 0, samples of
/// the first few tokens each way are compared by the chi-square test `specula audit` runs.
struct AuditReport: Encodable, Sendable {
    var temperature: Double
    var method: String
    /// T = 0.
    var identical: Bool?
    var tokens: Int?
    var plainText: String?
    var speculativeText: String?
    var firstDivergence: Divergence?
    /// T > 0.
    var samples: Int?
    var sequenceTokens: Int?
    var distinctSequences: Int?
    var chiSquare: Double?
    var degreesOfFreedom: Int?
    var pValue: Double?
    var totalVariation: Double?
    /// Nil when the samples leave no degree of freedom (too few for a verdict).
    var passed: Bool?
    var alpha: Double?
    var tokensPerPass: Double?
    var acceptance: Double?
    var seconds: Double

    struct Divergence: Encodable, Sendable {
        var index: Int
        var plainToken: Int
        var speculativeToken: Int
        /// The target's logit of its top token minus its second's at that position (log-probability difference).
        var logitMargin: Double?
    }

    static let alpha = 1e-3
}

extension GenerationWorker {
    /// Runs an audit on the worker's thread (between generations), checking for cancellation between samples.
    func audit(_ job: GenerationJob, samples: Int) throws -> AuditReport {
        let started = ContinuousClock.now
        let draft = models.usableDraft
        var plainPlan = job.plan.plainCounterpart
        plainPlan.seed = job.plan.seed
        var report = AuditReport(
            temperature: job.plan.sampling.temperature, method: job.plan.spelling, seconds: 0)
        if job.plan.sampling.isGreedy {
            let plain = try GenerationSession(target: models.target, plan: plainPlan, context: context)
            plain.logprobs = 2
            plain.batcher = batcher
            try plain.start(prompt: job.prompt)
            var margins: [Double?] = []
            var plainText = ""
            while let event = try plain.next() {
                plainText += event.text
                margins += event.logprobs.map { $0.top.count == 2 ? $0.top[0].logprob - $0.top[1].logprob : nil }
                if job.isCancelled { throw CancellationError() }
            }
            let speculative = try GenerationSession(
                target: models.target, draft: draft, plan: job.plan, context: context)
            speculative.batcher = batcher
            try speculative.start(prompt: job.prompt)
            var speculativeText = ""
            while let event = try speculative.next() {
                speculativeText += event.text
                if job.isCancelled { throw CancellationError() }
            }
            let a = plain.generated
            let b = speculative.generated
            report.identical = a == b
            report.tokens = a.count
            report.plainText = plainText
            report.speculativeText = speculativeText
            if let index = zip(a, b).enumerated().first(where: { $0.element.0 != $0.element.1 })?.offset
                ?? (a.count != b.count ? min(a.count, b.count) : nil)
            {
                report.firstDivergence = .init(
                    index: index, plainToken: index < a.count ? a[index] : -1,
                    speculativeToken: index < b.count ? b[index] : -1,
                    logitMargin: index < margins.count ? margins[index] : nil)
            }
            report.tokensPerPass = speculative.stats.tokensPerStep
            report.acceptance = speculative.stats.acceptanceRate
        } else {
            // The plain sample draws from a seed of its own (independent of the speculative one).
            let audit = try SamplingAudit.run(
                target: models.target, draft: draft, plan: job.plan, prompt: job.prompt, samples: samples,
                plainSeed: job.plan.seed &+ 0x5EED, context: context, batcher: batcher,
                isCancelled: { job.isCancelled })
            let result = audit.test
            report.samples = samples
            report.sequenceTokens = job.plan.stop.maxTokens
            report.distinctSequences = audit.distinct
            report.chiSquare = result.statistic
            report.degreesOfFreedom = result.degreesOfFreedom
            report.pValue = result.pValue
            report.totalVariation = result.totalVariation
            report.alpha = AuditReport.alpha
            // With too few samples every cell is pooled away: no verdict.
            report.passed = result.degreesOfFreedom > 0 ? result.pValue >= AuditReport.alpha : nil
            report.tokensPerPass = audit.speculative.tokensPerStep
            report.acceptance = audit.speculative.acceptanceRate
        }
        report.seconds = secondsSince(started)
        return report
    }
}
